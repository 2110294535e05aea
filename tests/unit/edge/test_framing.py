"""Framing rules: frame sizes, cuts, gap filling, runts, events, seq counters."""

from __future__ import annotations

import uuid

import pytest
from edge_synth import T0_NS

from edge import contract
from edge.framing import Framer, Outgoing
from edge.samples import Sample, SourceEvent

P = 10_000_000  # 100 Hz period in ns


def s(i: int, load: float = 40.0, pos: float | None = 100.0, t: int | None = None) -> Sample:
    return Sample(T0_NS + i * P if t is None else t, pos, 300.0, 290.0, load)


def run(framer: Framer, items: list[Sample | SourceEvent], flush: bool = True) -> list[Outgoing]:
    out: list[Outgoing] = []
    for item in items:
        out += framer.feed(item)
    if flush:
        out += framer.flush()
    return out


def frames(out: list[Outgoing]) -> list[dict]:
    return [o.payload for o in out if o.kind == "telemetry"]


def sizes(out: list[Outgoing]) -> list[int]:
    return [len(p["position_mm"]) for p in frames(out)]


@pytest.fixture
def framer() -> Framer:
    return Framer("c1", "m1", 100.0, frame_samples=50)


def test_full_frames_are_valid_consecutive_and_numbered(framer: Framer) -> None:
    out = run(framer, [s(i) for i in range(250)])
    fs = frames(out)
    assert sizes(out) == [50] * 5
    assert [f["seq"] for f in fs] == [0, 1, 2, 3, 4]
    assert [f["t0_ns"] for f in fs] == [T0_NS + k * 50 * P for k in range(5)]
    for f in fs:
        contract.validate_telemetry(f)
        assert f["replayed"] is False
        assert contract.encode(f).endswith(b'"replayed":false}')
    assert framer.stats.samples == 250
    assert framer.stats.runt_samples == 0


def test_frames_are_held_back_only_min_frame_samples(framer: Framer) -> None:
    out = run(framer, [s(i) for i in range(59)], flush=False)
    assert out == []
    out = framer.feed(s(59))
    assert sizes(out) == [50]
    assert sizes(framer.flush()) == [10]


def test_seq_continues_from_the_persisted_counter() -> None:
    f = Framer("c1", "m1", 100.0, 50, next_seq=41, next_event_seq=7)
    out = run(f, [s(0), SourceEvent(T0_NS, "fault", {"code": "E1"}), *[s(i) for i in range(1, 60)]])
    assert [p["seq"] for p in frames(out)] == [41, 42]
    assert [o.payload["seq"] for o in out if o.kind == "event"] == [7]
    assert (f.next_seq, f.next_event_seq) == (43, 8)


def test_session_change_cuts_and_folds_the_short_tail(framer: Framer) -> None:
    start = SourceEvent(
        T0_NS + 55 * P, "session_started", {"patient_id": "p-1", "session_id": "s-1"}
    )
    items = [s(i) for i in range(55)] + [start] + [s(i) for i in range(55, 80)]
    out = run(framer, items)
    assert [o.kind for o in out] == ["telemetry", "event", "telemetry"]
    assert sizes(out) == [55, 25]  # 55 fits in one frame: never a frame of 5
    assert [f["session_id"] for f in frames(out)] == [None, "s-1"]
    ev = out[1].payload
    contract.validate_event(ev)
    assert ev["session_id"] == "s-1"
    assert ev["patient_id"] == "p-1"
    uuid.UUID(ev["event_id"])


def test_long_tail_is_split_into_two_valid_frames() -> None:
    f = Framer("c1", "m1", 100.0, frame_samples=100)
    out = run(f, [s(i) for i in range(105)])
    assert sizes(out) == [95, 10]
    assert frames(out)[1]["t0_ns"] == T0_NS + 95 * P


def test_runt_run_is_dropped_and_counted(framer: Framer) -> None:
    items = [s(i, load=40) for i in range(5)] + [s(i, load=50) for i in range(5, 30)]
    out = run(framer, items)
    assert sizes(out) == [25]
    assert frames(out)[0]["load_kg"] == 50
    assert framer.stats.runt_samples == 5


