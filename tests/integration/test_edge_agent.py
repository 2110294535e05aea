"""The edge agent against the real (shared) Mosquitto: order, no gaps, birth/death, config."""

from __future__ import annotations

import itertools
from pathlib import Path

import paho.mqtt.publish as publish
import pytest
from edge_support import AgentThread, Collector, StrokeSource, check_all, wait_until

from edge import contract
from edge.agent_settings import EdgeSettings
from edge.settings import MqttSettings

pytestmark = pytest.mark.integration


@pytest.fixture
def broker(mqtt_settings: MqttSettings) -> MqttSettings:
    """The shared Mosquitto (tests/integration/conftest.py skips or fails when it is down)."""
    return mqtt_settings


def edge_settings(clinic: str, machine: str, outbox: Path) -> EdgeSettings:
    # short session expiry: test sessions must not linger on the shared broker for a week
    return EdgeSettings(
        machine_id=machine, clinic_id=clinic, outbox_dir=str(outbox), session_expiry_s=120
    )


@pytest.fixture
def ids(unique: str) -> tuple[str, str]:
    return f"c{unique}", f"m{unique}"


def test_frames_arrive_in_order_without_gaps(
    broker: MqttSettings, ids: tuple[str, str], tmp_path: Path
) -> None:
    clinic, machine = ids
    collector = Collector(broker, clinic)
    try:
        settings = edge_settings(clinic, machine, tmp_path)
        agent = AgentThread([(settings, StrokeSource(10_000, live=False))], broker)
        stats = agent.join(60)
        assert (stats.frames, stats.acked, stats.undelivered_rows) == (200, 202, 0)
        wait_until(lambda: len(collector.of("telemetry")) >= 200, 60, "200 frames")
        wait_until(lambda: collector.of("state")[-1]["status"] == "offline", 60, "offline")
        frames = collector.of("telemetry")
        assert [f["seq"] for f in frames] == list(range(200))  # in order, no gaps, no dups
        assert not any(f["replayed"] for f in frames)
        assert all(f["session_id"] == "s-1" for f in frames)
        t0s = [f["t0_ns"] for f in frames]
        assert all(b - a == 500_000_000 for a, b in itertools.pairwise(t0s))
        events = collector.of("event")
        assert [(e["type"], e["seq"]) for e in events] == [
            ("session_started", 0),
            ("session_ended", 1),
        ]
        birth = collector.of("state")[0]
        assert birth["status"] == "online"
        assert birth["agent_version"]
        assert birth["rate_hz"] == 100.0
        assert birth["clock_offset_ms"] is None  # a non-live source
        check_all(collector)
    finally:
        collector.close()


def test_config_is_applied_and_reported_in_the_birth(
    broker: MqttSettings, ids: tuple[str, str], tmp_path: Path
) -> None:
    clinic, machine = ids
    config_topic = contract.mqtt_topic(clinic, machine, "config")
    cfg = {"v": 1, "clinic_id": clinic, "machine_id": machine, "config_version": 7}
    cfg |= {"frame_samples": 20, "rate_hz": 50, "calibration": {"usable_rom_mm": 410}}
    publish.single(
        config_topic,
        contract.encode(cfg),
        qos=1,
        retain=True,
        hostname=broker.host,
        port=broker.port,
        protocol=5,
    )
    collector = Collector(broker, clinic)
    try:
        settings = edge_settings(clinic, machine, tmp_path)
        agent = AgentThread([(settings, StrokeSource(100_000, live=True))], broker)

        def applied() -> bool:
            return any(s.get("config_version") == 7 for s in collector.of("state"))

        wait_until(applied, 60, "a birth with config_version 7")
        birth = [s for s in collector.of("state") if s.get("config_version") == 7][-1]
        assert (birth["frame_samples"], birth["rate_hz"]) == (20, 50.0)
        assert birth["calibration"] == {"usable_rom_mm": 410}
        assert birth["config_error"] is None
        wait_until(lambda: len(collector.of("telemetry")) >= 4, 60, "frames after the config")
        agent.stop()
        last = collector.of("telemetry")[-2]
        assert (len(last["position_mm"]), last["rate_hz"]) == (20, 50.0)
        assert isinstance(birth["clock_offset_ms"], float | int)
        assert abs(birth["clock_offset_ms"]) < 1000  # samples stamped by this host's clock
        check_all(collector)
    finally:
        publish.single(
            config_topic, b"", qos=1, retain=True, hostname=broker.host, port=broker.port
        )
        collector.close()


def test_rejected_config_is_reported(
    broker: MqttSettings, ids: tuple[str, str], tmp_path: Path
) -> None:
    clinic, machine = ids
    config_topic = contract.mqtt_topic(clinic, machine, "config")
    bad = {"v": 1, "clinic_id": clinic, "machine_id": machine, "config_version": 1, "rate_hz": 33}
    collector = Collector(broker, clinic)
    try:
        settings = edge_settings(clinic, machine, tmp_path)
        agent = AgentThread([(settings, StrokeSource(100_000, live=True))], broker)
        wait_until(lambda: collector.of("state"), 60, "the birth")
        publish.single(
            config_topic,
            contract.encode(bad),
            qos=1,
            retain=True,
            hostname=broker.host,
            port=broker.port,
            protocol=5,
        )

        def reported() -> bool:
            return any(s.get("config_error") for s in collector.of("state"))

        wait_until(reported, 60, "a birth with config_error")
        agent.stop()
        state = [s for s in collector.of("state") if s.get("config_error")][-1]
        assert "not the source rate" in state["config_error"]
        assert state["config_version"] is None
        assert state["rate_hz"] == 100.0
    finally:
        publish.single(
            config_topic, b"", qos=1, retain=True, hostname=broker.host, port=broker.port
        )
        collector.close()
