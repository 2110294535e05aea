"""Helpers for the bridge integration tests: frames, bridge subprocesses, MQTT publishing,
reading Kafka topics to the end, and poll-with-deadline waits. Real servers only."""

from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

import paho.mqtt.client as mqtt
from kafka import KafkaConsumer, TopicPartition
from kafka.admin import KafkaAdminClient
from paho.mqtt.enums import CallbackAPIVersion
from polling import wait_until
from servers import free_port

from edge.contract import encode, mqtt_topic
from edge.settings import KafkaSettings, MqttSettings
from stream.topics import TopicsSettings, ensure_topics, topic_specs

REPO = Path(__file__).resolve().parents[2]
T0_NS = 1_763_900_000 * 10**9
TEST_TOPICS = TopicsSettings(partitions=6, low_volume_partitions=2)
"""Fewer partitions than production: tests create many topic sets on the shared broker."""


def frame(clinic: str, machine: str, seq: int, n: int = 50) -> bytes:
    """A realistic 50-sample telemetry frame (one second at 50 Hz of a leg press)."""
    phase = [2 * math.pi * (seq * n + i) / 150 for i in range(n)]
    return encode(
        {
            "v": 1,
            "clinic_id": clinic,
            "machine_id": machine,
            "seq": seq,
            "session_id": f"s-{machine}",
            "t0_ns": T0_NS + seq * 10**9,
            "rate_hz": 50.0,
            "load_kg": 80.0,
            "position_mm": [round(300 + 250 * math.sin(p), 1) for p in phase],
            "force_left_n": [round(600 + 150 * math.cos(p), 1) for p in phase],
            "force_right_n": [round(590 + 140 * math.cos(p), 1) for p in phase],
            "replayed": False,
        }
    )


@dataclass
class Topics:
    kafka: KafkaSettings

    @property
    def telemetry(self) -> str:
        return self.kafka.topic_prefix + "sledfleet.telemetry"

    @property
    def events(self) -> str:
        return self.kafka.topic_prefix + "sledfleet.events"

    @property
    def state(self) -> str:
        return self.kafka.topic_prefix + "sledfleet.state"

    @property
    def deadletter(self) -> str:
        return self.kafka.topic_prefix + "sledfleet.deadletter"


@contextmanager
def kafka_topics(kafka: KafkaSettings) -> Iterator[Topics]:
    """Create the contract topics under the test's prefix; delete them afterwards."""
    ensure_topics(kafka, TEST_TOPICS)
    try:
        yield Topics(kafka)
    finally:
        names = [s.name for s in topic_specs(TEST_TOPICS, kafka.topic_prefix)]
        with suppress(Exception):
            admin = KafkaAdminClient(bootstrap_servers=kafka.bootstrap)
            try:
                admin.delete_topics(names)
            finally:
                admin.close()


class BridgeProcess:
    """``sledfleet bridge`` as a subprocess with its own client id and metrics port."""

    def __init__(
        self,
        mqtt_settings: MqttSettings,
        kafka: KafkaSettings,
        *,
        client_id: str,
        group: str,
        clinic: str,
        log_dir: Path,
        extra_env: dict[str, str] | None = None,
    ) -> None:
        self.client_id = client_id
        self.metrics_port = free_port()
        self.log_path = log_dir / f"{client_id}.log"
        self.env = {
            **os.environ,
            "SLEDFLEET_MQTT_HOST": mqtt_settings.host,
            "SLEDFLEET_MQTT_PORT": str(mqtt_settings.port),
            "SLEDFLEET_KAFKA_BOOTSTRAP": kafka.bootstrap,
            "SLEDFLEET_KAFKA_TOPIC_PREFIX": kafka.topic_prefix,
            "SLEDFLEET_BRIDGE_CLIENT_ID": client_id,
            "SLEDFLEET_BRIDGE_SHARE_GROUP": group,
            "SLEDFLEET_BRIDGE_CLINIC_FILTER": clinic,
            "SLEDFLEET_BRIDGE_METRICS_PORT": str(self.metrics_port),
            "SLEDFLEET_BRIDGE_SESSION_EXPIRY_S": "600",
            **(extra_env or {}),
        }
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> BridgeProcess:
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "edge.cli", "bridge"],
            env=self.env,
            cwd=REPO,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        return self

    def wait_healthy(self, timeout: float = 60) -> None:
        def healthy() -> bool:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise AssertionError(f"bridge exited {self.proc.returncode}: {self.log()}")
            try:
                with urllib.request.urlopen(
                    f"http://127.0.0.1:{self.metrics_port}/healthz", timeout=2
                ) as r:
                    return bool(r.status == 200)
            except OSError:
                return False

        # healthy means subscribed: /healthz answers 503 until the SUBACK arrived
        wait_until(healthy, timeout, f"bridge {self.client_id} healthy")

    def metrics(self) -> dict[str, float]:
        """Metric samples ``name{labels}`` → value from /metrics (empty if unreachable)."""
        try:
            with urllib.request.urlopen(
                f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=2
            ) as r:
                text = r.read().decode()
        except OSError:
            return {}
        out = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                name, value = line.rsplit(" ", 1)
                out[name.removeprefix("sledfleet_bridge_")] = float(value)
        return out

    def metric_sum(self, prefix: str) -> float:
        return sum(v for k, v in self.metrics().items() if k.startswith(prefix))

    def terminate(self, timeout: float = 60) -> int:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=timeout)

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop_quietly(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]


