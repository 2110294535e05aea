"""The bridge's acknowledgement discipline, with a fake producer and a fake MQTT client.

No network: ``_on_message`` is fed paho messages directly and Kafka futures are completed
by hand, in any order, to check that PUBACKs follow Kafka and arrival order.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from frames import telemetry
from kafka.errors import KafkaTimeoutError, MessageSizeTooLargeError
from kafka.future import Future
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.reasoncodes import ReasonCode

from edge.contract import encode
from edge.settings import KafkaSettings, MqttSettings
from stream.bridge.mqtt_in import Bridge
from stream.bridge.settings import BridgeSettings


class FakeProducer:
    def __init__(self, raise_on_send: Exception | None = None) -> None:
        self.sent: list[tuple[str, bytes, bytes, Future]] = []
        self.raise_on_send = raise_on_send

    def produce(self, record: Any, flight: Any) -> None:
        if self.raise_on_send:
            raise self.raise_on_send
        fut = Future()
        fut.add_callback(flight.ok)
        fut.add_errback(flight.err)
        self.sent.append((record.topic, record.key, record.value, fut))


class FakeClient:
    def __init__(self) -> None:
        self.acks: list[tuple[int, int]] = []

    def ack_many(self, mids: list[int]) -> None:
        self.acks.extend((mid, 1) for mid in mids)

    def discard_acks(self) -> int:
        return 0


def _msg(mid: int, topic: str, payload: bytes, qos: int = 1) -> mqtt.MQTTMessage:
    m = mqtt.MQTTMessage(mid=mid, topic=topic.encode())
    m.payload = payload
    m.qos = qos
    return m


@pytest.fixture
def bridge():
    b = Bridge(
        MqttSettings(),
        KafkaSettings(topic_prefix="u."),
        BridgeSettings(client_id="bridge-test", max_in_flight=8),
    )
    b._producer = FakeProducer()  # type: ignore[assignment]
    b._client = FakeClient()  # type: ignore[assignment]
    b.metrics.on_connection(True)
    return b


def _deliver(b: Bridge, mid: int, seq: int = 0, raw: bytes | None = None) -> None:
    payload = encode(telemetry(seq=seq)) if raw is None else raw
    b._on_message(b._client, None, _msg(mid, "sledfleet/v1/c1/m1/telemetry", payload))  # type: ignore[arg-type]


def test_ack_only_after_kafka_and_in_arrival_order(bridge):
    for mid in (1, 2, 3):
        _deliver(bridge, mid, seq=mid)
    _deliver(bridge, 4, raw=b"garbage")
    sent = bridge._producer.sent
    assert [s[0] for s in sent] == ["u.sledfleet.telemetry"] * 3 + ["u.sledfleet.deadletter"]
    assert [s[1] for s in sent[:3]] == [b"m1"] * 3
    assert bridge._client.acks == []
    sent[3][3].success("meta")
    sent[1][3].success("meta")
    assert bridge._client.acks == []  # message 1 is still waiting for Kafka
    sent[0][3].success("meta")
    assert bridge._client.acks == [(1, 1), (2, 1)]
    sent[2][3].success("meta")
    assert bridge._client.acks == [(1, 1), (2, 1), (3, 1), (4, 1)]
    assert bridge.metrics.forwarded_total() == 3
    assert bridge.metrics.dead_lettered == {"malformed_json": 1}
    assert bridge.metrics.in_flight == 0


def test_kafka_failure_stops_loudly_and_never_acks(bridge):
    _deliver(bridge, 1)
    _deliver(bridge, 2, seq=1)
    sent = bridge._producer.sent
    sent[0][3].failure(MessageSizeTooLargeError("too big"))
    sent[1][3].success("meta")
    assert bridge.fatal.is_set()
    assert bridge._client.acks == []
    assert bridge.health()[0] is False
    assert bridge.metrics.kafka_errors == {"MessageSizeTooLargeError": 1}
    _deliver(bridge, 3, seq=2)  # after a fatal error nothing new is taken in
    assert len(sent) == 2


def test_send_that_raises_is_fatal(bridge):
    bridge._producer.raise_on_send = KafkaTimeoutError("no metadata")
    _deliver(bridge, 1)
    assert bridge.fatal.is_set()
    assert bridge._client.acks == []


def test_acks_of_a_lost_connection_are_never_sent(bridge):
    _deliver(bridge, 7)
    bridge._on_disconnect(bridge._client, None, None, None, None)  # type: ignore[arg-type]
    _deliver(bridge, 7)  # redelivered on the new connection with the same packet id
    old, new = bridge._producer.sent
    old[3].success("meta")
    assert bridge._client.acks == []
    new[3].success("meta")
    assert bridge._client.acks == [(7, 1)]
    assert bridge.metrics.acks_dropped == 1


def test_messages_arriving_during_shutdown_are_left_unacked(bridge):
    bridge._stopping = True
    _deliver(bridge, 1)
    assert bridge._producer.sent == []
    assert bridge._client.acks == []


def test_in_flight_is_bounded(bridge):
    for mid in range(1, 9):
        _deliver(bridge, mid, seq=mid)
    assert bridge.metrics.in_flight == 8
    # a full window blocks the MQTT thread (the broker keeps the rest) until a slot frees
    # or the bridge stops
    timer = threading.Timer(0.3, setattr, (bridge, "_stopping", True))
    timer.start()
    started = time.monotonic()
    _deliver(bridge, 9, seq=9)
    assert time.monotonic() - started >= 0.3
    assert len(bridge._producer.sent) == 8


def test_healthy_only_once_the_subscription_is_granted():
    b = Bridge(
        MqttSettings(),
        KafkaSettings(topic_prefix="u."),
        BridgeSettings(client_id="bridge-test"),
    )
    b.metrics.on_connection(True)
    assert b.health() == (False, "mqtt subscribing")
    b._on_subscribe(None, None, 1, [ReasonCode(PacketTypes.SUBACK, "Granted QoS 1")], None)  # type: ignore[arg-type]
    assert b.health() == (True, "ok")
    b.metrics.on_connection(False)
    b.metrics.on_connection(True)  # a reconnect subscribes again
    assert b.health() == (False, "mqtt subscribing")
    b._on_subscribe(None, None, 2, [ReasonCode(PacketTypes.SUBACK, "Not authorized")], None)  # type: ignore[arg-type]
    assert b.fatal.is_set()
    assert b.health()[1].startswith("fatal: MQTT subscription refused")
