"""Issue #13 probes against a PRIVATE secure-mode Mosquitto (services/start with
SLEDFLEET_MQTT_SECURE=1) with accounts provisioned by the real ``sledfleet device`` CLI:
each probe that used to succeed is now refused."""

from __future__ import annotations

import os
import socket
import ssl
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.reasoncodes import ReasonCode
from polling import wait_until
from servers import REPO_ROOT, PrivateMosquitto, login

from edge.contract import MAX_PAYLOAD_BYTES

pytestmark = pytest.mark.integration

SERVICE_PASSWORD = "bridge-" + uuid.uuid4().hex
CLINIC_A, CLINIC_B = "ca", "cb"


@pytest.fixture(scope="module")
def broker() -> Iterator[PrivateMosquitto]:
    b = PrivateMosquitto(
        extra_env={"SLEDFLEET_MQTT_SECURE": "1", "SLEDFLEET_MQTT_PASSWORD": SERVICE_PASSWORD}
    )
    with b:
        yield b


class Device:
    """An MQTT 5 client on the TLS listener that records PUBACK reason codes."""

    def __init__(
        self, broker: PrivateMosquitto, user: str, password: str, client_id: str = ""
    ) -> None:
        self.acks: dict[int, ReasonCode] = {}
        self.disconnected = threading.Event()
        self.connected = threading.Event()
        self.client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5
        )
        self.client.username_pw_set(user, password)
        self.client.tls_set(ca_certs=str(broker.ca_file))
        self.client.on_connect = lambda *a: self.connected.set()
        self.client.on_disconnect = lambda *a: self.disconnected.set()
        self.client.on_publish = self._on_publish
        self.client.connect("127.0.0.1", broker.tls_port, keepalive=10)
        self.client.loop_start()
        assert self.connected.wait(20), "no CONNACK"

    def _on_publish(self, _c: object, _u: object, mid: int, rc: ReasonCode, _p: object) -> None:
        self.acks[mid] = rc

    def publish(self, topic: str, payload: bytes) -> ReasonCode:
        info = self.client.publish(topic, payload, qos=1)
        return wait_until(lambda: self.acks.get(info.mid), 20, f"PUBACK for {topic}")

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def _provision(broker: PrivateMosquitto, clinic: str, machine: str) -> str:
    password = "dev-" + uuid.uuid4().hex
    broker.add_device(clinic, machine, password)
    return password


