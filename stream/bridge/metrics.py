"""Operator counters in Prometheus text format, and a tiny /metrics + /healthz server.

Stdlib only (``http.server`` in a daemon thread): the bridge installs with
kafka-python and paho alone. Counters are updated from the MQTT and Kafka
threads, so every update takes one lock, except ``received``, which only the MQTT
network thread writes (``in_flight`` is derived from it).
"""

from __future__ import annotations

import logging
import threading
from bisect import bisect_left
from collections.abc import Callable, Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Final

log = logging.getLogger(__name__)

PREFIX: Final = "sledfleet_bridge_"
LATENCY_BUCKETS_S: Final = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0)
"""Upper bounds of the Kafka ack latency histogram (seconds)."""


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _fmt(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


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
        self._answered = 0  # records Kafka acknowledged or refused
        self.mqtt_connected = False
        self.mqtt_subscribed = False
        self._buckets = [0] * len(LATENCY_BUCKETS_S)
        self._latency_count = 0
        self._latency_sum = 0.0

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
        """Prometheus text exposition format 0.0.4."""
        with self._lock:
            lines: list[str] = []
            _family(
                lines, "received_total", "counter", "MQTT messages received", [("", self.received)]
            )
            _family(
                lines,
                "forwarded_total",
                "counter",
                "valid messages acknowledged by Kafka",
                _labelled("topic", self.forwarded),
            )
            _family(
                lines,
                "dead_lettered_total",
                "counter",
                "invalid messages written to the dead-letter topic, by reason",
                _labelled("reason", self.dead_lettered),
            )
            _family(
                lines,
                "kafka_errors_total",
                "counter",
                "records Kafka failed to acknowledge (the bridge stops without acking them)",
                _labelled("error", self.kafka_errors),
            )
            _family(lines, "mqtt_acks_total", "counter", "PUBACKs sent", [("", self.acks_sent)])
            _family(
                lines,
                "mqtt_acks_dropped_total",
                "counter",
                "acks not sent because the connection dropped (broker redelivers)",
                [("", self.acks_dropped)],
            )
            _family(
                lines,
                "mqtt_connects_total",
                "counter",
                "MQTT connections",
                [("", self.mqtt_connects)],
            )
            _family(
                lines,
                "in_flight",
                "gauge",
                "messages received and not yet acknowledged by Kafka",
                [("", self.in_flight)],
            )
            _family(
                lines,
                "mqtt_connected",
                "gauge",
                "1 while connected to the MQTT broker",
                [("", int(self.mqtt_connected))],
            )
            name = PREFIX + "kafka_ack_latency_seconds"
            lines.append(f"# HELP {name} time from receiving a message to Kafka's acknowledgement")
            lines.append(f"# TYPE {name} histogram")
            cumulative = 0
            for bound, count in zip(LATENCY_BUCKETS_S, self._buckets, strict=True):
                cumulative += count
                lines.append(f'{name}_bucket{{le="{bound}"}} {cumulative}')
            lines.append(f'{name}_bucket{{le="+Inf"}} {self._latency_count}')
            lines.append(f"{name}_sum {_fmt(self._latency_sum)}")
            lines.append(f"{name}_count {self._latency_count}")
            return "\n".join(lines) + "\n"


def _labelled(label: str, values: dict[str, int]) -> list[tuple[str, float]]:
    return [(f'{{{label}="{_escape(k)}"}}', v) for k, v in sorted(values.items())]


def _family(
    lines: list[str], name: str, kind: str, help_text: str, samples: Iterable[tuple[str, float]]
) -> None:
    full = PREFIX + name
    lines.append(f"# HELP {full} {help_text}")
    lines.append(f"# TYPE {full} {kind}")
    lines.extend(f"{full}{labels} {_fmt(value)}" for labels, value in samples)


HealthCheck = Callable[[], tuple[bool, str]]


class MetricsServer:
    """Serves ``/metrics`` (Prometheus text) and ``/healthz`` (200 or 503) from a thread."""

    def __init__(self, metrics: BridgeMetrics, health: HealthCheck, host: str, port: int) -> None:
        handler = _handler(metrics, health)
        self._server = ThreadingHTTPServer((host, port), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="bridge-metrics", daemon=True
        )

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def _handler(metrics: BridgeMetrics, health: HealthCheck) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path == "/metrics":
                self._reply(200, metrics.render(), "text/plain; version=0.0.4; charset=utf-8")
            elif self.path in ("/healthz", "/health"):
                ok, text = health()
                self._reply(200 if ok else 503, text + "\n", "text/plain; charset=utf-8")
            else:
                self._reply(404, "not found\n", "text/plain; charset=utf-8")

        def _reply(self, status: int, body: str, content_type: str) -> None:
            data = body.encode()
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: object) -> None:
            log.debug("metrics http: " + format, *args)

    return Handler
