"""The real servers behave as the pipeline needs: MQTT QoS 1 through Mosquitto (paho and
the mosquitto clients), Kafka consumer groups with committed offsets (kafka-python), a
PostgreSQL round trip (psycopg), and a Faust worker consuming one topic and producing to
another on the real Kafka."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import psycopg
import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.structs import OffsetAndMetadata

from edge.settings import KafkaSettings, MqttSettings
from tests.integration.conftest import KafkaAdmin

REPO_ROOT = Path(__file__).resolve().parents[2]


def wait_for(predicate: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.05)


class Collector:
    """A paho (MQTT 5) client that subscribes with QoS 1 and records what arrives."""

    def __init__(self, settings: MqttSettings, client_id: str, topic: str) -> None:
        self.messages: list[mqtt.MQTTMessage] = []
        self.subscribed = threading.Event()
        self.client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5
        )
        self.client.on_connect = lambda c, *_: c.subscribe(topic, qos=1)
        self.client.on_subscribe = lambda *_: self.subscribed.set()
        self.client.on_message = lambda _c, _u, msg: self.messages.append(msg)
        self.client.connect(settings.host, settings.port, keepalive=30)
        self.client.loop_start()
        assert self.subscribed.wait(10), "no SUBACK from Mosquitto"

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def publisher(settings: MqttSettings, client_id: str) -> mqtt.Client:
    client = mqtt.Client(
        mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5
    )
    client.max_inflight_messages_set(settings.max_inflight)
    client.connect(settings.host, settings.port, keepalive=30)
    client.loop_start()
    return client


def test_mqtt_qos1_publish_subscribe_with_paho(mqtt_settings: MqttSettings, unique: str) -> None:
    root = f"sledfleet-test/{unique}"
    collector = Collector(mqtt_settings, f"sub-{unique}", f"{root}/#")
    pub = publisher(mqtt_settings, f"pub-{unique}")
    try:
        infos = [pub.publish(f"{root}/n", str(i).encode(), qos=1) for i in range(500)]
        for info in infos:
            info.wait_for_publish(timeout=10)
            assert info.rc == mqtt.MQTT_ERR_SUCCESS
        wait_for(lambda: len(collector.messages) >= 500, 20, "500 QoS 1 messages")
        assert [int(m.payload) for m in collector.messages] == list(range(500))
        assert {m.qos for m in collector.messages} == {1}

        # the broker has no payload limit of its own: 10 MB reaches the subscriber
        big = os.urandom(10 * 1024 * 1024)
        pub.publish(f"{root}/big", big, qos=1).wait_for_publish(timeout=30)
        wait_for(lambda: any(m.topic.endswith("/big") for m in collector.messages), 30, "10 MB")
        assert next(m for m in collector.messages if m.topic.endswith("/big")).payload == big
    finally:
        pub.disconnect()
        pub.loop_stop()
        collector.close()


@pytest.mark.skipif(shutil.which("mosquitto_sub") is None, reason="mosquitto-clients missing")
def test_mqtt_interoperates_with_mosquitto_clients(
    mqtt_settings: MqttSettings, unique: str
) -> None:
    topic = f"sledfleet-test/{unique}/retained"
    host, port = mqtt_settings.host, str(mqtt_settings.port)
    # paho -> mosquitto_sub (a retained message, so subscription timing does not matter)
    pub = publisher(mqtt_settings, f"pub-{unique}")
    try:
        pub.publish(topic, b"from-paho", qos=1, retain=True).wait_for_publish(timeout=10)
        got = subprocess.run(
            [
                "mosquitto_sub",
                "-h",
                host,
                "-p",
                port,
                "-t",
                topic,
                "-q",
                "1",
                "-C",
                "1",
                "-W",
                "20",
            ],
            capture_output=True,
            timeout=30,
            check=True,
        )
        assert got.stdout.strip() == b"from-paho"
        pub.publish(topic, b"", qos=1, retain=True).wait_for_publish(timeout=10)  # clear
    finally:
        pub.disconnect()
        pub.loop_stop()
    # mosquitto_pub -> paho
    collector = Collector(mqtt_settings, f"sub-{unique}", f"sledfleet-test/{unique}/cli")
    try:
        subprocess.run(
            [
                "mosquitto_pub",
                "-h",
                host,
                "-p",
                port,
                "-t",
                f"sledfleet-test/{unique}/cli",
                "-q",
                "1",
                "-m",
                "from-cli",
            ],
            timeout=30,
            check=True,
        )
        wait_for(lambda: collector.messages, 60, "message from mosquitto_pub")
        assert collector.messages[0].payload == b"from-cli"
    finally:
        collector.close()


def _consumer(settings: KafkaSettings, topic: str, group: str) -> KafkaConsumer:
    return KafkaConsumer(
        topic,
        bootstrap_servers=settings.bootstrap,
        group_id=group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        session_timeout_ms=6000,
        heartbeat_interval_ms=1000,
        consumer_timeout_ms=500,
    )


def _take(consumer: KafkaConsumer, n: int, timeout: float) -> list[Any]:
    out: list[Any] = []
    deadline = time.monotonic() + timeout
    while len(out) < n and time.monotonic() < deadline:
        batches = consumer.poll(timeout_ms=500, max_records=n - len(out))
        for records in batches.values():
            out.extend(records)
    return out


def test_kafka_consumer_group_resumes_after_committed_offset(
    kafka_settings: KafkaSettings, kafka_admin: KafkaAdmin, unique: str
) -> None:
    topic = kafka_settings.topic_prefix + "orders"
    kafka_admin.create_topics([topic], partitions=1)
    producer = KafkaProducer(bootstrap_servers=kafka_settings.bootstrap, acks="all")
    for i in range(10):
        producer.send(topic, key=b"m1", value=f"msg-{i}".encode())
    producer.flush(timeout=20)
    producer.close()
    group = f"g{unique}"
    tp = TopicPartition(topic, 0)

    first = _consumer(kafka_settings, topic, group)
    try:
        got = _take(first, 4, timeout=30)
        assert [r.value for r in got] == [f"msg-{i}".encode() for i in range(4)]
        first.commit({tp: OffsetAndMetadata(got[-1].offset + 1, "", -1)})
        assert first.committed(tp) == 4
    finally:
        first.close()

    # a new member of the same group starts right after the committed offset
    second = _consumer(kafka_settings, topic, group)
    try:
        rest = _take(second, 6, timeout=30)
        assert [r.value for r in rest] == [f"msg-{i}".encode() for i in range(4, 10)]
        second.commit()
        assert second.committed(tp) == 10
    finally:
        second.close()


def test_postgres_round_trip(fresh_database: str) -> None:
    with psycopg.connect(fresh_database) as conn:
        assert conn.execute("SELECT current_user").fetchone() == ("sledfleet",)
        conn.execute(
            "CREATE TABLE frames (machine_id text, seq int, PRIMARY KEY (machine_id, seq))"
        )
        conn.cursor().executemany(
            "INSERT INTO frames VALUES (%s, %s) ON CONFLICT DO NOTHING",
            [("m1", 1), ("m1", 2), ("m1", 2)],
        )
        conn.commit()
    with psycopg.connect(fresh_database) as conn:
        rows = conn.execute("SELECT machine_id, seq FROM frames ORDER BY seq").fetchall()
    assert rows == [("m1", 1), ("m1", 2)]


def test_faust_worker_consumes_one_topic_and_produces_to_another(
    kafka_settings: KafkaSettings, kafka_admin: KafkaAdmin, unique: str, tmp_path: Path
) -> None:
    source, sink = kafka_settings.topic_prefix + "in", kafka_settings.topic_prefix + "out"
    kafka_admin.create_topics([source, sink], partitions=2)
    producer = KafkaProducer(bootstrap_servers=kafka_settings.bootstrap, acks="all")
    for i in range(20):
        producer.send(source, key=f"k{i % 3}".encode(), value=f"frame-{i}".encode())
    producer.flush(timeout=20)
    producer.close()

    env = dict(os.environ)
    env.update(
        ECHO_APP_ID=f"echo-{unique}",
        ECHO_IN=source,
        ECHO_OUT=sink,
        ECHO_DATADIR=str(tmp_path / "faust"),
        SLEDFLEET_KAFKA_BOOTSTRAP=kafka_settings.bootstrap,
        PYTHONPATH=str(REPO_ROOT),
    )
    log = (tmp_path / "worker.log").open("wb")
    worker = subprocess.Popen(
        [sys.executable, "-m", "tests.integration.faust_echo_app", "worker", "-l", "info"],
        cwd=REPO_ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
    )
    consumer = KafkaConsumer(
        sink,
        bootstrap_servers=kafka_settings.bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    try:
        out = _take(consumer, 20, timeout=90)
        assert worker.poll() is None, (tmp_path / "worker.log").read_text()[-3000:]
        assert sorted(r.value for r in out) == sorted(f"FRAME-{i}".encode() for i in range(20))
    finally:
        consumer.close()
        worker.send_signal(signal.SIGTERM)
        try:
            code = worker.wait(timeout=60)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait(timeout=10)
            raise AssertionError("Faust worker did not stop within 60 s of SIGTERM") from None
        log.close()
    assert code == 0, (tmp_path / "worker.log").read_text()[-3000:]