def test_provisioning_keeps_the_password_out_of_process_lists_and_logs(
    broker: PrivateMosquitto,
) -> None:
    password = "pw-" + uuid.uuid4().hex
    cli = subprocess.Popen(
        [sys.executable, "-m", "edge.cli", "device", "--broker-dir", str(broker.broker_dir),
         "add", CLINIC_A, "ps-probe", "--password-stdin"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        cwd=REPO_ROOT,
    )  # fmt: skip
    try:
        # the CLI is alive and waiting for stdin: every process's argv and environment now
        seen = []
        for proc in Path("/proc").iterdir():
            if proc.name.isdigit():
                for part in ("cmdline", "environ"):
                    try:
                        seen.append((proc / part).read_bytes())
                    except OSError:
                        continue
        assert any(b"ps-probe" in blob for blob in seen), "the CLI process was not found"
        assert not any(password.encode() in blob for blob in seen)
        out, err = cli.communicate(password + "\n", timeout=60)
    finally:
        cli.kill()
    assert cli.returncode == 0, err
    broker.wait_login("ps-probe", password, True)
    for text in (
        out,
        err,
        *(
            p.read_text(errors="replace")
            for p in broker.broker_dir.iterdir()
            if p.is_file() and p.suffix in (".log", ".json", ".passwd", ".acl")
        ),
    ):
        assert password not in text  # fmt: skip


def test_a_generated_password_is_shown_once_and_works(broker: PrivateMosquitto) -> None:
    result = broker.device("add", CLINIC_A, "gen-probe")
    password = result.stdout.strip()
    assert len(password) >= 32
    assert "\n" not in password
    broker.wait_login("gen-probe", password, True)
    listed = broker.device("list").stdout
    assert "gen-probe" in listed
    assert password not in listed
    assert "$7$" not in listed


def test_a_device_cannot_publish_under_another_clinic(broker: PrivateMosquitto) -> None:
    password = _provision(broker, CLINIC_A, "ca-m01")
    got: list[str] = []
    service = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    service.username_pw_set("sledfleet-bridge", SERVICE_PASSWORD)
    subscribed = threading.Event()
    service.on_subscribe = lambda *a: subscribed.set()
    service.on_message = lambda _c, _u, msg: got.append(msg.topic)
    service.connect("127.0.0.1", broker.port, keepalive=10)
    service.loop_start()
    device = Device(broker, "ca-m01", password)
    try:
        service.subscribe("sledfleet/v1/#", qos=1)
        assert subscribed.wait(20)
        for topic in (
            f"sledfleet/v1/{CLINIC_B}/ca-m01/telemetry",  # H1: its own machine id, other clinic
            f"sledfleet/v1/{CLINIC_A}/ca-m02/telemetry",  # another machine of its clinic
            f"sledfleet/v1/{CLINIC_A}/ca-m01/config",  # config is read-only for devices
        ):
            assert device.publish(topic, b"{}").getName() == "Not authorized", topic
        own = f"sledfleet/v1/{CLINIC_A}/ca-m01/telemetry"
        assert not device.publish(own, b"{}").is_failure
        wait_until(lambda: own in got, 20, "the device's own message")
        # the refused ones were acknowledged before the own one: nothing else arrived
        assert got == [own]
    finally:
        device.close()
        service.disconnect()
        service.loop_stop()


def test_devices_are_refused_on_the_plaintext_listener(broker: PrivateMosquitto) -> None:
    password = _provision(broker, CLINIC_A, "ca-plain")
    assert login(broker.tls_port, "ca-plain", password, ca_file=broker.ca_file)
    assert not login(broker.port, "ca-plain", password)
    # and the service account is not a device login either
    assert not login(broker.tls_port, "sledfleet-bridge", SERVICE_PASSWORD, broker.ca_file)


def test_client_id_is_forced_to_the_identity(broker: PrivateMosquitto) -> None:
    pw_a = _provision(broker, CLINIC_A, "ca-victim")
    pw_b = _provision(broker, CLINIC_A, "ca-thief")
    victim = Device(broker, "ca-victim", pw_a, client_id="ca-victim")
    thief = Device(broker, "ca-thief", pw_b, client_id="ca-victim")  # reuses the victim's id
    try:
        # the victim still answers after the thief's CONNACK (a takeover disconnects it first)
        assert not victim.publish("sledfleet/v1/ca/ca-victim/state", b"{}").is_failure
        assert not victim.disconnected.is_set()
        assert not thief.publish("sledfleet/v1/ca/ca-thief/state", b"{}").is_failure
    finally:
        thief.close()
        victim.close()


def test_revocation_disconnects_and_refuses_without_a_restart(broker: PrivateMosquitto) -> None:
    password = _provision(broker, CLINIC_A, "ca-revoked")
    pid_before = (broker.broker_dir / "mosquitto.pid").read_text()
    device = Device(broker, "ca-revoked", password)
    try:
        broker.device("revoke", "ca-revoked")
        wait_until(device.disconnected.is_set, 30, "the revoked device's disconnection")
    finally:
        device.close()
    assert not login(broker.tls_port, "ca-revoked", password, ca_file=broker.ca_file)
    assert (broker.broker_dir / "mosquitto.pid").read_text() == pid_before
    assert "ca-revoked" not in broker.device("list").stdout


def test_packets_beyond_the_contract_limit_are_refused(broker: PrivateMosquitto) -> None:
    password = _provision(broker, CLINIC_A, "ca-big")
    device = Device(broker, "ca-big", password)
    try:
        topic = f"sledfleet/v1/{CLINIC_A}/ca-big/telemetry"
        assert not device.publish(topic, b"x" * MAX_PAYLOAD_BYTES).is_failure
        device.client.publish(topic, b"x" * (MAX_PAYLOAD_BYTES * 2), qos=1)
        wait_until(device.disconnected.is_set, 30, "disconnection for an oversized packet")
    finally:
        device.close()


def _handshake(port: int, ca: Path, version: ssl.TLSVersion, ciphers: str | None) -> bool:
    ctx = ssl.create_default_context(cafile=str(ca))
    ctx.minimum_version = ctx.maximum_version = version
    if ciphers:
        ctx.set_ciphers(ciphers)
    try:
        with (
            socket.create_connection(("127.0.0.1", port), timeout=10) as raw,
            ctx.wrap_socket(raw, server_hostname="localhost"),
        ):
            return True
    except (ssl.SSLError, ConnectionResetError):
        return False


def test_tls_offers_aead_ciphers_and_tls13_only(broker: PrivateMosquitto) -> None:
    port, ca = broker.tls_port, broker.ca_file
    assert _handshake(port, ca, ssl.TLSVersion.TLSv1_3, None)
    assert _handshake(port, ca, ssl.TLSVersion.TLSv1_2, "ECDHE-RSA-AES128-GCM-SHA256")
    assert not _handshake(port, ca, ssl.TLSVersion.TLSv1_2, "AES128-SHA")
    assert not _handshake(port, ca, ssl.TLSVersion.TLSv1_2, "ECDHE-RSA-AES128-SHA")


@pytest.mark.skipif(os.geteuid() != 0, reason="only a broker started by root could be root")
def test_the_broker_does_not_run_as_root(broker: PrivateMosquitto) -> None:
    pid = (broker.broker_dir / "mosquitto.pid").read_text().split()[0]
    uid_line = next(
        line for line in Path(f"/proc/{pid}/status").read_text().splitlines()
        if line.startswith("Uid:")
    )  # fmt: skip
    assert uid_line.split()[1:] != ["0", "0", "0", "0"]
