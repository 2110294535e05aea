"""The fleet runner's threads and pump with auto-acknowledging fake links (no network)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from edge_synth import SineSource
from test_agent import FakeLink

from edge.agent_settings import EdgeSettings
from edge.fleet_runner import FleetRunner
from edge.samples import SourceItem
from edge.settings import MqttSettings


class AutoAckLink(FakeLink):
    """Acknowledges everything it was given on the next take_acks."""

    def take_acks(self) -> list[tuple[int, bool]]:
        acks = [(mid, True) for mid, *_ in self.sent[len(self.acked_upto) :]]
        self.acked_upto = list(self.sent)
        return acks

    acked_upto: list[object] = []  # noqa: RUF012


class Failing(SineSource):
    def items(self) -> Iterator[SourceItem]:
        yield from list(super().items())[:120]
        raise OSError("sensor cable unplugged")


def runner(tmp_path: Path, sources: list[SineSource], **kw: Any) -> FleetRunner:
    base = EdgeSettings(outbox_dir=str(tmp_path), connect_wait_s=0.1, pump_interval_s=0.005)
    base = replace(base, **kw)
    machines = [(base.for_machine("c1", f"m{i}"), s) for i, s in enumerate(sources)]
    r = FleetRunner(machines, MqttSettings(max_inflight=50))
    for agent in r.agents:
        link = AutoAckLink()
        link.acked_upto = []
        agent.link = link  # type: ignore[assignment]
    return r


def test_many_machines_deliver_everything_and_exit(tmp_path: Path) -> None:
    r = runner(tmp_path, [SineSource(1000) for _ in range(5)])
    stats = r.run()
    assert (stats.machines, stats.frames, stats.acked) == (5, 100, 100)
    assert stats.undelivered_rows == 0
    assert stats.deliver_s is not None
    for agent in r.agents:
        tele = agent.link.payloads("telemetry")  # type: ignore[attr-defined]
        assert [f["seq"] for f in tele] == list(range(20))
        assert tele[0]["machine_id"] == agent.machine_id


@pytest.mark.parametrize("pump_interval_s", [0.005, 0.05])
def test_replay_source_is_paced_by_the_backlog(tmp_path: Path, pump_interval_s: float) -> None:
    # window 50 in flight + at most 10 waiting (stored or buffered) + one chunk of 5 frames:
    # always within 100 rows, however late the pump runs (a slow pump made it drop frames
    # while buffered frames did not count as backlog)
    r = runner(
        tmp_path,
        [SineSource(20_000)],
        backpressure_rows=10,
        outbox_max_rows=100,
        pump_interval_s=pump_interval_s,
    )
    stats = r.run()
    assert stats.frames == 400
    assert stats.dropped_frames == 0  # paced, never over the bound


def test_a_failing_source_is_reported_and_its_data_kept(tmp_path: Path) -> None:
    r = runner(tmp_path, [Failing(1000), SineSource(500)])
    stats = r.run()
    assert stats.source_errors == ["m0: sensor cable unplugged"]
    # the 120 samples before the failure are framed (2 frames + a tail of 20); 500 -> 10
    assert stats.frames == 13
    assert stats.acked == 13


def test_duplicate_machine_ids_are_refused(tmp_path: Path) -> None:
    s = EdgeSettings(outbox_dir=str(tmp_path))
    with pytest.raises(ValueError, match="unique"):
        FleetRunner([(s, SineSource(1)), (s, SineSource(1))], MqttSettings())


class OfflineSource(SineSource):
    """A machine whose uplink is down until its gate opens (after its first 600 samples)."""

    def __init__(self, n: int, opened_by: int = 600) -> None:
        super().__init__(n)
        self.connect_gate = threading.Event()
        self.opened_by = opened_by

    def items(self) -> Iterator[SourceItem]:
        for i, item in enumerate(super().items()):
            if i == self.opened_by:
                self.connect_gate.set()
            yield item


def test_an_offline_machine_connects_when_its_gate_opens_and_replays_its_backlog(
    tmp_path: Path,
) -> None:
    gated, online = OfflineSource(1000), SineSource(500)
    r = runner(tmp_path, [gated, online], backpressure_rows=2)
    stats = r.run()
    assert stats.acked == 30
    assert stats.undelivered_rows == 0
    tele = r.agents[0].link.payloads("telemetry")  # type: ignore[attr-defined]
    # the 12 frames stored before the uplink came back go out first, marked replayed (and
    # whatever the source added before the agent's connection: never a live one before)
    flags = [f["replayed"] for f in tele]
    assert flags[:12] == [True] * 12
    assert flags == sorted(flags, reverse=True)
    assert [f["seq"] for f in tele] == list(range(20))
    assert not any(f["replayed"] for f in r.agents[1].link.payloads("telemetry"))  # type: ignore[attr-defined]


def test_a_known_clock_offset_is_reported_in_the_state(tmp_path: Path) -> None:
    src = SineSource(200)
    src.reported_clock_offset_ms = -4 * 3_600_000.0  # type: ignore[attr-defined]
    r = runner(tmp_path, [src, SineSource(200)])
    r.run()
    states = [a.link.payloads("state") for a in r.agents]  # type: ignore[attr-defined]
    online = [[s for s in st if s["status"] == "online"] for st in states]
    assert online[0]
    assert all(s["clock_offset_ms"] == -14_400_000.0 for s in online[0])
    assert online[1]
    assert all(s["clock_offset_ms"] is None for s in online[1])