class Publisher:
    """A paho MQTT 5 QoS 1 publisher with its own queue; ``wait_all`` waits for every PUBACK."""

    def __init__(self, mqtt_settings: MqttSettings, client_id: str) -> None:
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5
        )
        self.client.max_inflight_messages_set(200)
        self.client.max_queued_messages_set(0)
        self._infos: list[mqtt.MQTTMessageInfo] = []
        self._connected = threading.Event()
        self.client.on_connect = lambda *a: self._connected.set()
        self.client.connect(mqtt_settings.host, mqtt_settings.port, keepalive=30)
        self.client.loop_start()
        if not self._connected.wait(60):
            raise AssertionError("publisher could not connect")

    def publish(self, topic: str, payload: bytes, qos: int = 1) -> None:
        info = self.client.publish(topic, payload, qos=qos)
        self._infos.append(info)

    def wait_all(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        for info in self._infos:
            info.wait_for_publish(timeout=max(0.1, deadline - time.monotonic()))
            if not info.is_published():
                raise AssertionError("publish not acknowledged by the broker in time")

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def mosquitto_pub_lines(mqtt_settings: MqttSettings, topic: str, lines: Iterable[bytes]) -> None:
    """Publish each line as one QoS 1 message with the mosquitto_pub CLI (a third-party client)."""
    data = b"".join(line + b"\n" for line in lines)
    subprocess.run(
        [
            "mosquitto_pub",
            "-h",
            mqtt_settings.host,
            "-p",
            str(mqtt_settings.port),
            "-V",
            "mqttv5",
            "-q",
            "1",
            "-t",
            topic,
            "-l",
        ],
        input=data,
        check=True,
        timeout=60,
    )


@dataclass(frozen=True)
class KafkaRecord:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    headers: dict[str, bytes]


def read_topic(
    kafka: KafkaSettings, topic: str, expect_at_least: int, timeout: float = 60
) -> list[KafkaRecord]:
    """Every record of ``topic`` from the beginning, once at least ``expect_at_least`` exist.

    Waits until the end offsets add up to the expectation, then reads exactly to them.
    """
    consumer = KafkaConsumer(
        bootstrap_servers=kafka.bootstrap,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        fetch_max_bytes=64 * 1024 * 1024,
        max_partition_fetch_bytes=32 * 1024 * 1024,
    )
    try:
        parts = [
            TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or [])
        ]
        assert parts, f"topic {topic} does not exist"

        def enough() -> dict[TopicPartition, int] | None:
            ends = consumer.end_offsets(parts)
            return ends if sum(ends.values()) >= expect_at_least else None

        ends = wait_until(enough, timeout, f"{expect_at_least} records in {topic}", every=0.25)
        consumer.assign(parts)
        consumer.seek_to_beginning(*parts)
        out: list[KafkaRecord] = []
        deadline = time.monotonic() + timeout
        while any(consumer.position(tp) < ends[tp] for tp in parts):
            if time.monotonic() > deadline:
                raise AssertionError(f"could not read {topic} to its end offsets")
            for tp, records in consumer.poll(timeout_ms=500).items():
                for r in records:
                    if r.offset < ends[tp]:
                        out.append(
                            KafkaRecord(
                                r.topic, r.partition, r.offset, r.key, r.value, dict(r.headers)
                            )
                        )
        return out
    finally:
        consumer.close()


def topic_for(clinic: str, machine: str, kind: str = "telemetry") -> str:
    return mqtt_topic(clinic, machine, kind)  # type: ignore[arg-type]
