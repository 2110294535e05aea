"""Bridge settings from the environment, producer configuration and topic specs (pure)."""

from __future__ import annotations

import socket

import pytest

from edge.settings import KafkaSettings, load
from stream.bridge.kafka_out import producer_config
from stream.bridge.settings import BridgeSettings
from stream.topics import DEADLETTER_MAX_MESSAGE_BYTES, TopicsSettings, topic_specs


def test_settings_read_from_environment():
    s = load(
        BridgeSettings,
        {
            "SLEDFLEET_BRIDGE_METRICS_PORT": "0",
            "SLEDFLEET_BRIDGE_SHARE_GROUP": "g2",
            "SLEDFLEET_BRIDGE_INSTANCE": "3",
            "SLEDFLEET_BRIDGE_RECEIVE_MAXIMUM": "500",
        },
    )
    assert (s.metrics_port, s.share_group, s.instance, s.receive_maximum) == (0, "g2", 3, 500)
    assert s.resolved_client_id() == f"bridge-{socket.gethostname()}-3"
    assert load(BridgeSettings, {}, client_id="fixed").resolved_client_id() == "fixed"
    assert BridgeSettings().metrics_port == 9101


def test_producer_is_configured_for_no_loss_and_big_dead_letters():
    cfg = producer_config(KafkaSettings(bootstrap="a:1, b:2"), BridgeSettings(), "bridge-x")
    assert cfg["bootstrap_servers"] == ["a:1", "b:2"]
    assert cfg["acks"] == "all"
    assert cfg["enable_idempotence"] is True
    assert 1 <= cfg["max_in_flight_requests_per_connection"] <= 5
    assert cfg["max_request_size"] == 16 * 1024 * 1024
    assert cfg["allow_auto_create_topics"] is False
    assert cfg["delivery_timeout_ms"] >= 3600_000
    # the largest dead letter (raw limit, base64) fits one request
    assert BridgeSettings().dead_letter_raw_limit * 4 / 3 + 4096 < cfg["max_request_size"]


def test_producer_refuses_unordered_in_flight():
    with pytest.raises(ValueError):
        producer_config(KafkaSettings(), BridgeSettings(max_in_flight_requests=6), "x")


def test_topic_specs_cover_the_contract_with_deliberate_configs():
    specs = {s.name: s for s in topic_specs(TopicsSettings(), "p.")}
    assert set(specs) == {
        f"p.sledfleet.{n}"
        for n in [
            "telemetry",
            "events",
            "state",
            "prescriptions",
            "reps",
            "sets",
            "sessions",
            "adherence",
            "alerts",
            "machine-status",
            "deadletter",
            "clinics",
        ]
    }
    for name in ("telemetry", "events", "state", "reps", "sets", "sessions", "machine-status"):
        assert specs[f"p.sledfleet.{name}"].partitions == 12
    assert specs["p.sledfleet.state"].configs["cleanup.policy"] == "compact"
    assert specs["p.sledfleet.prescriptions"].configs["cleanup.policy"] == "compact"
    clinics = specs["p.sledfleet.clinics"]
    assert (clinics.partitions, clinics.configs["cleanup.policy"]) == (1, "compact")
    assert specs["p.sledfleet.telemetry"].configs["retention.ms"] == str(7 * 24 * 3600 * 1000)
    dlq = specs["p.sledfleet.deadletter"].configs
    assert dlq["max.message.bytes"] == str(DEADLETTER_MAX_MESSAGE_BYTES) == str(16 * 1024 * 1024)


class FakeCluster:
    def __init__(self, partitions: int) -> None:
        self.n = partitions

    def topics(self) -> set[str]:
        return {"t"}

    def partitions_for_topic(self, topic: str) -> set[int]:
        return set(range(self.n))

    def available_partitions_for_topic(self, topic: str) -> set[int]:
        return set(range(self.n))


def test_caching_partitioner_places_keys_like_the_default():
    from kafka.partitioner import DefaultPartitioner

    from stream.bridge.kafka_out import CachingPartitioner

    cached, default = CachingPartitioner(), DefaultPartitioner()
    for n in (12, 3, 12, 24):
        cluster = FakeCluster(n)
        for i in range(300):
            key = f"machine-{i}".encode()
            want = default.partition("t", key, key, b"v", b"v", cluster)
            assert cached.partition("t", key, key, b"v", b"v", cluster) == want
            assert cached.partition("t", key, key, b"v", b"v", cluster) == want
    assert 0 <= cached.partition("t", None, None, b"v", b"v", FakeCluster(12)) < 12


def test_bridge_producer_str_is_kafka_pythons_formatted_once():
    from kafka import KafkaProducer

    from stream.bridge.kafka_out import BridgeProducer

    p = BridgeProducer.__new__(BridgeProducer)  # no connection: only str() is exercised
    p.config = {"client_id": "bridge-x-0", "transactional_id": None}
    expected = KafkaProducer.__str__(p)
    assert str(p) == expected == "<KafkaProducer client_id=bridge-x-0 transactional_id=None>"
    p.config = {}
    assert str(p) == expected


def test_confluent_producer_is_configured_for_no_loss_and_kafka_python_placement():
    from stream.bridge.kafka_confluent import confluent_config

    cfg = confluent_config(KafkaSettings(bootstrap="a:1, b:2"), BridgeSettings(), "bridge-x")
    assert cfg["bootstrap.servers"] == "a:1,b:2"
    assert cfg["acks"] == "all"
    assert cfg["enable.idempotence"] is True
    assert cfg["max.in.flight.requests.per.connection"] <= 5
    assert cfg["partitioner"] == "murmur2_random"
    assert cfg["message.timeout.ms"] == BridgeSettings().delivery_timeout_ms
    assert cfg["message.max.bytes"] == BridgeSettings().max_request_bytes
    assert BridgeSettings().producer == "confluent"
