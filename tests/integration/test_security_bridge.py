"""Issue #13, second layer: in secure mode the bridge dead-letters a message whose machine is
not registered to the topic's clinic, even when the broker let it through (a service
account that may publish for many machines). Real secure Mosquitto, real Kafka."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from bridge_support import BridgeProcess, Topics, frame, kafka_topics, read_topic, wait_until
from servers import PrivateMosquitto

from edge.contract import encode
from edge.settings import KafkaSettings, MqttSettings

pytestmark = pytest.mark.integration

BRIDGE_PASSWORD = "bridge-" + uuid.uuid4().hex
SIMULATOR_PASSWORD = "sim-" + uuid.uuid4().hex


@pytest.fixture
def topics(kafka_settings: KafkaSettings) -> Iterator[Topics]:
    with kafka_topics(kafka_settings) as t:
        yield t


def _with_a_name(clinic: str, machine: str) -> bytes:
    return encode(
        {
            "v": 1, "clinic_id": clinic, "machine_id": machine, "type": "session_started",
            "event_id": str(uuid.uuid4()), "seq": 0, "ts_ns": 1_763_900_000 * 10**9,
            "session_id": "s1", "patient_id": "p1", "replayed": False,
            "patient_name": "Jane Doe", "date_of_birth": "1970-01-01",
        }
    )  # fmt: skip


def _service_client(port: int, user: str, password: str) -> mqtt.Client:
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    client.username_pw_set(user, password)
    connected = threading.Event()
    client.on_connect = lambda *a: connected.set()
    client.connect("127.0.0.1", port, keepalive=30)
    client.loop_start()
    assert connected.wait(20), "service account could not connect"
    return client


def test_unregistered_or_cross_clinic_machines_are_dead_lettered(
    kafka_settings: KafkaSettings, topics: Topics, unique: str, tmp_path: Path
) -> None:
    ca, cb = f"ca{unique}", f"cb{unique}"
    env = {"SLEDFLEET_MQTT_SECURE": "1", "SLEDFLEET_MQTT_PASSWORD": BRIDGE_PASSWORD}
    with PrivateMosquitto(extra_env=env) as broker:
        broker.device("service", "sledfleet-simulator", password=SIMULATOR_PASSWORD)
        broker.add_device(ca, "ma", "device-" + uuid.uuid4().hex)
        bridge = BridgeProcess(
            MqttSettings(host="127.0.0.1", port=broker.port),
            kafka_settings,
            client_id=f"bridge-{unique}",
            group=f"g{unique}",
            clinic="+",
            log_dir=tmp_path,
            extra_env={
                "SLEDFLEET_MQTT_USERNAME": "sledfleet-bridge",
                "SLEDFLEET_MQTT_PASSWORD": BRIDGE_PASSWORD,
                "SLEDFLEET_BRIDGE_REGISTRY_FILE": str(broker.broker_dir / "registry.json"),
            },
        ).start()
        sim = _service_client(broker.port, "sledfleet-simulator", SIMULATOR_PASSWORD)
        try:
            bridge.wait_healthy()
            sent = [
                (f"sledfleet/v1/{ca}/ma/telemetry", frame(ca, "ma", 0)),  # registered: passes
                (f"sledfleet/v1/{cb}/ma/telemetry", frame(cb, "ma", 1)),  # H1 via a service
                (f"sledfleet/v1/{cb}/mz/telemetry", frame(cb, "mz", 0)),  # never provisioned
                (f"sledfleet/v1/{ca}/ma/event", _with_a_name(ca, "ma")),  # M3: personal data
            ]
            for topic, payload in sent:
                sim.publish(topic, payload, qos=1).wait_for_publish(20)
            letters = read_topic(kafka_settings, topics.deadletter, 3, timeout=120)
            reasons = {json.loads(r.value)["origin"]: r.headers["reason"] for r in letters}
            assert reasons == {
                sent[1][0]: b"clinic_mismatch",
                sent[2][0]: b"unregistered_machine",
                sent[3][0]: b"personal_data",
            }
            # provisioning mz into cb lets it through without restarting the bridge
            broker.add_device(cb, "mz", "device-" + uuid.uuid4().hex)
            sim.publish(sent[2][0], frame(cb, "mz", 1), qos=1).wait_for_publish(20)
            good = read_topic(kafka_settings, topics.telemetry, 2, timeout=120)
            assert sorted((json.loads(r.value)["clinic_id"], json.loads(r.value)["machine_id"],
                           json.loads(r.value)["seq"]) for r in good) == sorted(
                [(ca, "ma", 0), (cb, "mz", 1)]
            )  # fmt: skip
            wait_until(
                lambda: bridge.metrics().get('dead_lettered_total{reason="clinic_mismatch"}'),
                30,
                "the clinic_mismatch metric",
            )
            assert bridge.terminate() == 0
        finally:
            sim.disconnect()
            sim.loop_stop()
            bridge.stop_quietly()


def test_the_bridge_refuses_to_start_without_its_registry(
    mqtt_settings: MqttSettings, kafka_settings: KafkaSettings, unique: str, tmp_path: Path
) -> None:
    bridge = BridgeProcess(
        mqtt_settings,
        kafka_settings,
        client_id=f"bridge-{unique}",
        group=f"g{unique}",
        clinic="+",
        log_dir=tmp_path,
        extra_env={"SLEDFLEET_BRIDGE_REGISTRY_FILE": str(tmp_path / "missing.json")},
    ).start()
    assert bridge.proc is not None
    assert bridge.proc.wait(timeout=60) == 1
    assert "device registry" in bridge.log()
