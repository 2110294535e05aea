"""The bridge's counters, exposed through a prometheus_client collector.

The hot path keeps plain integer counters (a prometheus_client ``Counter.inc`` per message
would cost a lock and a label lookup each); ``collect`` turns them into metric families when
/metrics is scraped (``edge.metrics_http.MetricsServer``). Counters are updated from the
MQTT and Kafka threads, so every update takes one lock, except ``received``, which only the
MQTT network thread writes (``in_flight`` is derived from it). Every family is listed in
docs/operations.md.
"""

from __future__ import annotations

import logging
import threading
from bisect import bisect_left
from collections.abc import Iterator
from typing import Final

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)

log = logging.getLogger(__name__)

PREFIX: Final = "sledfleet_bridge_"
LATENCY_BUCKETS_S: Final = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0)
"""Upper bounds of the Kafka ack latency histogram (seconds)."""


class BridgeMetrics:
    """The bridge's counters, gauges and ack-latency histogram."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.received = 0
        self.forwarded: dict[str, int] = {}
        self.dead_lettered: dict[str, int] = {}
        self.kafka_errors: dict[str, int] = {}
        self.acks_sent = 0
        self.acks_dropped = 0
        self.mqtt_connects = 0
        self.e2e_ack_messages = 0  # written by the ack publisher's thread only
        self.e2e_acked_seqs = 0
        self._answered = 0  # records Kafka acknowledged or refused
        self.mqtt_connected = False
        self.mqtt_subscribed = False
        self._buckets = [0] * len(LATENCY_BUCKETS_S)
        self._latency_count = 0
        self._latency_sum = 0.0
        self._registry: CollectorRegistry | None = None

    # --- updates (any thread) ------------------------------------------------------------
    @property
    def in_flight(self) -> int:
        """Messages received and not yet acknowledged (or refused) by Kafka."""
        return self.received - self._answered

    def on_received(self) -> None:
        """Called by the MQTT network thread only: a single writer needs no lock (one
        lock round trip per message was ~2% of the bridge's time)."""
        self.received += 1

    def on_kafka_ack(
        self, topic: str, reason: str | None, latency_s: float, acks_sent: int = 0
    ) -> None:
        """One record acknowledged by Kafka, and the PUBACKs that this released."""
        with self._lock:
            self._answered += 1
            if reason is None:
                self.forwarded[topic] = self.forwarded.get(topic, 0) + 1
            else:
                self.dead_lettered[reason] = self.dead_lettered.get(reason, 0) + 1
            self._latency_count += 1
            self._latency_sum += latency_s
            # the first bucket whose upper bound is >= latency_s (none: only +Inf counts it)
            i = bisect_left(LATENCY_BUCKETS_S, latency_s)
            if i < len(LATENCY_BUCKETS_S):
                self._buckets[i] += 1
            self.acks_sent += acks_sent

    def on_kafka_error(self, error: str) -> None:
        with self._lock:
            self._answered += 1
            self.kafka_errors[error] = self.kafka_errors.get(error, 0) + 1

    def on_acks(self, sent: int) -> None:
        with self._lock:
            self.acks_sent += sent

    def on_connection(self, connected: bool, dropped_acks: int = 0) -> None:
        with self._lock:
            self.mqtt_connected = connected
            self.mqtt_subscribed = False  # a new connection subscribes again
            self.mqtt_connects += int(connected)
            self.acks_dropped += dropped_acks

    def on_subscribed(self) -> None:
        with self._lock:
            self.mqtt_subscribed = self.mqtt_connected

    # --- reads ----------------------------------------------------------------------------
    def forwarded_total(self) -> int:
        with self._lock:
            return sum(self.forwarded.values())

    def dead_lettered_total(self) -> int:
        with self._lock:
            return sum(self.dead_lettered.values())

    def render(self) -> str:
        """Prometheus text exposition format 0.0.4 (what /metrics serves)."""
        return generate_latest(self.registry()).decode()

    def registry(self) -> CollectorRegistry:
        """A registry holding this bridge's families alone (one per process or test)."""
        if self._registry is None:
            self._registry = CollectorRegistry(auto_describe=True)
            self._registry.register(self)
        return self._registry

    def collect(self) -> Iterator[Metric]:
        """prometheus_client collector: one consistent snapshot under the lock."""
        with self._lock:
            yield _counter("received", "MQTT messages received", self.received)
            yield _labelled(
                CounterMetricFamily,
                "forwarded",
                "valid messages acknowledged by Kafka, by Kafka topic",
                "topic",
                self.forwarded,
            )
            yield _labelled(
                CounterMetricFamily,
                "dead_lettered",
                "refused messages written to the dead-letter topic, by reason",
                "reason",
                self.dead_lettered,
            )
            yield _labelled(
                CounterMetricFamily,
                "kafka_errors",
                "records Kafka failed to acknowledge (the bridge stops without acking them)",
                "error",
                self.kafka_errors,
            )
            yield _counter("mqtt_acks", "PUBACKs sent", self.acks_sent)
            yield _counter(
                "mqtt_acks_dropped",
                "acks not sent because the connection dropped (the broker redelivers)",
                self.acks_dropped,
            )
            yield _counter("mqtt_connects", "MQTT connections made", self.mqtt_connects)
            yield _counter(
                "e2e_ack_messages",
                "end-to-end ack messages published to agents (one per machine per interval)",
                self.e2e_ack_messages,
            )
            yield _counter(
                "e2e_acked_seqs",
                "frame and event seqs acknowledged end to end (Kafka holds them)",
                self.e2e_acked_seqs,
            )
            yield GaugeMetricFamily(
                PREFIX + "in_flight",
                "messages received and not yet acknowledged by Kafka",
                value=self.in_flight,
            )
            yield GaugeMetricFamily(
                PREFIX + "mqtt_connected",
                "1 while connected to the MQTT broker",
                value=int(self.mqtt_connected),
            )
            yield GaugeMetricFamily(
                PREFIX + "mqtt_subscribed",
                "1 once the broker granted the subscriptions of the current connection",
                value=int(self.mqtt_subscribed),
            )
            cumulative = 0
            buckets: list[tuple[str, float]] = []
            for bound, count in zip(LATENCY_BUCKETS_S, self._buckets, strict=True):
                cumulative += count
                buckets.append((repr(bound), cumulative))
            buckets.append(("+Inf", self._latency_count))
            yield HistogramMetricFamily(
                PREFIX + "kafka_ack_latency_seconds",
                "time from receiving a message to Kafka's acknowledgement",
                buckets=buckets,
                sum_value=self._latency_sum,
            )


def _counter(name: str, help_text: str, value: float) -> CounterMetricFamily:
    return CounterMetricFamily(PREFIX + name, help_text, value=value)


def _labelled(
    family: type[CounterMetricFamily],
    name: str,
    help_text: str,
    label: str,
    values: dict[str, int],
) -> CounterMetricFamily:
    metric = family(PREFIX + name, help_text, labels=[label])
    for key, value in sorted(values.items()):
        metric.add_metric([key], value)
    return metric
