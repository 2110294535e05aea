"""The secure-mode Mosquitto template agrees with the contract and the issue #13 rules."""

from __future__ import annotations

import re
from pathlib import Path

from edge.contract import MAX_PAYLOAD_BYTES

MQTT_OVERHEAD_BYTES = 2048
"""Room for the fixed header, the topic (<= ~150 bytes) and MQTT 5 properties."""
SERVICES = Path(__file__).resolve().parents[3] / "services" / "mosquitto"


def _secure() -> str:
    lines = (SERVICES / "secure.conf.in").read_text().splitlines()
    return "\n".join(line for line in lines if not line.startswith("#"))


def test_max_packet_size_is_the_contract_limit() -> None:
    sizes = re.findall(r"^max_packet_size (\d+)$", _secure(), re.M)
    assert sizes == [str(MAX_PAYLOAD_BYTES + MQTT_OVERHEAD_BYTES)]


def test_devices_only_on_tls_with_forced_client_ids_and_aead_ciphers() -> None:
    text = _secure()
    plain, tls = text.split("listener @MQTTS_PORT@")
    plain = plain.split("listener @MQTT_PORT@")[1]
    assert "services.passwd" in plain
    assert "devices" not in plain
    assert "devices.passwd" in tls
    assert "use_username_as_clientid true" in tls
    ciphers = re.findall(r"^ciphers (\S+)$", tls, re.M)[0].split(":")
    assert all(c.startswith("ECDHE-") for c in ciphers)
    assert all("GCM" in c or "CHACHA20-POLY1305" in c for c in ciphers)


def test_service_acl_has_no_patterns() -> None:
    lines = (SERVICES / "acl").read_text().splitlines()
    assert not [line for line in lines if line.startswith("pattern")]
