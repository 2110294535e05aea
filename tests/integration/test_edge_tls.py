"""The agent over TLS with a per-device username/password on a PRIVATE secure Mosquitto
(services/start in secure mode: TLS listener with a project CA, password file, device ACLs)."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from edge_support import (
    SERVICE_USER,
    AgentThread,
    Collector,
    StrokeSource,
    check_all,
    secure_broker,
    unique_id,
    wait_until,
)

from edge.agent_settings import EdgeSettings
from edge.settings import MqttSettings, Secret

pytestmark = pytest.mark.integration

DEVICE_SECRET = "device-secret-0123456789"


def test_agent_publishes_over_tls_with_device_credentials(tmp_path: Path) -> None:
    clinic, machine = unique_id("c"), unique_id("m")
    service_password = uuid.uuid4().hex
    broker = secure_broker(service_password).start()
    broker.add_device(clinic, machine, DEVICE_SECRET)
    try:
        service = MqttSettings(
            host="127.0.0.1",
            port=broker.port,
            username=SERVICE_USER,
            password=Secret(service_password),
        )
        collector = Collector(service, clinic)
        device = MqttSettings(
            host="127.0.0.1",
            port=broker.tls_port,
            tls=True,
            ca_file=str(broker.ca_file),
            username=machine,
            password=Secret(DEVICE_SECRET),
        )
        settings = EdgeSettings(machine_id=machine, clinic_id=clinic, outbox_dir=str(tmp_path))
        stats = AgentThread([(settings, StrokeSource(2000, live=False))], device).join(60)
        assert stats.undelivered_rows == 0
        wait_until(lambda: len(collector.seqs()) >= 40, 60, "40 frames over TLS")
        assert collector.seqs() == list(range(40))
        wait_until(lambda: collector.of("state")[-1]["status"] == "offline", 60, "offline")
        check_all(collector)
        collector.close()
    finally:
        broker.cleanup()


def test_wrong_password_keeps_everything_in_the_outbox(tmp_path: Path) -> None:
    clinic, machine = unique_id("c"), unique_id("m")
    broker = secure_broker(uuid.uuid4().hex).start()
    broker.add_device(clinic, machine, DEVICE_SECRET)
    try:
        device = MqttSettings(
            host="127.0.0.1",
            port=broker.tls_port,
            tls=True,
            ca_file=str(broker.ca_file),
            username=machine,
            password=Secret("wrong-password-0123456789"),
        )
        settings = EdgeSettings(
            machine_id=machine, clinic_id=clinic, outbox_dir=str(tmp_path), connect_wait_s=1
        )
        agent = AgentThread([(settings, StrokeSource(1000, live=False))], device)
        wait_until(lambda: agent.runner.agents[0].framer.stats.frames >= 20, 60, "frames")
        link = agent.runner.agents[0].link
        wait_until(lambda: link.last_error, 60, "the refusal")
        assert "Not authorized" in link.last_error or "Bad user" in link.last_error
        stats = agent.stop()
        assert stats.acked == 0
        assert stats.undelivered_rows == 22  # 20 frames + 2 events kept for later
    finally:
        broker.cleanup()
