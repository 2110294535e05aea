"""``sledfleet bridge``: run one MQTT → Kafka bridge process until SIGTERM/SIGINT."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
import time
from typing import Any

from edge.metrics_http import MetricsServer
from edge.settings import ConfigError, KafkaSettings, MqttSettings, describe, load
from stream.bridge.metrics import BridgeMetrics
from stream.bridge.settings import BridgeSettings

log = logging.getLogger(__name__)

FATAL_POLL_S = 0.5


def register(subparsers: Any, name: str, help_text: str) -> None:
    variables = "\n".join(
        f"  {var}={default}"
        for cls in (MqttSettings, KafkaSettings, BridgeSettings)
        for var, default in describe(cls)
    )
    parser = subparsers.add_parser(
        name,
        help=help_text,
        description=(
            "Subscribe to the contract's telemetry/event/state topics with an MQTT 5 shared "
            "subscription, validate every message, write valid ones to Kafka (keyed by machine) "
            "and invalid ones to the dead-letter topic, and PUBACK only after Kafka acknowledged."
        ),
        epilog="environment (defaults):\n" + variables,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--instance", type=int, help="overrides SLEDFLEET_BRIDGE_INSTANCE")
    parser.add_argument("--metrics-port", type=int, help="overrides SLEDFLEET_BRIDGE_METRICS_PORT")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if not getattr(args, "verbose", False):
        # kafka-python logs every connection at INFO; operators need its warnings only
        logging.getLogger("kafka").setLevel(logging.WARNING)
    overrides: dict[str, Any] = {}
    if getattr(args, "instance", None) is not None:
        overrides["instance"] = args.instance
    if getattr(args, "metrics_port", None) is not None:
        overrides["metrics_port"] = args.metrics_port
    settings = load(BridgeSettings, **overrides)
    install_rate_limit()
    return serve(load(MqttSettings), load(KafkaSettings), settings)


def serve(mqtt_settings: MqttSettings, kafka: KafkaSettings, settings: BridgeSettings) -> int:
    """Run until a signal (exit 0 when drained) or a fatal Kafka error (exit 1)."""
    from stream.bridge.kafka_out import KafkaUnavailable
    from stream.bridge.mqtt_in import Bridge  # kafka/paho only when the role runs

    sys.setswitchinterval(settings.gil_switch_interval_ms / 1000)
    stop = threading.Event()

    def on_signal(signum: int, _frame: object) -> None:
        log.info("received %s: stopping", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    metrics = BridgeMetrics()
    try:
        bridge = Bridge(mqtt_settings, kafka, settings, metrics)
    except RuntimeError as exc:  # secure mode without a readable device registry
        log.error("bridge cannot start: %s", exc)
        return 1
    server = MetricsServer(
        metrics.registry(), bridge.health, settings.metrics_host, settings.metrics_port, "bridge"
    )
    server.start()
    log.info("metrics on http://%s:%d/metrics", settings.metrics_host, server.port)
    try:
        try:
            bridge.start(stop)
        except KafkaUnavailable as exc:
            if stop.is_set():
                log.info("stopped before Kafka was ready")
                return 0
            raise ConfigError(
                f"SLEDFLEET_KAFKA_BOOTSTRAP={kafka.bootstrap}",
                str(exc),
                "start Kafka (services/start kafka), correct the address, or create the topics "
                "(sledfleet topics create)",
            ) from None
        while not stop.wait(FATAL_POLL_S):
            if bridge.fatal.is_set():
                break
        drained = bridge.stop()
    finally:
        server.stop()
    if bridge.fatal.is_set():
        log.error("bridge stopped on a Kafka failure: %s", bridge.fatal_reason)
        return 1
    return 0 if drained else 1


class RateLimitFilter(logging.Filter):
    """Lets each (logger, message template) of noisy libraries through once per ``every_s``.

    kafka-python logs every refused connection attempt (hundreds of lines a minute while
    Kafka is down); one line per kind every few seconds, with the count of the rest, is
    what an operator can read."""

    def __init__(self, prefixes: tuple[str, ...] = ("kafka",), every_s: float = 10.0) -> None:
        super().__init__()
        self.prefixes = prefixes
        self.every_s = every_s
        self._last: dict[tuple[str, str], float] = {}
        self._suppressed: dict[tuple[str, str], int] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        if not record.name.startswith(self.prefixes):
            return True
        key = (record.name, str(record.msg))
        now = time.monotonic()
        if now - self._last.get(key, -float("inf")) < self.every_s:
            self._suppressed[key] = self._suppressed.get(key, 0) + 1
            return False
        self._last[key] = now
        n = self._suppressed.pop(key, 0)
        if n:
            record.msg = f"{record.msg} ({n} similar messages suppressed)"
        return True


def install_rate_limit(every_s: float = 10.0) -> None:
    """Put one RateLimitFilter on every handler of the root logger."""
    limiter = RateLimitFilter(every_s=every_s)
    for handler in logging.getLogger().handlers:
        handler.addFilter(limiter)
