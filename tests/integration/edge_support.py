"""Helpers for the edge agent integration tests: a subscriber that collects what the agent
published, a private Mosquitto, the agent in a thread or a subprocess, schema checks."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from jsonschema import Draft202012Validator
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from polling import wait_until  # noqa: F401  (re-exported for the edge tests)
from servers import PrivateMosquitto

from edge import contract
from edge.agent_settings import EdgeSettings
from edge.fleet_runner import FleetRunner, FleetStats
from edge.samples import Sample, SourceEvent, SourceItem
from edge.settings import MqttSettings

REPO = Path(__file__).resolve().parents[2]
SERVICE_USER = "sledfleet-bridge"
"""The service account the secure broker's ACL lets read everything (services/mosquitto/acl)."""
SCHEMAS = {
    kind: Draft202012Validator(
        json.loads(resources.files("edge").joinpath("schemas", f"{kind}.json").read_text())
    )
    for kind in contract.MESSAGE_KINDS
}


def unique_id(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:10]}"


class StrokeSource:
    """Sine strokes at 100 Hz with a session; ``live`` paces them in real time."""

    def __init__(self, n: int, live: bool, rate_hz: float = 100.0) -> None:
        self.n, self.live, self.rate_hz = n, live, rate_hz
        self.t0_ns = time.time_ns()
        self._stop = threading.Event()

    def items(self) -> Iterator[SourceItem]:
        start = time.monotonic()
        period = 1e9 / self.rate_hz
        yield SourceEvent(
            self.t0_ns, "session_started", {"patient_id": "pt-1", "session_id": "s-1"}
        )
        for i in range(self.n):
            if self.live:
                delay = start + i / self.rate_hz - time.monotonic()
                if delay > 0 and self._stop.wait(delay):
                    return
            elif self._stop.is_set():
                return
            x = 200.0 + 150.0 * math.sin(2 * math.pi * i / 200)
            yield Sample(self.t0_ns + round(i * period), x, 300.0, 310.0, 50.0)
        yield SourceEvent(self.t0_ns + round(self.n * period), "session_ended", {})

    def close(self) -> None:
        self._stop.set()


class Collector:
    """Subscribes (QoS 1, persistent session) to one clinic's topics and keeps everything."""

    def __init__(self, settings: MqttSettings, clinic_id: str) -> None:
        self.messages: list[tuple[str, dict[str, Any]]] = []
        self._lock = threading.Lock()
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=unique_id("collect-"), protocol=mqtt.MQTTv5
        )
        self.client.on_connect = lambda c, *_: c.subscribe(f"sledfleet/v1/{clinic_id}/#", qos=1)
        self.client.on_message = self._on_message
        self.client.reconnect_delay_set(1, 2)
        if settings.username:
            self.client.username_pw_set(settings.username, settings.password.reveal())
        self.connected = threading.Event()
        self.client.on_subscribe = lambda *_: self.connected.set()
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        props.SessionExpiryInterval = 600
        self.client.connect(settings.host, settings.port, clean_start=False, properties=props)
        self.client.loop_start()
        if not self.connected.wait(60):
            raise AssertionError("collector did not subscribe")

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        if not msg.payload:
            return
        with self._lock:
            self.messages.append((msg.topic, json.loads(msg.payload)))

    def of(self, kind: str) -> list[dict[str, Any]]:
        with self._lock:
            return [p for t, p in self.messages if t.endswith("/" + kind)]

    def seqs(self) -> list[int]:
        return [f["seq"] for f in self.of("telemetry")]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def check_all(collector: Collector) -> None:
    """Every collected message passes the contract and its JSON Schema."""
    for topic, payload in collector.messages:
        kind = contract.parse_topic(topic).kind
        contract.validate_message(topic, contract.encode(payload))
        errors = [e.message for e in SCHEMAS[kind].iter_errors(payload)]
        assert errors == [], (topic, errors)


class AgentThread:
    """A FleetRunner in a background thread."""

    def __init__(self, machines: list[tuple[EdgeSettings, Any]], mqtt_settings: MqttSettings):
        self.runner = FleetRunner(machines, mqtt_settings, drain_timeout_s=5.0)
        self.stats: FleetStats | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        self.stats = self.runner.run()

    def join(self, timeout: float) -> FleetStats:
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "agent did not finish"
        assert self.stats is not None
        return self.stats

    def stop(self, timeout: float = 30) -> FleetStats:
        self.runner.stop()
        return self.join(timeout)


def secure_broker(service_password: str) -> PrivateMosquitto:
    """A private Mosquitto in secure mode (TLS listener, password file, device ACLs)."""
    return PrivateMosquitto(
        extra_env={
            "SLEDFLEET_MQTT_SECURE": "1",
            "SLEDFLEET_MQTT_USERNAME": SERVICE_USER,
            "SLEDFLEET_MQTT_PASSWORD": service_password,
        }
    )


def agent_cli(args: list[str], env_extra: dict[str, str]) -> subprocess.Popen[bytes]:
    """``sledfleet edge run ...`` as a subprocess (the real entry point)."""
    env = {**os.environ, **env_extra}
    return subprocess.Popen(
        [sys.executable, "-m", "edge.cli", "edge", "run", *args],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        cwd=REPO,
    )
