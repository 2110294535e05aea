"""How the MQTT link configures paho (no network): MQTT 5, fixed id, will, TLS, inflight."""

from __future__ import annotations

from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.client import ConnectFlags
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from edge.mqtt_link import MqttLink, Will
from edge.settings import MqttSettings, Secret


def make(settings: MqttSettings) -> MqttLink:
    return MqttLink(
        settings, "edge-m1", Will("sledfleet/v1/c1/m1/state", b'{"status":"offline"}'), [], 3600
    )


def test_client_identity_will_and_inflight() -> None:
    link = make(MqttSettings(max_inflight=321))
    c = link.client
    assert c._client_id == b"edge-m1"
    assert c._protocol == mqtt.MQTTv5
    assert c.max_inflight_messages == 321
    assert (c._will_topic, c._will_payload) == (
        b"sledfleet/v1/c1/m1/state",
        b'{"status":"offline"}',
    )
    assert c._will_qos == 1
    assert c._will_retain is True


def test_client_certificates_and_password_are_passed_to_paho(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(mqtt.Client, "tls_set", lambda self, **kw: calls.append(kw))
    settings = MqttSettings(
        tls=True,
        ca_file="/etc/sled/ca.crt",
        cert_file="/etc/sled/m1.crt",
        key_file="/etc/sled/m1.key",
        username="m1",
        password=Secret("pw"),
    )
    link = make(settings)
    assert calls[0]["ca_certs"] == "/etc/sled/ca.crt"
    assert (calls[0]["certfile"], calls[0]["keyfile"]) == ("/etc/sled/m1.crt", "/etc/sled/m1.key")
    assert link.client._username == b"m1"
    assert link.client._password == b"pw"


def test_no_tls_unless_configured(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(mqtt.Client, "tls_set", lambda self, **kw: calls.append(kw))
    make(MqttSettings())
    assert calls == []


def test_publish_while_disconnected_is_queued_by_paho() -> None:
    link = make(MqttSettings())
    mid = link.publish("sledfleet/v1/c1/m1/telemetry", b"{}", 1)
    assert isinstance(mid, int)
    assert link.take_acks() == []


def test_inflight_is_capped_by_the_brokers_receive_maximum() -> None:
    link = make(MqttSettings(max_inflight=1000))
    props = Properties(PacketTypes.CONNACK)  # type: ignore[no-untyped-call]
    props.ReceiveMaximum = 20
    link._on_connect(link.client, None, ConnectFlags(False), ReasonCode(PacketTypes.CONNACK), props)
    assert link.receive_maximum == 20
    assert link.connected.is_set()
    assert link.generation == 1
