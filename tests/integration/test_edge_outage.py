"""Store-and-forward under failure, on real Mosquitto instances:

* a PRIVATE Mosquitto stopped for 30 s mid-session and restarted: every frame arrives,
  exactly once after dedup by (machine_id, seq), the backlog flagged replayed;
* the agent (``sledfleet edge run``) killed with SIGKILL mid-session and restarted: nothing
  lost, seq continues;
* a full outbox follows its policy (oldest frames dropped, counted) and reports it in state.
"""

from __future__ import annotations

import csv
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from edge_support import (
    AgentThread,
    Collector,
    StrokeSource,
    agent_cli,
    check_all,
    unique_id,
    wait_until,
)
from servers import PrivateMosquitto

from edge.agent_settings import EdgeSettings

pytestmark = [pytest.mark.integration, pytest.mark.slow]

OUTAGE_S = 30


@pytest.fixture
def private_broker() -> Iterator[PrivateMosquitto]:
    with PrivateMosquitto() as broker:
        yield broker


def assert_exactly_once(seqs: list[int]) -> set[int]:
    unique = set(seqs)
    assert unique == set(range(max(unique) + 1)), "a frame is missing"
    return unique


def test_broker_outage_of_30_s_loses_nothing(
    private_broker: PrivateMosquitto, tmp_path: Path
) -> None:
    clinic, machine = unique_id("c"), unique_id("m")
    collector = Collector(private_broker.settings, clinic)
    settings = EdgeSettings(
        machine_id=machine,
        clinic_id=clinic,
        outbox_dir=str(tmp_path / "outbox"),
        reconnect_max_s=2,
    )
    seconds = OUTAGE_S + 15
    agent = AgentThread(
        [(settings, StrokeSource(int(seconds * 100), live=True))], private_broker.settings
    )
    try:
        wait_until(lambda: len(collector.seqs()) >= 6, 60, "frames before the outage")
        private_broker.stop()
        received_before = len(collector.seqs())
        time.sleep(OUTAGE_S)  # the outage itself: nothing to poll for
        private_broker.start()
        stats = agent.join(seconds + 60)
        expected = stats.frames
        wait_until(lambda: len(set(collector.seqs())) >= expected, 30, f"{expected} frames")
    finally:
        agent.runner.stop()
        collector.close()
    seqs = collector.seqs()
    unique = assert_exactly_once(seqs)
    assert len(unique) == expected == seconds * 100 // 50
    assert stats.undelivered_rows == 0
    frames = {f["seq"]: f for f in collector.of("telemetry")}
    replayed = sorted(s for s, f in frames.items() if f["replayed"])
    assert len(replayed) >= (OUTAGE_S - 2) * 2, "the outage backlog was not flagged replayed"
    assert min(replayed) >= received_before - 1
    # frames sent live after the backlog are not flagged
    assert not frames[max(unique)]["replayed"]
    births = [s for s in collector.of("state") if s["status"] == "online"]
    assert len(births) >= 2  # one per connection
    check_all(collector)


def write_recording(path: Path, seconds: int) -> Path:
    t0 = 1_763_900_000 * 10**9
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["t_ns", "position_mm", "force_left_n", "force_right_n", "load_kg"])
        for i in range(seconds * 100):
            w.writerow([t0 + i * 10_000_000, 100 + i % 300, 250.0, 260.0, 40])
    return path


def test_kill_9_mid_session_loses_nothing_and_seq_continues(tmp_path: Path) -> None:
    broker = PrivateMosquitto().start()
    clinic, machine = unique_id("c"), unique_id("m")
    collector = Collector(broker.settings, clinic)
    recording = write_recording(tmp_path / "rec.csv", 20)
    args = [
        *("--source", f"csv:{recording}", "--realtime", "--restamp"),
        *("--machine-id", machine, "--clinic-id", clinic),
        *("--outbox-dir", str(tmp_path / "outbox"), "--mqtt-port", str(broker.port)),
    ]
    env = {"SLEDFLEET_EDGE_STATE_INTERVAL_S": "3600"}
    first = agent_cli(args, env)
    try:
        wait_until(lambda: len(collector.seqs()) >= 8, 30, "frames from the first run")
        first.send_signal(signal.SIGKILL)
        assert first.wait(10) == -signal.SIGKILL
        wait_until(lambda: collector.of("state")[-1]["status"] == "offline", 60, "the last will")
        last_before = max(collector.seqs())
        second = agent_cli(args, env)
        assert second.wait(90) == 0, second.stderr.read().decode()[-2000:] if second.stderr else ""
    finally:
        if first.poll() is None:
            first.kill()
        collector.close()
        broker.cleanup()
    seqs = collector.seqs()
    unique = assert_exactly_once(seqs)
    # the second run replayed the same 20 s recording: its frames continue the numbering
    assert max(unique) >= last_before + 20 * 100 // 50 - 1
    assert (
        sum(1 for f in collector.of("telemetry") if f["seq"] > last_before and not f["replayed"])
        >= 30
    )
    states = collector.of("state")
    assert [s["status"] for s in states][-1] == "offline"
    assert os.path.exists(tmp_path / "outbox" / f"{clinic}.{machine}.db")
    check_all(collector)


def test_full_outbox_drops_oldest_frames_and_reports_them(tmp_path: Path) -> None:
    broker = PrivateMosquitto()  # its port is chosen but nothing listens yet: the agent buffers
    clinic, machine = unique_id("c"), unique_id("m")
    settings = EdgeSettings(
        machine_id=machine,
        clinic_id=clinic,
        outbox_dir=str(tmp_path / "outbox"),
        outbox_max_rows=25,
        connect_wait_s=0.5,
        reconnect_min_s=1,
        reconnect_max_s=1,
        backpressure_rows=10**6,
    )
    agent = AgentThread([(settings, StrokeSource(5000, live=False))], broker.settings)
    try:
        wait_until(lambda: agent.runner.agents[0].framer.stats.frames >= 100, 30, "100 frames")
        outbox = agent.runner.agents[0].outbox
        # 25 rows: the session_started event (never dropped) and the 24 newest frames
        wait_until(lambda: outbox.stats().dropped_frames >= 76, 60, "drops")
        broker.start()
        collector = Collector(broker.settings, clinic)
        try:
            stats = agent.join(60)
            wait_until(lambda: len(collector.seqs()) >= 23, 60, "the kept frames")
            births = [s for s in collector.of("state") if s["status"] == "online"]
        finally:
            collector.close()
    finally:
        agent.runner.stop()
        broker.cleanup()
    assert stats.frames == 100
    # 2 events + 23 frames fill the 25 rows when the source ends: 77 frames dropped
    assert stats.dropped_frames == 77
    seqs = collector.seqs()
    assert seqs == list(range(77, 100))  # the newest frames were kept, in order
    assert all(f["replayed"] for f in collector.of("telemetry"))
    assert births[-1]["outbox_dropped"] == 77
    assert births[-1]["outbox"]["dropped_samples"] == 77 * 50
    events = [e["type"] for e in collector.of("event")]
    assert events == ["session_started", "session_ended"]  # events are never dropped
    check_all(collector)
