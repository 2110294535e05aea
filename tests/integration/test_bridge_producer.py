"""The confluent-kafka producer on the real Kafka: keys land where kafka-python puts them,
and delivery reports arrive on the poll thread (never on the producing thread)."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from kafka.partitioner import DefaultPartitioner
from polling import wait_until

from edge.settings import KafkaSettings
from stream.bridge.core import Record
from stream.bridge.kafka_confluent import ConfluentOut
from stream.bridge.settings import BridgeSettings

pytestmark = pytest.mark.integration

KEYS = 1500


class Cluster:
    def __init__(self, topic: str, n: int) -> None:
        self.topic, self.n = topic, n

    def topics(self) -> set[str]:
        return {self.topic}

    def partitions_for_topic(self, topic: str) -> set[int]:
        return set(range(self.n))

    def available_partitions_for_topic(self, topic: str) -> set[int]:
        return set(range(self.n))


class Recorder:
    def __init__(self, key: bytes, seen: dict[bytes, int], threads: set[str]) -> None:
        self.key, self.seen, self.threads = key, seen, threads

    def ok(self, metadata: object) -> None:
        raise AssertionError("confluent reports through delivered()")

    def err(self, exc: BaseException) -> None:
        raise AssertionError(f"delivery failed: {exc}")

    def delivered(self, error: Any, msg: Any) -> None:
        assert error is None, error
        self.threads.add(threading.current_thread().name)
        self.seen[self.key] = msg.partition()


@pytest.mark.parametrize("partitions", [12, 5])
def test_placement_matches_kafka_python_for_many_keys(
    kafka_settings: KafkaSettings, kafka_admin: Any, unique: str, partitions: int
) -> None:
    topic = kafka_admin.create_topics(
        [f"{kafka_settings.topic_prefix}placement{partitions}"], partitions=partitions
    )[0]
    out = ConfluentOut(kafka_settings, BridgeSettings(linger_ms=5), f"placement-{unique}")
    wait_until(lambda: out.has_topic(topic), 30, "topic metadata")
    seen: dict[bytes, int] = {}
    threads: set[str] = set()
    keys = [f"m{unique}-{i}".encode() for i in range(KEYS // 2)]
    keys += [f"sled-{i:04d}".encode() for i in range(KEYS - len(keys))]
    for key in keys:
        out.produce(Record(topic, key, b"{}", []), Recorder(key, seen, threads))
    try:
        wait_until(lambda: len(seen) == len(keys), 60, "every delivery report")
    finally:
        out.close(5)
    expected = DefaultPartitioner()
    cluster = Cluster(topic, partitions)
    mismatched = [k for k in keys if seen[k] != expected.partition(topic, k, k, b"", b"", cluster)]
    assert mismatched == [], f"{len(mismatched)} of {len(keys)} keys placed differently"
    assert len(set(seen.values())) == partitions  # the keys really spread
    assert threads == {"kafka-poll"}
