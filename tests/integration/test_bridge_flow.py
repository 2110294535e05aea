"""The bridge on the real Mosquitto and Kafka: complete, ordered per machine, load shared.

Each test has its own topic prefix, clinic id (the bridges subscribe to that clinic only),
shared-subscription group and client ids, so other tests' traffic on the shared broker
never reaches these bridges.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

import pytest
from bridge_support import (
    BridgeProcess,
    KafkaRecord,
    Publisher,
    Topics,
    frame,
    kafka_topics,
    mosquitto_pub_lines,
    read_topic,
    topic_for,
    wait_until,
)

from edge.contract import encode
from edge.settings import KafkaSettings, MqttSettings

pytestmark = pytest.mark.integration


@pytest.fixture
def topics(kafka_settings: KafkaSettings) -> Iterator[Topics]:
    with kafka_topics(kafka_settings) as t:
        yield t


@pytest.fixture
def bridges(tmp_path: Path) -> Iterator[list[BridgeProcess]]:
    started: list[BridgeProcess] = []
    yield started
    for b in started:
        b.stop_quietly()


def start_bridge(
    bridges: list[BridgeProcess],
    mqtt_settings: MqttSettings,
    kafka: KafkaSettings,
    unique: str,
    n: int,
    log_dir: Path,
) -> BridgeProcess:
    b = BridgeProcess(
        mqtt_settings,
        kafka,
        client_id=f"bridge-{unique}-{n}",
        group=f"g{unique}",
        clinic=f"c{unique}",
        log_dir=log_dir,
    ).start()
    bridges.append(b)
    b.wait_healthy()
    return b


def seqs_by_machine(records: list[KafkaRecord]) -> dict[str, list[int]]:
    out: dict[str, list[int]] = defaultdict(list)
    for r in records:  # records are in offset order within each partition
        payload = json.loads(r.value)
        assert r.key is not None
        assert r.key.decode() == payload["machine_id"]
        out[payload["machine_id"]].append(payload["seq"])
    return out


def test_frames_from_several_machines_arrive_complete_and_in_order(
    mqtt_settings, kafka_settings, topics, unique, bridges, tmp_path
):
    clinic = f"c{unique}"
    bridge = start_bridge(bridges, mqtt_settings, kafka_settings, unique, 0, tmp_path)
    machines = [f"m{i}" for i in range(6)]
    per_machine = 150
    pub = Publisher(mqtt_settings, f"pub-{unique}")
    for seq in range(per_machine):
        for m in machines[:5]:
            pub.publish(topic_for(clinic, m), frame(clinic, m, seq))
    # the sixth machine speaks through a third-party client (mosquitto_pub, MQTT 5, QoS 1)
    mosquitto_pub_lines(
        mqtt_settings,
        topic_for(clinic, machines[5]),
        (frame(clinic, machines[5], s) for s in range(per_machine)),
    )
    event = {
        "v": 1,
        "clinic_id": clinic,
        "machine_id": "m0",
        "type": "load_changed",
        "event_id": "6f1c2b9e-2d0c-4e8a-9a53-0d2f7a1b3c4d",
        "seq": 0,
        "ts_ns": 1_763_900_000 * 10**9,
        "load_kg": 90.0,
    }
    pub.publish(topic_for(clinic, "m0", "event"), encode(event))
    state = {"v": 1, "clinic_id": clinic, "machine_id": "m0", "status": "offline"}
    pub.publish(topic_for(clinic, "m0", "state"), encode(state))
    pub.wait_all()
    pub.close()

    total = per_machine * len(machines)
    everything = read_topic(kafka_settings, topics.telemetry, total + 2)
    assert len(everything) == total + 2, "one bridge without restarts writes each message once"
    records = [r for r in everything if r.headers["kind"] == b"telemetry"]
    assert len(records) == total
    by_machine = seqs_by_machine(records)
    assert set(by_machine) == set(machines)
    for m, seqs in by_machine.items():
        assert seqs == list(range(per_machine)), f"{m} out of order or incomplete"
    # one machine, one partition: its frames stay ordered for the stream processor
    partitions = defaultdict(set)
    for r in records:
        partitions[r.key].add(r.partition)
    assert all(len(p) == 1 for p in partitions.values())
    first = records[0]
    assert first.headers["bridge_id"] == f"bridge-{unique}-0".encode()
    assert first.headers["mqtt_topic"].decode().startswith(f"sledfleet/v1/{clinic}/")
    assert int(first.headers["received_at_ns"]) > 0

    # events and state share the machine's topic and partition, after its frames
    [ev] = [r for r in everything if r.headers["kind"] == b"event"]
    assert json.loads(ev.value) == event
    [st] = [r for r in everything if r.headers["kind"] == b"state"]
    assert st.key == b"m0"
    assert json.loads(st.value) == state
    m0 = [r for r in everything if r.key == b"m0"]
    assert [r.headers["kind"] for r in m0[-2:]] == [b"event", b"state"]
    assert {r.partition for r in m0} == {ev.partition}

    wait_until(
        lambda: bridge.metrics().get("mqtt_acks_total") == total + 2, 30, "every message acked"
    )
    m = bridge.metrics()
    assert m["received_total"] == total + 2
    assert m["in_flight"] == 0
    assert m["kafka_ack_latency_seconds_count"] == total + 2
    assert bridge.terminate() == 0


def test_two_bridges_share_the_load(
    mqtt_settings, kafka_settings, topics, unique, bridges, tmp_path
):
    clinic = f"c{unique}"
    a = start_bridge(bridges, mqtt_settings, kafka_settings, unique, 0, tmp_path)
    b = start_bridge(bridges, mqtt_settings, kafka_settings, unique, 1, tmp_path)
    machines = [f"m{i}" for i in range(8)]
    per_machine = 150
    pub = Publisher(mqtt_settings, f"pub-{unique}")
    for seq in range(per_machine):
        for m in machines:
            pub.publish(topic_for(clinic, m), frame(clinic, m, seq))
    pub.wait_all()
    pub.close()

    total = per_machine * len(machines)
    records = read_topic(kafka_settings, topics.telemetry, total)
    got = {(json.loads(r.value)["machine_id"], json.loads(r.value)["seq"]) for r in records}
    assert got == {(m, s) for m in machines for s in range(per_machine)}
    assert len(records) == total
    wait_until(
        lambda: a.metric_sum("forwarded_total") + b.metric_sum("forwarded_total") == total,
        30,
        "both bridges' counters to settle",
    )
    fa, fb = a.metric_sum("forwarded_total"), b.metric_sum("forwarded_total")
    assert fa > 0
    assert fb > 0
    assert a.terminate() == 0
    assert b.terminate() == 0


def test_graceful_restart_resumes_the_session(
    mqtt_settings, kafka_settings, topics, unique, bridges, tmp_path
):
    """SIGTERM drains and exits 0; frames published while it is down wait in its session."""
    clinic = f"c{unique}"
    bridge = start_bridge(bridges, mqtt_settings, kafka_settings, unique, 0, tmp_path)
    pub = Publisher(mqtt_settings, f"pub-{unique}")
    for seq in range(100):
        pub.publish(topic_for(clinic, "m1"), frame(clinic, "m1", seq))
    pub.wait_all()
    read_topic(kafka_settings, topics.telemetry, 100)
    assert bridge.terminate() == 0
    for seq in range(100, 200):  # nobody is connected: the broker queues for the session
        pub.publish(topic_for(clinic, "m1"), frame(clinic, "m1", seq))
    pub.wait_all()
    pub.close()
    start_bridge(bridges, mqtt_settings, kafka_settings, unique, 0, tmp_path)
    records = read_topic(kafka_settings, topics.telemetry, 200)
    assert seqs_by_machine(records)["m1"] == list(range(200))
