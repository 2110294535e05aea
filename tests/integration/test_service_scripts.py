"""services/start, stop and status on PRIVATE instances (own run dir, free ports): idempotent
starts, stops that leave nothing behind, one-line fast failures, restarts keeping data."""

from __future__ import annotations

import os
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import psycopg
import pytest
from kafka import KafkaConsumer, KafkaProducer
from kafka.admin import KafkaAdminClient, NewTopic

from tests.integration.polling import wait_until
from tests.integration.servers import (
    SERVICES,
    PrivateKafka,
    PrivateMosquitto,
    PrivatePostgres,
    free_port,
    port_open,
)

READINESS_WAIT_S = 200
"""SLEDFLEET_START_TIMEOUT_S in the fail-fast tests: a service that cannot start must fail
before any readiness wait (which would last this long), however loaded the machine."""


def run(script: str, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(SERVICES / script), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.fixture
def occupied_port() -> Iterator[int]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        yield int(s.getsockname()[1])


def test_start_is_idempotent_and_stop_leaves_nothing_running() -> None:
    with PrivateMosquitto() as broker:
        pid = int((broker.run_dir / "mosquitto" / "mosquitto.pid").read_text())
        again = run("start", "mosquitto", env=broker.env())
        assert again.returncode == 0, again.stderr
        assert "mosquitto already running" in again.stdout
        assert int((broker.run_dir / "mosquitto" / "mosquitto.pid").read_text()) == pid
        assert run("status", "mosquitto", env=broker.env()).returncode == 0

        broker.stop()
        assert not pid_alive(pid)
        assert not port_open(broker.port)
        status = run("status", "mosquitto", env=broker.env())
        assert status.returncode != 0
        assert "stopped" in status.stdout
        # stopping what is not running is fine too
        assert run("stop", "mosquitto", env=broker.env()).returncode == 0


@pytest.mark.parametrize(
    ("service", "port_var"),
    [
        ("mosquitto", "SLEDFLEET_MQTT_PORT"),
        ("kafka", "SLEDFLEET_KAFKA_PORT"),
        ("postgres", "SLEDFLEET_PG_PORT"),
    ],
)
def test_taken_port_fails_fast_with_one_line(
    service: str, port_var: str, occupied_port: int, tmp_path: Path
) -> None:
    env = dict(os.environ, SLEDFLEET_RUN_DIR=str(tmp_path / "run"))
    env.update(
        SLEDFLEET_MQTT_PORT=str(free_port()),
        SLEDFLEET_KAFKA_PORT=str(free_port()),
        SLEDFLEET_KAFKA_CONTROLLER_PORT=str(free_port()),
        SLEDFLEET_PG_PORT=str(free_port()),
    )
    env[port_var] = str(occupied_port)
    env["SLEDFLEET_START_TIMEOUT_S"] = str(READINESS_WAIT_S)
    started = time.monotonic()
    result = run("start", service, env=env)
    elapsed = time.monotonic() - started
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"sledfleet services: {service} failed to start: ")
    assert f"port {occupied_port} already in use" in lines[0]
    assert "(log: " in lines[0]
    assert elapsed < READINESS_WAIT_S


def test_kafka_without_java_fails_fast_with_one_line(tmp_path: Path) -> None:
    env = dict(
        os.environ,
        SLEDFLEET_RUN_DIR=str(tmp_path / "run"),
        SLEDFLEET_KAFKA_PORT=str(free_port()),
        SLEDFLEET_KAFKA_CONTROLLER_PORT=str(free_port()),
        SLEDFLEET_JAVA=str(tmp_path / "no-java"),
        SLEDFLEET_START_TIMEOUT_S=str(READINESS_WAIT_S),
    )
    started = time.monotonic()
    result = run("start", "kafka", env=env)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "kafka failed to start: Java not found" in lines[0]
    assert time.monotonic() - started < READINESS_WAIT_S