def test_load_change_cuts(framer: Framer) -> None:
    items = [s(i, load=40) for i in range(30)] + [s(i, load=60) for i in range(30, 60)]
    out = run(framer, items)
    assert sizes(out) == [30, 30]
    assert [f["load_kg"] for f in frames(out)] == [40, 60]


def test_short_gap_is_filled_with_dropouts(framer: Framer) -> None:
    items = [s(i) for i in range(20)] + [s(i) for i in range(23, 40)]
    out = run(framer, items)
    assert sizes(out) == [40]
    pos = frames(out)[0]["position_mm"]
    assert pos[20:23] == [None, None, None]
    assert pos[23] == 100.0
    assert framer.stats.filled_samples == 3


def test_jittered_timestamps_stay_in_one_frame(framer: Framer) -> None:
    # up to a quarter period either way (e.g. samples stamped on arrival by a host)
    jitter = [2_400_000, -2_400_000, 0, 1_000_000]
    out = run(framer, [s(i, t=T0_NS + i * P + jitter[i % 4]) for i in range(50)])
    assert sizes(out) == [50]


@pytest.mark.parametrize("jump", [+500 * P, -30 * P])
def test_clock_jump_cuts_the_frame(framer: Framer, jump: int) -> None:
    items = [s(i) for i in range(20)] + [s(i, t=T0_NS + i * P + jump) for i in range(20, 45)]
    out = run(framer, items)
    assert sizes(out) == [20, 25]
    assert frames(out)[1]["t0_ns"] == T0_NS + 20 * P + jump
    assert framer.stats.clock_jumps == 1


def test_out_of_range_values_become_dropouts(framer: Framer) -> None:
    items = [s(i, pos=(2000.0 if i == 3 else float("nan") if i == 4 else 10.0)) for i in range(20)]
    out = run(framer, items)
    pos = frames(out)[0]["position_mm"]
    assert pos[3] is None
    assert pos[4] is None
    assert framer.stats.out_of_range_values == 2
    contract.validate_telemetry(frames(out)[0])


def test_invalid_events_are_rejected_and_counted(framer: Framer) -> None:
    out = run(framer, [SourceEvent(T0_NS, "session_ended", {}), SourceEvent(T0_NS, "bogus", {})])
    assert out == []
    assert framer.stats.rejected_events == 2
    assert "unknown_event_type" in framer.stats.last_rejection
    assert framer.next_event_seq == 0


def test_events_cannot_override_identity_fields(framer: Framer) -> None:
    out = run(framer, [SourceEvent(T0_NS, "fault", {"code": "E7", "seq": 99, "machine_id": "x"})])
    ev = out[0].payload
    assert (ev["seq"], ev["machine_id"], ev["code"]) == (0, "m1", "E7")
    assert list(ev)[-1] == "replayed"


def test_session_end_clears_the_session(framer: Framer) -> None:
    items = [
        SourceEvent(T0_NS, "session_started", {"patient_id": "p", "session_id": "s-9"}),
        *[s(i) for i in range(20)],
        SourceEvent(T0_NS + 20 * P, "session_ended", {}),
        *[s(i) for i in range(20, 40)],
    ]
    out = run(framer, items)
    assert [o.kind for o in out] == ["event", "telemetry", "event", "telemetry"]
    assert out[2].payload["session_id"] == "s-9"
    assert [f["session_id"] for f in frames(out)] == ["s-9", None]


def test_decimation_halves_the_rate() -> None:
    f = Framer("c1", "m1", 100.0, frame_samples=10, decimation=2)
    out = run(f, [s(i) for i in range(40)])
    assert f.rate_hz == 50.0
    assert sizes(out) == [10, 10]
    assert frames(out)[1]["t0_ns"] == T0_NS + 20 * P
    assert frames(out)[0]["rate_hz"] == 50.0


def test_frame_size_change_flushes(framer: Framer) -> None:
    run(framer, [s(i) for i in range(30)], flush=False)
    assert sizes(framer.set_frame_samples(20)) == [30]
    assert sizes(run(framer, [s(i) for i in range(30, 70)])) == [20, 20]


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError):
        Framer("c1", "m1", 100.0, frame_samples=5)
    with pytest.raises(ValueError):
        Framer("c1", "m1", 5.0)
    with pytest.raises(contract.ContractError):
        Framer("c/1", "m1", 100.0)
