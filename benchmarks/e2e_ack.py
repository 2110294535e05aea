"""End-to-end acknowledgement: frames lost on a Mosquitto kill -9, before vs after, and what
publishing the acks costs the bridge. One run, side by side.

1. Loss (tests/integration/e2eack_support.py, twice: ``SLEDFLEET_EDGE_DELETE_ON=puback``, the
   old behaviour, then ``ack``): real edge agents stream through a private Mosquitto and a
   ``sledfleet bridge`` into Kafka; the bridge stops (its persistent session queues), and once
   Mosquitto has PUBACKed ``--queue`` more frames it is killed with SIGKILL (before its 30 s
   autosave), restarted, and the bridge with it. Every (machine, seq) the agents framed is
   looked up in Kafka.
2. Cost: N frames from M machines are published into the queues of two offline bridge
   sessions; each bridge then drains its own copy, one with ``SLEDFLEET_BRIDGE_PUBLISH_ACKS=0``
   and one with acks (``SLEDFLEET_BRIDGE_ACK_INTERVAL_MS``), alternating over ``--rounds``.
   frames/s, CPU us/frame and the ack messages published (counted by a subscriber).

Usage: nice -n 10 .venv/bin/python benchmarks/e2e_ack.py [--frames 30000] [--rounds 2]
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from edge.settings import KafkaSettings, MqttSettings, load
from stream.bridge.settings import BridgeSettings

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "integration"))
sys.path.insert(0, str(REPO / "benchmarks"))

from bridge import Bridge, drain_bridge, publish_all  # type: ignore[import-not-found]  # noqa: E402
from bridge_support import kafka_topics  # type: ignore[import-not-found]  # noqa: E402
from e2eack_support import kill_with_queue  # type: ignore[import-not-found]  # noqa: E402
from servers import PrivateMosquitto  # type: ignore[import-not-found]  # noqa: E402


def loss(args: argparse.Namespace, run: str) -> None:
    rows = []
    for mode in ("puback", "ack"):
        kafka = load(KafkaSettings, topic_prefix=f"{run}{mode}.")
        with tempfile.TemporaryDirectory() as tmp, PrivateMosquitto() as broker:
            t0 = time.monotonic()
            out = kill_with_queue(
                broker, kafka, Path(tmp), f"{run}{mode}", mode, queue_frames=args.queue
            )
            rows.append((mode, out, time.monotonic() - t0))
    print(f"\n1. Mosquitto kill -9 with frames queued for an absent bridge ({args.queue}+ queued)")
    print(f"{'agents delete on':20}{'framed':>8}{'queued':>8}{'lost':>7}{'dups':>7}"
          f"{'late':>6}{'outbox left':>12}{'run s':>7}")  # fmt: skip
    for mode, out, secs in rows:
        framed = sum(out.framed.values())
        print(f"{mode:20}{framed:>8}{out.queued_at_kill:>8}{out.lost:>7}{out.duplicates:>7}"
              f"{out.late:>6}{out.outbox_rows_left:>12}{secs:>7.0f}")  # fmt: skip
    print("queued: frames Mosquitto PUBACKed while the bridge was away, before the kill; lost: "
          "frames never in Kafka (also those the restarted, session-less broker PUBACKed before "
          "the bridge subscribed again); late: frames the worker's reorder window would "
          "dead-letter as late_frame")  # fmt: skip


class AckCounter:
    """Counts ack messages under one clinic (a subscriber beside the bridge)."""

    def __init__(self, mqtt_s: MqttSettings, clinic: str) -> None:
        self.n = 0
        self._lock = threading.Lock()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
        self.client.on_message = self._on_message
        subscribed = threading.Event()
        self.client.on_subscribe = lambda *_: subscribed.set()
        self.client.connect(mqtt_s.host, mqtt_s.port)
        self.client.subscribe(f"sledfleet/v1/{clinic}/+/ack", qos=0)
        self.client.loop_start()
        if not subscribed.wait(10):
            raise SystemExit("ack counter did not subscribe")

    def _on_message(self, _c: object, _u: object, msg: mqtt.MQTTMessage) -> None:
        if msg.retain:
            return  # an earlier drain's retained ack, not one of this drain
        with self._lock:
            self.n += 1

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def cost(args: argparse.Namespace, run: str) -> None:
    mqtt_s = load(MqttSettings)
    per_machine = max(1, args.frames // args.machines)
    n = per_machine * args.machines
    interval = BridgeSettings().ack_interval_ms
    logdir = REPO / ".run" / "bench"
    logdir.mkdir(parents=True, exist_ok=True)
    log = logdir / f"{run}.log"
    results: dict[str, list[tuple[float, float, int]]] = {"off": [], "on": []}
    for r in range(args.rounds):
        clinic = f"{run}r{r}"
        kafka = load(KafkaSettings, topic_prefix=f"{clinic}.")
        with kafka_topics(kafka):
            env = {
                **os.environ,
                "SLEDFLEET_KAFKA_TOPIC_PREFIX": kafka.topic_prefix,
                "SLEDFLEET_KAFKA_BOOTSTRAP": kafka.bootstrap,
                "SLEDFLEET_MQTT_HOST": mqtt_s.host,
                "SLEDFLEET_MQTT_PORT": str(mqtt_s.port),
            }
            modes = ("off", "on") if r % 2 == 0 else ("on", "off")
            envs = {
                "off": {**env, "SLEDFLEET_BRIDGE_PUBLISH_ACKS": "0"},
                "on": {**env, "SLEDFLEET_BRIDGE_PUBLISH_ACKS": "1"},
            }
            for mode in modes:  # persistent sessions, then offline
                b = Bridge(envs[mode], f"{clinic}-{mode}", f"{clinic}-{mode}", clinic, log, None)
                b.wait(lambda m: m.get("mqtt_subscribed", 0) == 1, 120)
                b.stop()
            publish_all(mqtt_s, clinic, args.machines, per_machine, args.publishers)
            for mode in modes:
                counter = AckCounter(mqtt_s, clinic)
                secs, m = drain_bridge(
                    envs[mode], f"{clinic}-{mode}", f"{clinic}-{mode}", clinic, n, log, None
                )
                counter.close()
                results[mode].append((n / secs, m["cpu_s"] / n * 1e6, counter.n))
    print(f"\n2. Bridge drain of {n} queued frames from {args.machines} machines, "
          f"{args.rounds} round(s), ack interval {interval} ms")  # fmt: skip
    print(f"{'bridge':22}{'frames/s':>10}{'CPU us/frame':>14}{'ack msgs':>10}{'frames/ack':>11}")
    for mode, label in (("off", "acks off"), ("on", "acks on (default)")):
        for rate, us, acks in results[mode]:
            per = f"{n / acks:.0f}" if acks else "-"
            print(f"{label:22}{rate:>10,.0f}{us:>14.0f}{acks:>10}{per:>11}")
    off = sum(x[0] for x in results["off"]) / len(results["off"])
    on = sum(x[0] for x in results["on"]) / len(results["on"])
    print(f"mean frames/s: off {off:,.0f}, on {on:,.0f} ({(on / off - 1) * 100:+.1f} %)")


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--frames", type=int, default=30000)
    ap.add_argument("--machines", type=int, default=60)
    ap.add_argument("--publishers", type=int, default=3)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--queue", type=int, default=300, help="frames queued at the kill")
    ap.add_argument("--skip-loss", action="store_true")
    ap.add_argument("--skip-cost", action="store_true")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    run = f"e2e{uuid.uuid4().hex[:6]}"
    print(f"run {run}; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    if not args.skip_loss:
        loss(args, run)
    if not args.skip_cost:
        cost(args, run)


if __name__ == "__main__":
    main()
