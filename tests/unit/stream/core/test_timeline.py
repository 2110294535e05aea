"""Per-machine order and time (``stream.core.timeline``), alone and driving the core.

The property the worker rests on: a machine's results depend on its own messages only.
Any interleaving of several machines' streams (each kept in its own order), with their
clocks hours apart, one replaying yesterday, at different rates and frame sizes, gives
each machine exactly the records it gets when it streams alone.
"""

from __future__ import annotations

import json
import random
from typing import Any

import pytest

from stream.core.processor import REJECTED, MachineProcessor
from stream.core.settings import CoreSettings
from stream.core.timeline import MAX_HELD, Timeline, frame_end_ns
from tests.unit.stream.core import synth

TICK = 60 * 10**9
GRACE = 30 * 10**9
S = 10**9


def frame(t0: int, seq: int, n: int = 50, rate: float = 100.0) -> dict[str, Any]:
    return {
        "machine_id": "m1",
        "seq": seq,
        "t0_ns": t0,
        "rate_hz": rate,
        "position_mm": [100.0] * n,
    }


def ev(name: str, ts: int | None) -> dict[str, Any]:
    return {"name": name, "ts_ns": ts}


def kinds(steps: list[Any]) -> list[str]:
    return [k if k != "event" else p["name"] for k, p, _ in steps]


