"""``sledfleet bridge``: run one MQTT → Kafka bridge process until SIGTERM/SIGINT."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from typing import Any

from edge.settings import KafkaSettings, MqttSettings, describe, load
from stream.bridge.metrics import BridgeMetrics, MetricsServer
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
    return serve(load(MqttSettings), load(KafkaSettings), settings)


def serve(mqtt_settings: MqttSettings, kafka: KafkaSettings, settings: BridgeSettings) -> int:
    """Run until a signal (exit 0 when drained) or a fatal Kafka error (exit 1)."""
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
    server = MetricsServer(metrics, bridge.health, settings.metrics_host, settings.metrics_port)
    server.start()
    log.info("metrics on http://%s:%d/metrics", settings.metrics_host, server.port)
    try:
        bridge.start()
    except RuntimeError as exc:
        log.error("bridge cannot start: %s", exc)
        server.stop()
        return 1
    while not stop.wait(FATAL_POLL_S):
        if bridge.fatal.is_set():
            break
    drained = bridge.stop()
    server.stop()
    if bridge.fatal.is_set():
        log.error("bridge stopped on a Kafka failure: %s", bridge.fatal_reason)
        return 1
    return 0 if drained else 1
