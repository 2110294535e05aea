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
    "held_released": "held (late or out-of-order) items released by the reorder window",
    "machine_ticks": "idle checks that advanced a machine by wall-clock liveness",
    "sparse_preread": "sparse-topic records read ahead of the telemetry batch",
    "states_repeated": "repeated state messages skipped",
    "skipped_recovered": "telemetry Faust skipped after a restart, read by the side consumer",
}
SECONDS_HELP: Final[Mapping[str, str]] = {
    "read_ahead_ns": "seconds machine batches spent reading the sparse topics ahead",
    "compute_ns": "seconds machine batches spent decoding, computing and encoding",
    "flush_ns": "seconds machine batches spent waiting for Kafka to ack outputs",
}
GAUGE_HELP: Final[Mapping[str, str]] = {
    "first_batch_ns": "wall-clock time (unix seconds) the first machine batch started",
    "last_batch_ns": "wall-clock time (unix seconds) the latest machine batch was flushed",
    "first_batch_cpu_ns": "process CPU seconds at the first machine batch",
    "last_batch_cpu_ns": "process CPU seconds after the latest machine batch",
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
        by_kind = CounterMetricFamily(
            PREFIX + "records_out_by_kind", "records produced, by kind", labels=["kind"]
        )
        for kind, n in sorted(c.by_kind.items()):
            by_kind.add_metric([kind], n)
        yield by_kind
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
    """Lag of a Faust app's consumer from what it already knows (no network round trip).

    Faust's committed offset is the next offset to read (``Consumer._new_offset``); the high
    water is the partition's end offset from the latest fetch. Partitions without either
    are left out rather than guessed."""
    consumer = app.consumer
    out: dict[tuple[str, int], int] = {}
    for tp in consumer.assignment():
        committed = consumer._committed_offset.get(tp)
        try:
            high = consumer.highwater(tp)
        except (AssertionError, KeyError):  # aiokafka: partition not fetched or assigned yet
            continue
        if committed is None or high is None:
            continue
        out[(tp.topic, tp.partition)] = max(0, int(high) - int(committed))
    return out


def page(metrics: WorkerMetrics) -> Callable[[Any, Any], Any]:
    """A Faust page view serving /metrics: ``app.page("/metrics")(page(metrics))``."""

    async def metrics_view(web: Any, request: Any) -> Any:
        # aiohttp refuses a charset inside content_type=: the header is set whole
        return web.bytes(metrics.render(), headers={"Content-Type": CONTENT_TYPE})

    return metrics_view
