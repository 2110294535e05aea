"""The simulator through the agent and the real Mosquitto: everything that arrives passes
the contract and the JSON Schemas, frames are gapless, sessions are bracketed by events."""

from __future__ import annotations

from pathlib import Path

import pytest
from edge_support import AgentThread, Collector, check_all, unique_id, wait_until

from edge.agent_settings import EdgeSettings
from edge.settings import MqttSettings

pytestmark = pytest.mark.integration
simulator = pytest.importorskip("edge.simulator", reason="the simulator needs numpy (sim extra)")


@pytest.fixture
def broker(mqtt_settings: MqttSettings) -> MqttSettings:
    """The shared Mosquitto (tests/integration/conftest.py skips or fails when it is down)."""
    return mqtt_settings


def test_simulated_week_passes_contract_and_schemas(broker: MqttSettings, tmp_path: Path) -> None:
    prefix = unique_id("s")
    fleet = simulator.build_fleet(
        simulator.FleetConfig(
            clinics=1, machines_per_clinic=1, patients_per_machine=1, days=4, id_prefix=prefix
        )
    )
    sim = fleet.machines[0]
    collector = Collector(broker, sim.clinic_id)
    try:
        settings = EdgeSettings(
            machine_id=sim.machine_id,
            clinic_id=sim.clinic_id,
            outbox_dir=str(tmp_path),
            session_expiry_s=120,
        )
        stats = AgentThread([(settings, sim.source())], broker).join(240)
        assert stats.undelivered_rows == 0
        assert stats.frames > 100
        wait_until(lambda: len(collector.of("telemetry")) >= stats.frames, 30, "all frames")
        wait_until(lambda: len(collector.of("event")) >= stats.events, 30, "all events")
    finally:
        collector.close()
    assert collector.seqs() == list(range(stats.frames))
    types = [e["type"] for e in collector.of("event")]
    assert types.count("session_started") == types.count("session_ended") >= 1
    in_session = [f for f in collector.of("telemetry") if f["session_id"] is not None]
    assert in_session, "no frame carried a session"
    check_all(collector)
