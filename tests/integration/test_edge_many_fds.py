"""Edge agents whose sockets are past descriptor 1,023 connect and deliver (real Mosquitto).

paho 2.2's select() refused such descriptors: a process with ~150 agents could not connect
any more (edge.paho_fds). Here 1,100 descriptors are opened first, so every agent's MQTT
socket, wake-up pair and outbox get numbers select() cannot take.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest
from edge_support import AgentThread, Collector, StrokeSource, wait_until

from edge import paho_fds
from edge.agent_settings import EdgeSettings
from edge.settings import MqttSettings

pytestmark = pytest.mark.integration

FILLER = 1100
MACHINES = 3
SAMPLES = 2_000  # 40 frames of 50 samples per machine


def test_agents_past_descriptor_1023_deliver_every_frame(
    mqtt_settings: MqttSettings, unique: str, tmp_path: Path
) -> None:
    clinic = f"c{unique}"
    collector = Collector(mqtt_settings, clinic)
    paho_fds.raise_open_files_limit(FILLER // paho_fds.FDS_PER_AGENT + 50)
    filler = [os.open(os.devnull, os.O_RDONLY) for _ in range(FILLER)]
    try:
        with socket.socket() as probe:
            assert probe.fileno() > 1023  # every socket from here on is past select()'s range
        machines = [
            (
                EdgeSettings(
                    machine_id=f"m{unique}-{i}",
                    clinic_id=clinic,
                    outbox_dir=str(tmp_path),
                    session_expiry_s=120,
                ),
                StrokeSource(SAMPLES, live=False),
            )
            for i in range(MACHINES)
        ]
        stats = AgentThread(machines, mqtt_settings).join(120)
    finally:
        for fd in filler:
            os.close(fd)
    try:
        frames = SAMPLES // 50
        assert (stats.frames, stats.undelivered_rows) == (MACHINES * frames, 0)
        wait_until(
            lambda: len(collector.of("telemetry")) >= MACHINES * frames,
            30,
            "every frame at the subscriber",
        )
        by_machine: dict[str, list[int]] = {}
        for f in collector.of("telemetry"):
            by_machine.setdefault(f["machine_id"], []).append(f["seq"])
        assert {m: sorted(set(s)) for m, s in by_machine.items()} == {
            f"m{unique}-{i}": list(range(frames)) for i in range(MACHINES)
        }
    finally:
        collector.close()