def test_the_clock_is_the_end_of_the_machines_own_latest_frame() -> None:
    tl = Timeline()
    assert tl.now() == 0
    steps = tl.on_frame(frame(1000 * S, 0), TICK, GRACE)
    assert steps == [("telemetry", frame(1000 * S, 0), 1000 * S + S // 2)]
    assert tl.clock_ns == frame_end_ns(frame(1000 * S, 0)) == 1000 * S + S // 2
    tl.on_frame(frame(900 * S, 1), TICK, GRACE)  # older device time: the clock stays
    assert tl.clock_ns == 1000 * S + S // 2


def test_a_check_in_waits_for_the_first_frame_at_or_after_it() -> None:
    tl = Timeline()
    tl.on_frame(frame(100 * S, 0), TICK, GRACE)
    assert tl.on_event(ev("in", 110 * S)) == []
    assert kinds(tl.on_frame(frame(105 * S, 1), TICK, GRACE)) == ["telemetry"]
    steps = tl.on_frame(frame(110 * S, 2), TICK, GRACE)
    assert kinds(steps) == ["in", "telemetry"]
    assert steps[0][2] == 105 * S + S // 2  # released at the clock before the frame


def test_an_event_the_frames_already_passed_is_applied_at_once() -> None:
    tl = Timeline()
    tl.on_frame(frame(100 * S, 0), TICK, GRACE)
    assert kinds(tl.on_event(ev("late", 100 * S))) == ["late"]
    assert kinds(tl.on_event(ev("timeless", None))) == ["timeless"]


def test_a_held_event_is_released_when_the_machines_clock_passes_it_by_the_grace() -> None:
    tl = Timeline()
    tl.on_frame(frame(100 * S, 0, n=10), TICK, GRACE)
    tl.on_event(ev("out", 100 * S + S // 2))  # after that frame's start: held
    # a frame that starts before it but ends 30 s later (a long frame at 10 Hz)
    steps = tl.on_frame(frame(100 * S + S // 10, 1, n=400, rate=10.0), TICK, GRACE)
    assert kinds(steps) == ["telemetry", "out", "tick"]  # and its clock crossed 120 s


def test_events_are_released_in_device_time_order_and_a_timeless_one_keeps_its_place() -> None:
    tl = Timeline()
    tl.on_frame(frame(1500 * S, 0), TICK, GRACE)
    for name, ts in (("b", 1520 * S), ("a", 1510 * S), ("will", None), ("c", 1505 * S)):
        tl.on_event(ev(name, ts))
    assert kinds(tl.on_frame(frame(1530 * S, 1), TICK, GRACE)) == [
        "a",
        "b",
        "will",
        "c",
        "telemetry",
    ]


def test_ticks_follow_the_machines_own_clock_across_minute_boundaries() -> None:
    tl = Timeline()
    tl.on_frame(frame(59 * S, 0), TICK, GRACE)
    assert kinds(tl.on_frame(frame(59 * S + S // 2, 1), TICK, GRACE)) == ["telemetry", "tick"]
    assert kinds(tl.on_frame(frame(61 * S, 2), TICK, GRACE)) == ["telemetry"]


def test_state_messages_apply_on_arrival_and_repeats_are_dropped_and_counted() -> None:
    tl = Timeline()
    online = {"status": "online", "ts_ns": 5 * S}
    assert kinds(tl.on_state(online)) == ["state"]
    assert tl.on_state(dict(online)) == []
    assert tl.on_state({"status": "offline", "ts_ns": 4 * S}) == []  # older than applied
    assert tl.repeats == 2
    assert kinds(tl.on_state({"status": "offline", "ts_ns": None})) == ["state"]


def test_release_quiet_hands_over_everything_held_in_order() -> None:
    tl = Timeline()
    tl.on_frame(frame(100 * S, 0), TICK, GRACE)
    tl.on_event(ev("x", 200 * S))
    tl.on_event(ev("y", 300 * S))
    steps = tl.release_quiet()
    assert kinds(steps) == ["x", "y"]
    assert {now for _, _, now in steps} == {tl.clock_ns}
    assert tl.release_quiet() == []


def test_the_held_queue_is_bounded_releasing_the_oldest_first() -> None:
    tl = Timeline()
    released = []
    for i in range(MAX_HELD + 5):
        released += tl.on_event(ev(f"e{i}", (1000 + i) * S))
    assert tl.held == MAX_HELD
    assert kinds(released) == [f"e{i}" for i in range(5)]


def test_json_round_trip_keeps_everything() -> None:
    tl = Timeline()
    tl.on_frame(frame(100 * S, 0), TICK, GRACE)
    tl.on_event(ev("x", 200 * S))
    tl.on_state({"status": "online", "ts_ns": 1})
    back = Timeline.from_json(json.loads(json.dumps(tl.to_json())))
    assert back == tl
    assert Timeline.from_json(None) == Timeline()


# --- the property: a machine's results depend on its own stream only ---------------------


def machine_stream(
    machine: str, t0_ns: int, rate: float, size: int, reps: int, seed: int
) -> list[tuple[str, dict[str, Any]]]:
    """One machine's messages in its own order: check-in, two sets, check-out."""
    sig = synth.Signal(rate=rate).rest(2.0)
    for _ in range(reps):
        sig.rep(rom=380.0 + seed, up_s=1.4, down_s=1.8, rest_s=0.8)
    sig.rest(70.0)  # a set break (> 60 s)
    for _ in range(reps - 1):
        sig.rep(rom=400.0, up_s=1.6, down_s=2.0, rest_s=0.8)
    sig.rest(3.0)
    sid = f"{machine}-s"
    frames = synth.frames(sig, session_id=sid, machine_id=machine, t0_ns=t0_ns, size=size)
    end = frame_end_ns(frames[-1])
    out: list[tuple[str, dict[str, Any]]] = [
        ("state", {"machine_id": machine, "clinic_id": "c1", "status": "online", "ts_ns": t0_ns}),
        ("event", synth.check_in(t0_ns, sid, f"p-{machine}", machine_id=machine)),
    ]
    out += [("telemetry", f) for f in frames]
    out.append(("event", synth.check_out(end - S, sid, machine_id=machine)))
    return out


def drive(
    messages: list[tuple[str, dict[str, Any]]], processor: MachineProcessor
) -> dict[str, list[dict[str, Any]]]:
    """What the worker does per message (``stream.app.machines``), minus Kafka: per machine
    a timeline and a core state, JSON round-tripped every few messages like a restart."""
    states: dict[str, Any] = {}
    lines: dict[str, dict[str, Any]] = {}
    out: dict[str, list[dict[str, Any]]] = {}
    for i, (kind, payload) in enumerate(messages):
        m = payload["machine_id"]
        st = states.get(m) or processor.new_state("c1", m)
        tl = Timeline.from_json(lines.get(m))
        for step in tl.admit(kind, payload, TICK, GRACE):
            out.setdefault(m, []).extend(processor.on_step(st, step, 0))
        states[m] = st if i % 7 else type(st).from_json(json.loads(json.dumps(st.to_json())))
        lines[m] = json.loads(json.dumps(tl.to_json()))
    for m, data in lines.items():  # liveness at the end: release and close like silence
        tl = Timeline.from_json(data)
        for step in tl.release_quiet():
            out.setdefault(m, []).extend(processor.on_step(states[m], step, 0))
    return out


def comparable(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(
        (
            {k: v for k, v in r.items() if k != "emitted_at_ns"}
            for r in records
            if r["kind"] in ("rep", "set", "session", "alert", REJECTED)
        ),
        key=lambda r: json.dumps(r, sort_keys=True),
    )


HOUR = 3600 * S
FLEET = {
    # machine: (device t0, rate, frame size, reps per set)
    "live-a": (synth.T0, 100.0, 50, 6),
    "behind": (synth.T0 - 60 * S, 100.0, 50, 5),  # a minute behind its neighbours
    "fast": (synth.T0 + 7, 200.0, 100, 4),
    "slow": (synth.T0 + 11, 50.0, 10, 5),
    "ahead": (synth.T0 + 5 * HOUR, 100.0, 20, 4),  # a device clock hours off
    "replay": (synth.T0 - 30 * HOUR, 100.0, 50, 6),  # yesterday's outbox
}


@pytest.fixture(scope="module")
def alone() -> dict[str, list[dict[str, Any]]]:
    processor = MachineProcessor(CoreSettings())
    out = {}
    for i, (m, (t0, rate, size, reps)) in enumerate(FLEET.items()):
        out[m] = comparable(drive(machine_stream(m, t0, rate, size, reps, i), processor)[m])
    return out


def test_each_machine_alone_finds_its_reps_and_sets(alone: dict[str, Any]) -> None:
    for m, (_, _, _, reps) in FLEET.items():
        sets = [r for r in alone[m] if r["kind"] == "set"]
        assert sorted(s["reps"] for s in sets) == sorted([reps, reps - 1]), m
        assert len([r for r in alone[m] if r["kind"] == "rep"]) == 2 * reps - 1, m
        assert [r["kind"] for r in alone[m] if r["kind"] == "session"] == ["session"], m


@pytest.mark.parametrize("seed", range(4))
def test_any_interleaving_gives_each_machine_its_own_results(
    alone: dict[str, Any], seed: int
) -> None:
    rng = random.Random(seed)
    streams = [
        machine_stream(m, t0, rate, size, reps, i)
        for i, (m, (t0, rate, size, reps)) in enumerate(FLEET.items())
    ]
    cursors = [0] * len(streams)
    merged: list[tuple[str, dict[str, Any]]] = []
    while any(c < len(s) for c, s in zip(cursors, streams, strict=True)):
        live = [i for i, s in enumerate(streams) if cursors[i] < len(s)]
        i = rng.choice(live)
        burst = rng.randint(1, 40)  # bursts: one machine's backlog between others' frames
        merged += streams[i][cursors[i] : cursors[i] + burst]
        cursors[i] += burst
    together = drive(merged, MachineProcessor(CoreSettings()))
    for m in FLEET:
        assert comparable(together[m]) == alone[m], m


# --- clock correction --------------------------------------------------------------------


def test_a_reported_offset_moves_the_machines_times_to_platform_time() -> None:
    tl = Timeline()
    tl.on_state({"status": "online", "ts_ns": 1, "clock_offset_ms": 5 * 3600 * 1000.0})
    steps = tl.on_frame(frame(1000 * S + 5 * HOUR, 0), TICK, GRACE)
    assert steps[0][1] is not None
    assert steps[0][1]["t0_ns"] == 1000 * S
    assert tl.clock_ns == 1000 * S + S // 2
    (step,) = tl.on_event(ev("late", 900 * S + 5 * HOUR))
    assert step[1] is not None
    assert step[1]["ts_ns"] == 900 * S


def test_offset_jitter_below_the_step_changes_nothing() -> None:
    tl = Timeline()
    tl.on_state({"status": "online", "ts_ns": 1, "clock_offset_ms": 1500.0})
    assert tl.offset_ns == 0  # 1.5 s: within the step, never corrected
    tl.on_state({"status": "online", "ts_ns": 2, "clock_offset_ms": 7200_000.0})
    tl.on_state({"status": "online", "ts_ns": 3, "clock_offset_ms": 7200_800.0})
    assert tl.offset_ns == 7200 * S


def test_without_a_report_a_large_offset_is_estimated_from_live_arrivals() -> None:
    tl = Timeline()
    tl.on_state({"status": "online", "ts_ns": 1})  # a birth without clock_offset_ms
    base = 10_000 * S
    for i in range(16):
        t0 = base + 3 * HOUR + i * S // 2
        received = base + i * S // 2 + S // 2 + (i % 3) * S // 10  # 0..0.2 s transport delay
        tl.on_frame(frame(t0, i), TICK, GRACE, received_ns=received)
    assert tl.offset_ns == 3 * HOUR
    steps = tl.on_frame(frame(base + 3 * HOUR + 8 * S, 16), TICK, GRACE, base + 9 * S)
    assert steps[0][1] is not None
    assert steps[0][1]["t0_ns"] == base + 8 * S


def test_no_estimate_before_a_birth_says_the_device_reports_nothing() -> None:
    """Frames of a backfill source may come before its birth: weeks-old device times sent
    live must never be taken for a clock weeks off."""
    tl = Timeline()
    for i in range(40):
        t0 = 10_000 * S + i * S // 2
        tl.on_frame(frame(t0, i), TICK, GRACE, received_ns=t0 + 28 * 24 * HOUR)
    assert tl.offset_ns == 0
    assert tl.lags == []


def test_small_lags_and_replayed_frames_never_make_an_estimate() -> None:
    tl = Timeline()
    tl.on_state({"status": "online", "ts_ns": 1})
    for i in range(40):
        t0 = 10_000 * S + i * S // 2
        tl.on_frame(frame(t0, i), TICK, GRACE, received_ns=t0 + S)  # 0.5 s delay: no offset
    assert tl.offset_ns == 0
    old = Timeline()
    old.on_state({"status": "online", "ts_ns": 1})
    for i in range(40):  # yesterday's outbox arriving now: replayed, not evidence
        t0 = 10_000 * S + i * S // 2
        old.on_frame({**frame(t0, i), "replayed": True}, TICK, GRACE, t0 + 26 * HOUR)
    assert old.offset_ns == 0
    assert old.lags == []


def test_a_replay_source_reporting_a_null_offset_is_never_estimated() -> None:
    """A backfill source (weeks-old device times sent live) says it knows no offset."""
    tl = Timeline()
    tl.on_state({"status": "online", "ts_ns": 1, "clock_offset_ms": None})
    for i in range(40):
        t0 = 10_000 * S + i * S // 2
        tl.on_frame(frame(t0, i), TICK, GRACE, received_ns=t0 + 28 * 24 * HOUR)
    assert tl.offset_ns == 0


def test_an_offset_is_estimated_from_the_first_live_frame_and_held_events_follow_it() -> None:
    """A device 3 h ahead whose births carry no offset: its check-in (sent before any
    frame) and its very first frame reach the core in platform time. Before, the estimate
    waited for 8 frames: the first ones opened a session 3 h off, and the corrected ones
    after them were refused as frames of a closed session."""
    tl = Timeline()
    tl.on_state({"status": "online", "ts_ns": 1})
    base = 10_000 * S
    assert tl.on_event(ev("check_in", base + 3 * HOUR - S)) == []  # held: no frame yet
    steps = tl.on_frame(frame(base + 3 * HOUR, 0), TICK, GRACE, received_ns=base + S // 2)
    assert tl.offset_ns == 3 * HOUR
    assert kinds(steps) == ["check_in", "telemetry"]
    assert steps[0][1] is not None
    assert steps[0][1]["ts_ns"] == base - S
    assert steps[1][1] is not None
    assert steps[1][1]["t0_ns"] == base


def test_held_events_of_an_older_state_are_kept_in_device_time_when_loaded() -> None:
    tl = Timeline(offset_ns=3 * HOUR)
    state = tl.to_json()
    del state["qr"]
    state["q"] = [[100 * S, ev("check_in", 100 * S)]]  # held corrected, as before
    loaded = Timeline.from_json(json.loads(json.dumps(state)))
    assert loaded.queue == [(100 * S + 3 * HOUR, ev("check_in", 100 * S + 3 * HOUR))]
    (step,) = loaded.release_quiet()
    assert step[1] is not None
    assert step[1]["ts_ns"] == 100 * S
