"""Kafka stops for 20 s under a running bridge (PRIVATE Kafka and Mosquitto).

While Kafka is down the bridge acknowledges nothing (the feeder pauses until every frame
so far is acknowledged, Kafka stops, the feeder resumes: from then on the ack count must not
move at all, however slow the machine), its in-flight count stays bounded
(the broker's view of our Receive Maximum) and its memory flat; Mosquitto keeps the rest
for the bridge's session while the publisher carries on. When Kafka is back everything
flows and every frame is in Kafka.
"""

from __future__ import annotations

import json
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from bridge_support import TEST_TOPICS, BridgeProcess, Publisher, frame, read_topic, wait_until
from servers import PrivateKafka, PrivateMosquitto

from edge.settings import KafkaSettings
from stream.topics import ensure_topics

pytestmark = [pytest.mark.integration, pytest.mark.slow]

OUTAGE_S = 20.0
RATE_HZ = 200.0
MACHINES = ["m1", "m2", "m3", "m4"]
RECEIVE_MAXIMUM = 500
MAX_RSS_GROWTH_KB = 150_000


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


@pytest.fixture
def servers() -> Iterator[tuple[PrivateMosquitto, PrivateKafka]]:
    with PrivateMosquitto() as broker, PrivateKafka() as kafka:
        yield broker, kafka


def test_kafka_outage_stops_acks_and_loses_nothing(servers, unique, tmp_path: Path):
    broker, kafka = servers
    kafka_settings = KafkaSettings(bootstrap=kafka.bootstrap, topic_prefix=f"t{unique}.")
    ensure_topics(kafka_settings, TEST_TOPICS)
    clinic = f"c{unique}"
    bridge = BridgeProcess(
        broker.settings,
        kafka_settings,
        client_id=f"bridge-{unique}-0",
        group=f"g{unique}",
        clinic=clinic,
        log_dir=tmp_path,
        extra_env={"SLEDFLEET_BRIDGE_RECEIVE_MAXIMUM": str(RECEIVE_MAXIMUM)},
    ).start()
    pub = Publisher(broker.settings, f"pub-{unique}")
    stop = threading.Event()
    running = threading.Event()  # cleared: the feeder pauses between rounds
    running.set()
    paused = threading.Event()
    published = dict.fromkeys(MACHINES, 0)

    def publish() -> None:
        seq = 0
        while not stop.is_set():
            if not running.is_set():
                paused.set()
                running.wait(1.0)
                continue
            paused.clear()
            for m in MACHINES:
                pub.publish(f"sledfleet/v1/{clinic}/{m}/telemetry", frame(clinic, m, seq))
                published[m] = seq + 1
            seq += 1
            time.sleep(len(MACHINES) / RATE_HZ)

    feeder = threading.Thread(target=publish, daemon=True)
    try:
        bridge.wait_healthy()
        assert bridge.proc is not None
        feeder.start()
        wait_until(lambda: bridge.metric_sum("forwarded_total") >= 400, 60, "traffic to flow")
        rss_before = rss_kb(bridge.proc.pid)

        # every frame so far acknowledged before Kafka stops: a condition, not a quiet spell
        running.clear()
        wait_until(paused.is_set, 60, "the feeder to pause")
        pub.wait_all(timeout=120)
        sent = sum(published.values())
        wait_until(
            lambda: (
                bridge.metrics().get("mqtt_acks_total", -1) >= sent
                and bridge.metrics().get("in_flight") == 0
            ),
            120,
            "every frame so far to be acknowledged",
        )
        acks_at_outage = bridge.metrics()["mqtt_acks_total"]
        kafka.stop()
        kafka.wait_port_closed()
        running.set()
        outage_ends = time.monotonic() + OUTAGE_S - 3.0
        peak_in_flight = 0.0
        while time.monotonic() < outage_ends:
            m = bridge.metrics()
            assert m["mqtt_acks_total"] == acks_at_outage, "acked while Kafka was down"
            assert m["mqtt_connected"] == 1
            peak_in_flight = max(peak_in_flight, m["in_flight"])
            time.sleep(0.5)
        assert bridge.proc.poll() is None, "the bridge must ride out a Kafka outage"
        assert 0 < peak_in_flight <= RECEIVE_MAXIMUM
        assert rss_kb(bridge.proc.pid) - rss_before < MAX_RSS_GROWTH_KB

        kafka.start()
        wait_until(
            lambda: bridge.metrics().get("mqtt_acks_total", 0) > acks_at_outage + 100,
            120,
            "acks to resume after Kafka is back",
        )
        time.sleep(2.0)
        stop.set()
        feeder.join(timeout=30)
        pub.wait_all(timeout=120)

        want = {(m, s) for m, n in published.items() for s in range(n)}
        total = len(want)

        def complete() -> list | None:
            recs = read_topic(
                kafka_settings,
                kafka_settings.topic_prefix + "sledfleet.telemetry",
                total,
                timeout=120,
            )
            got = {(json.loads(r.value)["machine_id"], json.loads(r.value)["seq"]) for r in recs}
            return recs if got >= want else None

        records = wait_until(complete, 180, "every frame in Kafka after the outage", every=2.0)
        got = [(json.loads(r.value)["machine_id"], json.loads(r.value)["seq"]) for r in records]
        assert set(got) == want
        print(
            f"outage: {total} frames, {len(got) - total} duplicates, "
            f"peak in flight {peak_in_flight:.0f}, acks frozen at {acks_at_outage:.0f}"
        )
        wait_until(lambda: bridge.metrics().get("in_flight") == 0, 60, "in-flight to drain")
        assert bridge.terminate() == 0
    finally:
        stop.set()
        pub.close()
        bridge.stop_quietly()


def test_sigterm_while_kafka_is_down_stops_the_bridge_without_acking(
    servers, unique, tmp_path: Path
):
    broker, kafka = servers
    kafka_settings = KafkaSettings(bootstrap=kafka.bootstrap, topic_prefix=f"t{unique}.")
    ensure_topics(kafka_settings, TEST_TOPICS)
    clinic = f"c{unique}"
    bridge = BridgeProcess(
        broker.settings,
        kafka_settings,
        client_id=f"bridge-{unique}-t",
        group=f"g{unique}",
        clinic=clinic,
        log_dir=tmp_path,
    ).start()
    pub = Publisher(broker.settings, f"pub-{unique}")
    try:
        bridge.wait_healthy()
        topic = f"sledfleet/v1/{clinic}/m1/telemetry"
        for seq in range(20):
            pub.publish(topic, frame(clinic, "m1", seq))
        wait_until(lambda: bridge.metric_sum("mqtt_acks_total") >= 20, 60, "the first acks")
        kafka.stop()
        kafka.wait_port_closed()
        for seq in range(20, 40):
            pub.publish(topic, frame(clinic, "m1", seq))
        wait_until(lambda: bridge.metrics().get("in_flight", 0) > 0, 60, "messages in flight")
        acked = bridge.metrics()["mqtt_acks_total"]
        assert bridge.proc is not None
        bridge.proc.send_signal(signal.SIGTERM)
        # a deadline, not a speed test: before the fix it waited the 30 s shutdown timeout
        # and then the producer's close
        assert bridge.proc.wait(timeout=60) == 1  # not drained: the broker redelivers
        log = bridge.log()
        assert "Kafka answered nothing for" in log
        assert acked < 40
    finally:
        pub.close()
        bridge.stop_quietly()
