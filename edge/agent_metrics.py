"""Prometheus metrics of an edge process (one agent or a simulated fleet of them).

A collector over the ``FleetRunner``'s agents: values are read when /metrics is scraped
(plain integers the agents keep anyway, no work on the data path) and summed over the
machines of the process; ``sledfleet_edge_machines`` says how many that is. Served by
``edge.metrics_http.MetricsServer`` when ``SLEDFLEET_EDGE_METRICS_PORT`` is set. Every
family is listed in docs/operations.md.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Final

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from edge.fleet_runner import FleetRunner

PREFIX: Final = "sledfleet_edge_"

COUNTERS: Final = (
    ("frames", "telemetry frames framed from the sensor samples"),
    ("events", "session/load/fault events framed"),
    ("samples", "sensor samples framed"),
    ("published", "messages handed to MQTT (replays included)"),
    ("acked", "messages acknowledged by the broker (deleted unless delete_on=ack)"),
    ("confirmed", "outbox rows deleted on a bridge's end-to-end ack (Kafka holds them)"),
    ("ack_resends", "re-sends of unconfirmed rows after the end-to-end ack timeout"),
    ("bad_acks", "end-to-end ack messages ignored as malformed or for another machine"),
    ("outbox_dropped_frames", "oldest unsent frames dropped because the outbox was full"),
    ("runt_samples", "refused samples: a frame's tail shorter than the rate allows"),
    ("filled_samples", "missing samples filled as gaps (null values)"),
    ("out_of_range_values", "sensor values outside the contract's range, sent as null"),
    ("clock_jumps", "device clock jumps that restarted framing"),
    ("rejected_events", "refused source events (invalid for the contract)"),
    ("source_errors", "sensor sources that failed (their data so far is kept)"),
)


class EdgeCollector:
    """Sums the counters of every agent of a ``FleetRunner``."""

    def __init__(self, runner: FleetRunner) -> None:
        self.runner = runner

    def registry(self) -> CollectorRegistry:
        registry = CollectorRegistry(auto_describe=True)
        registry.register(self)
        return registry

    def collect(self) -> Iterator[Metric]:
        agents = self.runner.agents
        totals = dict.fromkeys((name for name, _ in COUNTERS), 0)
        rows = backlog = connected = config_errors = 0
        for a in agents:
            fs = a.framer.stats
            ob = a.outbox.stats()
            totals["frames"] += fs.frames
            totals["events"] += fs.events
            totals["samples"] += fs.samples
            totals["published"] += a.published
            totals["acked"] += a.acked
            totals["confirmed"] += a.confirmed
            totals["ack_resends"] += a.resend.resends
            totals["bad_acks"] += a.bad_acks
            totals["outbox_dropped_frames"] += ob.dropped_frames
            totals["runt_samples"] += fs.runt_samples
            totals["filled_samples"] += fs.filled_samples
            totals["out_of_range_values"] += fs.out_of_range_values
            totals["clock_jumps"] += fs.clock_jumps
            totals["rejected_events"] += fs.rejected_events
            rows += ob.rows
            backlog += a.backlog()
            connected += int(a.link.connected.is_set())
            config_errors += int(a.config_error is not None)
        totals["source_errors"] = len(self.runner.source_errors())
        for name, help_text in COUNTERS:
            yield CounterMetricFamily(PREFIX + name, help_text, value=totals[name])
        yield _gauge("machines", "machines (agents) run by this process", len(agents))
        yield _gauge("mqtt_connected", "agents connected to the MQTT broker", connected)
        yield _gauge("outbox_rows", "messages stored in the outboxes, unacknowledged", rows)
        yield _gauge("backlog_rows", "stored messages not yet handed to MQTT", backlog)
        yield _gauge("config_errors", "agents whose latest config was refused", config_errors)


def health(runner: FleetRunner) -> tuple[bool, str]:
    """Healthy while every agent is connected (each buffers in its outbox otherwise)."""
    down = [a.machine_id for a in runner.agents if not a.link.connected.is_set()]
    if down:
        return False, f"mqtt disconnected: {len(down)} of {len(runner.agents)} machines"
    return True, "ok"


def _gauge(name: str, help_text: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(PREFIX + name, help_text, value=value)
