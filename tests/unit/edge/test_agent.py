"""The agent's pump logic against a fake link (no network): store before publish,
delete after PUBACK, inflight window, replay flag, birth, config apply, restarts."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import pytest
from edge_synth import T0_NS, SineSource

from edge import contract
from edge.agent import EdgeAgent
from edge.agent_settings import EdgeSettings
from edge.mqtt_link import Will
from edge.samples import SourceEvent
from edge.settings import MqttSettings


class FakeLink:
    """Records publishes; the test decides when PUBACKs and connections happen."""

    def __init__(self) -> None:
        self.connected = threading.Event()
        self.generation = 0
        self.sent: list[tuple[int, str, bytes, bool]] = []
        self.acks: list[tuple[int, bool]] = []
        self.messages: list[tuple[str, bytes]] = []
        self._mid = 0
        self.stopped_with: Will | None = None
        self.receive_maximum = 65535

    def start(self) -> None:
        self.connect()

    def connect(self) -> None:
        self.generation += 1
        self.connected.set()

    def drop(self) -> None:
        self.connected.clear()

    def publish(self, topic: str, payload: bytes, qos: int = 1, retain: bool = False) -> int:
        self._mid += 1
        self.sent.append((self._mid, topic, payload, retain))
        return self._mid

    def ack_all(self, ok: bool = True) -> None:
        self.acks += [(mid, ok) for mid, *_ in self.sent]

    def take_acks(self) -> list[tuple[int, bool]]:
        acks, self.acks = self.acks, []
        return acks

    def take_messages(self) -> list[tuple[str, bytes]]:
        msgs, self.messages = self.messages, []
        return msgs

    def stop(self, last_words: Will | None = None, timeout_s: float = 2.0) -> None:
        self.stopped_with = last_words
        self.connected.clear()

    def payloads(self, kind: str) -> list[dict[str, Any]]:
        return [json.loads(p) for _, t, p, _ in self.sent if t.endswith("/" + kind)]


def make_agent(tmp_path: Path, max_inflight: int = 1000, **kw: Any) -> tuple[EdgeAgent, FakeLink]:
    settings = EdgeSettings(machine_id="m1", clinic_id="c1", outbox_dir=str(tmp_path), **kw)
    agent = EdgeAgent(settings, MqttSettings(max_inflight=max_inflight), 100.0, live=False)
    link = FakeLink()
    agent.link = link  # type: ignore[assignment]
    return agent, link


def feed(agent: EdgeAgent, n: int, start: int = 0) -> None:
    """Samples ``start`` .. ``start + n - 1`` of one continuous stroke signal."""
    for item in SineSource(n, t0_ns=T0_NS + start * 10_000_000).items():
        agent.feed(item)


def test_frames_are_stored_before_publish_and_deleted_after_puback(tmp_path: Path) -> None:
    agent, link = make_agent(tmp_path)
    agent.start()
    feed(agent, 260)
    assert agent.outbox.stats().rows == 0  # below the store batch: still buffered
    agent.pump()
    births = link.payloads("state")
    assert births[0]["status"] == "online"
    assert births[0]["next_seq"] == 5
    frames = link.payloads("telemetry")
    assert [f["seq"] for f in frames] == [0, 1, 2, 3, 4]
    assert not any(f["replayed"] for f in frames)
    assert agent.outbox.stats().rows == 5  # stored, not yet acknowledged
    link.ack_all()
    agent.pump()
    assert agent.outbox.stats().rows == 0
    assert agent.acked == 5


def test_backlog_counts_frames_buffered_for_the_next_store(tmp_path: Path) -> None:
    # a replay source paces itself on the backlog: frames not stored yet must count, or it
    # stacks a whole store batch on top of the outbox bound between two pumps
    agent, link = make_agent(tmp_path, max_inflight=2)
    agent.start()
    feed(agent, 260)
    assert agent.outbox.stats().rows == 0
    assert agent.backlog() == 5
    agent.pump()
    assert (agent.outbox.stats().rows, len(link.payloads("telemetry"))) == (5, 2)
    assert agent.backlog() == 3


def test_inflight_window_is_respected(tmp_path: Path) -> None:
    agent, link = make_agent(tmp_path, max_inflight=2)
    agent.start()
    feed(agent, 510)
    agent.pump()
    assert len(link.payloads("telemetry")) == 2
    link.ack_all()
    agent.pump()
    assert [f["seq"] for f in link.payloads("telemetry")] == [0, 1, 2, 3]


def test_backlog_after_reconnect_is_flagged_replayed(tmp_path: Path) -> None:
    agent, link = make_agent(tmp_path)
    agent.start()
    feed(agent, 110)
    agent.pump()
    link.ack_all()
    agent.pump()
    link.drop()
    feed(agent, 150, start=110)  # 3 more frames while offline
    agent.pump()
    assert len(link.payloads("telemetry")) == 2
    link.connect()
    agent.pump()
    tele = link.payloads("telemetry")
    assert [(f["seq"], f["replayed"]) for f in tele[2:]] == [(2, True), (3, True), (4, True)]
    assert link.payloads("state")[-1]["status"] == "online"
    feed(agent, 100, start=260)
    agent.pump()
    assert link.payloads("telemetry")[-1]["replayed"] is False


def test_restart_continues_seq_and_replays_undelivered(tmp_path: Path) -> None:
    agent, _link = make_agent(tmp_path)
    agent.start()
    feed(agent, 210)
    agent.pump()  # 4 frames handed, never acknowledged: the process dies
    agent.outbox.close()
    agent2, link2 = make_agent(tmp_path)
    agent2.start()
    agent2.pump()
    assert [(f["seq"], f["replayed"]) for f in link2.payloads("telemetry")] == [
        (0, True),
        (1, True),
        (2, True),
        (3, True),
    ]
    feed(agent2, 60, start=1000)
    agent2.pump()
    assert [f["seq"] for f in link2.payloads("telemetry")][-1] == 4


def test_rejected_publish_is_resent_after_reconnect(tmp_path: Path) -> None:
    agent, link = make_agent(tmp_path)
    agent.start()
    feed(agent, 60)
    agent.pump()
    link.ack_all(ok=False)
    agent.pump()
    assert agent.outbox.stats().rows == 1
    link.drop()
    link.connect()
    agent.pump()
    tele = link.payloads("telemetry")
    assert [(f["seq"], f["replayed"]) for f in tele] == [(0, False), (0, True)]


def config(version: int, **fields: Any) -> tuple[str, bytes]:
    payload = {"v": 1, "machine_id": "m1", "clinic_id": "c1", "config_version": version, **fields}
    return "sledfleet/v1/c1/m1/config", contract.encode(payload)


def test_config_is_applied_persisted_and_reported(tmp_path: Path) -> None:
    agent, link = make_agent(tmp_path)
    agent.start()
    agent.pump()
    calibration = {"usable_rom_mm": 400}
    link.messages.append(config(3, rate_hz=50, frame_samples=20, calibration=calibration))
    agent.pump()
    birth = link.payloads("state")[-1]
    assert (birth["config_version"], birth["rate_hz"], birth["frame_samples"]) == (3, 50.0, 20)
    assert birth["calibration"] == {"usable_rom_mm": 400}
    assert birth["config_error"] is None
    feed(agent, 100)
    agent.finish()
    agent.pump()
    frames = link.payloads("telemetry")
    assert [len(f["position_mm"]) for f in frames] == [20, 20, 10]  # 100 samples decimated
    assert {f["rate_hz"] for f in frames} == {50.0}
    link.messages.append(config(2, frame_samples=99))  # older version: ignored
    agent.pump()
    assert agent.framer.frame_samples == 20
    agent.outbox.close()
    agent2, _ = make_agent(tmp_path)
    assert (agent2.framer.frame_samples, agent2.framer.rate_hz) == (20, 50.0)
    assert agent2.birth()["config_version"] == 3


@pytest.mark.parametrize(
    ("msg", "error"),
    [
        (config(4, rate_hz=30), "not the source rate"),
        (config(4, frame_samples=500), "out_of_range"),
        (("sledfleet/v1/c1/m1/config", b"{oops"), "malformed_json"),
    ],
)
def test_bad_config_is_rejected_and_reported(
    tmp_path: Path, msg: tuple[str, bytes], error: str
) -> None:
    agent, link = make_agent(tmp_path)
    agent.start()
    agent.pump()
    link.messages.append(msg)
    agent.pump()
    birth = link.payloads("state")[-1]
    assert error in birth["config_error"]
    assert birth["config_version"] is None
    assert agent.framer.rate_hz == 100.0


def test_full_outbox_reports_drops_in_state(tmp_path: Path) -> None:
    agent, link = make_agent(tmp_path, outbox_max_rows=3)
    feed(agent, 500)  # never connected: 9 frames into a 3-row outbox
    agent.pump()
    assert agent.outbox.stats().dropped_frames == 6  # 9 frames (40 samples still buffered)
    link.connect()
    agent.pump()
    birth = link.payloads("state")[-1]
    assert birth["outbox_dropped"] == 6
    assert birth["outbox"]["dropped_samples"] == 300
    assert [f["seq"] for f in link.payloads("telemetry")] == [6, 7, 8]
    contract.validate_state(birth)


def test_stop_frames_the_tail_and_says_offline(tmp_path: Path) -> None:
    agent, link = make_agent(tmp_path)
    agent.start()
    feed(agent, 75)
    link.acks = []

    def pump_and_ack() -> None:
        EdgeAgent.pump(agent)
        link.ack_all()

    agent.pump = pump_and_ack  # type: ignore[method-assign]
    agent.stop(drain_timeout_s=1.0)
    assert [len(f["position_mm"]) for f in link.payloads("telemetry")] == [50, 25]
    assert link.stopped_with is not None
    offline = json.loads(link.stopped_with.payload)
    assert offline["status"] == "offline"
    contract.validate_state(offline)


def test_window_respects_the_brokers_receive_maximum(tmp_path: Path) -> None:
    agent, link = make_agent(tmp_path, max_inflight=1000)
    link.receive_maximum = 5
    agent.start()
    feed(agent, 1000)
    agent.pump()
    assert len(link.payloads("telemetry")) == 3  # 5 minus 2 slots kept for state messages


@pytest.mark.parametrize(("resume_after_s", "session"), [(60, "s-1"), (5 * 3600, None)])
def test_restart_mid_session_keeps_the_session(
    tmp_path: Path, resume_after_s: int, session: str | None
) -> None:
    agent, _ = make_agent(tmp_path)
    start = SourceEvent(T0_NS, "session_started", {"patient_id": "p-1", "session_id": "s-1"})
    agent.feed(start)
    feed(agent, 120)
    agent.pump()
    agent.outbox.close()  # killed mid-session
    agent2, link2 = make_agent(tmp_path)
    agent2.start()
    feed(agent2, 60, start=120 + resume_after_s * 100)
    agent2.finish()
    agent2.pump()
    frames = link2.payloads("telemetry")
    assert frames[-1]["session_id"] == session
