"""Prometheus metrics of a stream worker, built from its ``Counters`` and its consumer.

``WorkerMetrics`` is a prometheus_client collector: when /metrics is scraped it reads the
worker's ``Counters`` (plain integers the agents keep anyway) and, given a callable, the
consumer lag per partition. Faust serves pages from its own web server, so the worker
mounts ``render`` on ``/metrics`` (see ``page``). Every field of ``Counters`` must be
described in ``COUNTER_HELP`` (a test checks it), so /metrics and docs/operations.md list
everything. Names are ``sledfleet_worker_...``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import fields
from typing import Any, Final

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from stream.app.agents import Counters
from stream.app.faust_port import FaustPort

PREFIX: Final = "sledfleet_worker_"
CONTENT_TYPE: Final = "text/plain; version=0.0.4; charset=utf-8"
NS_PER_S: Final = 1e9

Lag = Mapping[tuple[str, int], int]
"""Records behind the partition's latest offset, per (topic, partition)."""

COUNTER_HELP: Final[Mapping[str, str]] = {
    "frames": "telemetry frames consumed",
    "events": "machine events consumed",
    "states": "machine state (birth/death) messages consumed",
    "sessions_in": "session records consumed by the patient agent",
    "prescriptions": "prescription records consumed",
    "records_out": "records produced (reps, sets, sessions, adherence, alerts, status)",
    "dead_letters": "refused inputs and unencodable outputs written to the dead-letter topic",
    "errors": "core failures on one input (dead-lettered; processing goes on)",
    "batches": "batches processed",
    "ticks": "patient-agent daily ticks",
    "held_released": "held events released (by a later frame, the machine's clock or liveness)",
    "machine_ticks": "core ticks on machines' own device clocks",
    "silence_checks": "liveness checks of machines silent by the wall clock",
    "states_repeated": "repeated state messages skipped",
    "historical_alerts": "alerts about the past (replayed backlogs), marked historical",
    "skipped_recovered": "telemetry Faust skipped after a restart, read by the side consumer",
}
SECONDS_HELP: Final[Mapping[str, str]] = {
    "read_ahead_ns": "seconds machine batches spent reading telemetry Faust stepped over",
    "compute_ns": "seconds machine batches spent decoding, computing and encoding",
    "flush_ns": "seconds machine batches spent waiting for Kafka to ack outputs",
}
GAUGE_HELP: Final[Mapping[str, str]] = {
    "first_batch_ns": "wall-clock time (unix seconds) the first machine batch started",
    "last_batch_ns": "wall-clock time (unix seconds) the latest machine batch was flushed",
    "first_batch_cpu_ns": "process CPU seconds at the first machine batch",
    "last_batch_cpu_ns": "process CPU seconds after the latest machine batch",
}
BYTES_HELP: Final[Mapping[str, str]] = {
    "state_max_bytes": "largest machine state value written to the changelog (bytes)",
}
LABELLED_HELP: Final[Mapping[str, tuple[str, str, str]]] = {
    # field: (metric name, help, label)
    "by_kind": ("records_out_by_kind", "records produced, by kind", "kind"),
    "rejected": (
        "rejected",
        "inputs the core refused (late_frame, closed_session), dead-lettered, by reason",
        "reason",
    ),
}


class WorkerMetrics:
    """Collector over a worker's ``Counters`` and, optionally, its consumer lag."""

    def __init__(
        self,
        counters: Callable[[], Counters],
        lag: Callable[[], Lag] | None = None,
    ) -> None:
        self._counters = counters
        self._lag = lag
        self._registry: CollectorRegistry | None = None

    def registry(self) -> CollectorRegistry:
        if self._registry is None:
            self._registry = CollectorRegistry(auto_describe=True)
            self._registry.register(self)
        return self._registry

    def render(self) -> bytes:
        """The /metrics body (serve it with ``CONTENT_TYPE``)."""
        return generate_latest(self.registry())

    def collect(self) -> Iterator[Metric]:
        c = self._counters()
        for f in fields(c):
            value = getattr(c, f.name)
            if f.name in COUNTER_HELP:
                yield CounterMetricFamily(PREFIX + f.name, COUNTER_HELP[f.name], value=value)
            elif f.name in SECONDS_HELP:
                name = PREFIX + f.name.removesuffix("_ns") + "_seconds"
                yield CounterMetricFamily(name, SECONDS_HELP[f.name], value=value / NS_PER_S)
            elif f.name in GAUGE_HELP:
                name = PREFIX + f.name.removesuffix("_ns") + "_seconds"
                yield GaugeMetricFamily(name, GAUGE_HELP[f.name], value=value / NS_PER_S)
            elif f.name in BYTES_HELP:
                yield GaugeMetricFamily(PREFIX + f.name, BYTES_HELP[f.name], value=value)
            elif f.name in LABELLED_HELP:
                name, help_text, label = LABELLED_HELP[f.name]
                family = CounterMetricFamily(PREFIX + name, help_text, labels=[label])
                for key, n in sorted(value.items()):
                    family.add_metric([key], n)
                yield family
        lag = GaugeMetricFamily(
            PREFIX + "consumer_lag",
            "records behind the partition's latest offset (committed offset to high water)",
            labels=["topic", "partition"],
        )
        if self._lag is not None:
            for (topic, partition), n in sorted(self._lag().items()):
                lag.add_metric([topic, str(partition)], n)
        yield lag


def faust_lag(app: Any) -> Lag:
    """Lag of a Faust app's consumer from what it already knows (``FaustPort.lag``)."""
    return FaustPort(app).lag()


def page(metrics: WorkerMetrics) -> Callable[[Any, Any], Any]:
    """A Faust page view serving /metrics: ``app.page("/metrics")(page(metrics))``."""

    async def metrics_view(web: Any, request: Any) -> Any:
        # aiohttp refuses a charset inside content_type=: the header is set whole
        return web.bytes(metrics.render(), headers={"Content-Type": CONTENT_TYPE})

    return metrics_view
