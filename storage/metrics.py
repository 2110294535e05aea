"""The sink's counters and gauges, exposed through a prometheus_client collector.

``Sink`` calls ``inc``/``set`` with the short names below; every name must be declared in
``FAMILIES`` (with its type, HELP text and label names), so /metrics never shows an
undocumented metric and docs/operations.md can list them all. Consumer lag is refreshed by
the sink's own thread after each commit (``record_lag``): kafka-python's consumer is not
thread-safe, so the scrape thread never touches it.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Final

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    Metric,
    SummaryMetricFamily,
)

from edge.metrics_http import MetricsServer

PREFIX: Final = "sledfleet_sink_"


@dataclass(frozen=True, slots=True)
class Family:
    kind: str  # counter | gauge
    help: str
    labels: tuple[str, ...] = ()


FAMILIES: Final[Mapping[str, Family]] = {
    "records_in_total": Family("counter", "Kafka records consumed, by topic", ("topic",)),
    "tombstones_total": Family("counter", "tombstones (null values) skipped, by topic", ("topic",)),
    "rows_written_total": Family("counter", "rows written to the database, by kind", ("kind",)),
    "batches_total": Family("counter", "batches written (one transaction each)"),
    "batch_seconds_sum": Family("counter", "seconds spent writing batches"),
    "dead_letters_total": Family(
        "counter", "records refused and written to the dead-letter topic, by reason", ("reason",)
    ),
    "dead_letters_unreadable_total": Family(
        "counter", "records of the dead-letter topic itself that could not be read (skipped)"
    ),
    "frames_expired_total": Family(
        "counter", "late telemetry frames older than SLEDFLEET_SINK_FRAMES_MAX_AGE_S, skipped"
    ),
    "db_errors_total": Family("counter", "database outages met while writing (retried)"),
    "commit_failures_total": Family(
        "counter", "Kafka offset commits refused after a rebalance (the batch is redelivered)"
    ),
    "consumer_rejoins_total": Family(
        "counter",
        "Kafka consumers closed and created again after holding no partition for "
        "SLEDFLEET_SINK_ASSIGNMENT_STUCK_S (a rebalance that never completed)",
    ),
    "refreshes_total": Family("counter", "materialized-view refreshes (plain PostgreSQL)"),
    "refresh_seconds": Family("gauge", "duration of the latest materialized-view refresh"),
    "last_commit_unix": Family("gauge", "wall-clock time of the latest offset commit"),
}


class Metrics:
    """Thread-safe counters and gauges of one sink process."""

    def __init__(self, prefix: str = PREFIX) -> None:
        self.prefix = prefix if prefix.endswith("_") else prefix + "_"
        self._lock = threading.Lock()
        self._values: dict[tuple[str, tuple[str, ...]], float] = defaultdict(float)
        self._lag: dict[tuple[str, int], int] = {}
        self.healthy = True
        self.status = "starting"
        self._registry: CollectorRegistry | None = None

    def inc(self, name: str, value: float = 1.0, **labels: str) -> None:
        key = self._key(name, labels)
        with self._lock:
            self._values[key] += value

    def set(self, name: str, value: float) -> None:
        key = self._key(name, {})
        with self._lock:
            self._values[key] = value

    def get(self, name: str, **labels: str) -> float:
        key = self._key(name, labels)
        with self._lock:
            return self._values.get(key, 0.0)

    def set_lag(self, lag: Mapping[tuple[str, int], int]) -> None:
        """Records behind the latest offset per (topic, partition) this sink holds."""
        with self._lock:
            self._lag = dict(lag)

    def record_lag(self, consumer: Any) -> None:
        """Lag from what the consumer already knows (no network round trip).

        Call it from the consumer's own thread: kafka-python's consumer is not thread-safe."""
        lag: dict[tuple[str, int], int] = {}
        for tp in consumer.assignment():
            high = consumer.highwater(tp)
            if high is None:
                continue  # no fetch answered for it yet
            lag[(tp.topic, tp.partition)] = max(0, int(high) - int(consumer.position(tp)))
        self.set_lag(lag)

    def _key(self, name: str, labels: Mapping[str, str]) -> tuple[str, tuple[str, ...]]:
        family = FAMILIES.get(name)
        if family is None:
            raise KeyError(f"undeclared sink metric {name!r}: add it to storage.metrics.FAMILIES")
        if set(labels) != set(family.labels):
            raise KeyError(f"sink metric {name!r} takes labels {family.labels}, got {labels}")
        return name, tuple(str(labels[k]) for k in family.labels)

    # --- exposition -------------------------------------------------------------------------
    def registry(self) -> CollectorRegistry:
        if self._registry is None:
            self._registry = CollectorRegistry(auto_describe=True)
            self._registry.register(self)
        return self._registry

    def render(self) -> str:
        return generate_latest(self.registry()).decode()

    def health(self) -> tuple[bool, str]:
        return self.healthy, self.status

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            values = dict(self._values)
            lag = dict(self._lag)
        for name, family in FAMILIES.items():
            if name in ("batch_seconds_sum", "batches_total"):
                continue  # one summary below
            base = self.prefix + name.removesuffix("_total")
            metric: Metric
            if family.kind == "counter":
                metric = CounterMetricFamily(base, family.help, labels=family.labels)
            else:
                metric = GaugeMetricFamily(base, family.help, labels=family.labels)
            if family.labels:
                for (n, label_values), v in sorted(values.items()):
                    if n == name:
                        metric.add_metric(list(label_values), v)
            else:
                metric.add_metric([], values.get((name, ()), 0.0))
            yield metric
        yield SummaryMetricFamily(
            self.prefix + "batch_seconds",
            "batches written (one transaction each) and the seconds spent writing them",
            count_value=int(values.get(("batches_total", ()), 0)),
            sum_value=values.get(("batch_seconds_sum", ()), 0.0),
        )
        gauge = GaugeMetricFamily(
            self.prefix + "consumer_lag",
            "records behind the partition's latest offset, per topic and partition",
            labels=("topic", "partition"),
        )
        for (topic, partition), v in sorted(lag.items()):
            gauge.add_metric([topic, str(partition)], v)
        yield gauge
        yield GaugeMetricFamily(
            self.prefix + "healthy", "1 while the database is reachable", value=int(self.healthy)
        )


def serve(metrics: Metrics, port: int, host: str = "127.0.0.1") -> MetricsServer:
    """Serve ``/metrics`` and ``/health`` (503 while the database is unavailable)."""
    return MetricsServer(metrics.registry(), metrics.health, host, port, "sink").start()