def test_kafka_with_unreachable_maven_fails_with_one_line(tmp_path: Path) -> None:
    settings = tmp_path / "settings.xml"
    settings.write_text(
        "<settings><mirrors><mirror><id>nowhere</id><mirrorOf>*</mirrorOf>"
        f"<url>http://127.0.0.1:{free_port()}/maven</url></mirror></mirrors></settings>"
    )
    env = dict(
        os.environ,
        SLEDFLEET_RUN_DIR=str(tmp_path / "run"),
        SLEDFLEET_KAFKA_PORT=str(free_port()),
        SLEDFLEET_KAFKA_CONTROLLER_PORT=str(free_port()),
        SLEDFLEET_CACHE_DIR=str(tmp_path / "cache"),
        SLEDFLEET_MAVEN_ARGS=f"-o -Dmaven.repo.local={tmp_path / 'm2'} -s {settings}",
    )
    result = run("start", "kafka", env=env)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "kafka failed to start: Maven could not fetch the Kafka" in lines[0]
    assert "maven.log" in lines[0]


@pytest.mark.slow
def test_private_postgres_restart_keeps_data() -> None:
    with PrivatePostgres() as pg:
        with psycopg.connect(pg.dsn) as conn:
            conn.execute("CREATE TABLE kept (v int)")
            conn.execute("INSERT INTO kept VALUES (42)")
        pg.stop()
        assert not port_open(pg.port)
        with pytest.raises(psycopg.OperationalError):
            psycopg.connect(pg.dsn, connect_timeout=2)
        pg.start()
        with psycopg.connect(pg.dsn) as conn:
            assert conn.execute("SELECT v FROM kept").fetchall() == [(42,)]


@pytest.mark.slow
def test_private_kafka_restart_keeps_topics_and_messages() -> None:
    with PrivateKafka() as kafka:
        admin = KafkaAdminClient(bootstrap_servers=kafka.bootstrap)
        admin.create_topics([NewTopic("kept", 1, 1)])
        admin.close()
        producer = KafkaProducer(bootstrap_servers=kafka.bootstrap, acks="all")
        producer.send("kept", b"before-restart").get(timeout=30)
        producer.close()

        kafka.stop()
        assert not port_open(kafka.port)
        kafka.start()

        consumer = KafkaConsumer(
            "kept",
            bootstrap_servers=kafka.bootstrap,
            auto_offset_reset="earliest",
            consumer_timeout_ms=20000,
        )
        try:
            assert next(iter(consumer)).value == b"before-restart"
        finally:
            consumer.close()


def _connect(port: int, user: str, password: str, **tls: str) -> tuple[mqtt.Client, list[str]]:
    got: list[str] = []
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"{user}-{free_port()}")
    client.username_pw_set(user, password)
    if tls:
        client.tls_set(ca_certs=tls["ca"])
    client.on_message = lambda _c, _u, msg: got.append(f"{msg.topic} {msg.payload.decode()}")
    client.connect("127.0.0.1", port, keepalive=10)
    client.loop_start()
    return client, got


def test_mosquitto_secure_mode_enforces_accounts_device_acls_and_tls() -> None:
    secure = {"SLEDFLEET_MQTT_SECURE": "1", "SLEDFLEET_MQTT_PASSWORD": "bridge-pw-0123456789"}
    with PrivateMosquitto(extra_env=secure) as broker:
        broker.add_device("c1", "m1", "device-pw-0123456789")
        # anonymous clients are refused
        anonymous = subprocess.run(
            ["mosquitto_pub", "-p", str(broker.port), "-t", "sledfleet/v1/c1/m1/state", "-m", "x"],
            capture_output=True,
            timeout=30,
            check=False,
        )
        assert anonymous.returncode != 0
        bridge, got = _connect(broker.port, "sledfleet-bridge", "bridge-pw-0123456789")
        subscribed = threading.Event()
        bridge.on_subscribe = lambda *_: subscribed.set()
        bridge.subscribe("sledfleet/v1/#", qos=1)
        assert subscribed.wait(10), "no SUBACK"
        device, _ = _connect(broker.tls_port, "m1", "device-pw-0123456789", ca=str(broker.ca_file))
        try:
            device.publish("sledfleet/v1/c1/m2/telemetry", b"not-mine", qos=1).wait_for_publish(10)
            device.publish("sledfleet/v1/c1/m1/telemetry", b"mine", qos=1).wait_for_publish(10)
            # one publisher, one subscriber, QoS 1: the broker keeps their order, so a
            # wrongly delivered "not-mine" would be in ``got`` before "mine" (no wait needed)
            mine = "sledfleet/v1/c1/m1/telemetry mine"
            wait_until(lambda: mine in got, 30, "the device's own message at the bridge")
            # the ACL dropped the other machine's topic; the device's own arrived over TLS
            assert got == [mine]
        finally:
            for client in (device, bridge):
                client.disconnect()
                client.loop_stop()
