"""The simulated fleet: determinism, timing, schedule, ground truth vs. the emitted signal."""

from __future__ import annotations

import dataclasses
import datetime as dt
import itertools
import threading
import time
import uuid
from collections import Counter, defaultdict
from typing import Any

import pytest

from edge import contract
from edge.samples import Sample, SourceEvent, SourceItem
from edge.simulator import FleetConfig, build_fleet, live_sources
from edge.simulator.fleet import Fleet
from edge.simulator.patients import PatientProfile
from edge.simulator.session import MAX_BOTTOM_PAUSE_S

SMALL = FleetConfig(clinics=1, machines_per_clinic=1, patients_per_machine=3, days=7, seed=3)


@pytest.fixture(scope="module")
def small() -> tuple[Fleet, list[SourceItem]]:
    fleet = build_fleet(SMALL)
    return fleet, list(fleet.machines[0].source().items())


def frames_from_source(
    items: list[SourceItem], clinic_id: str, machine_id: str, rate_hz: float, size: int = 50
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Test-only framing: runs of consecutive samples (same session and load) → payloads."""
    frames: list[dict[str, Any]] = []
    events: list[dict[str, Any]] = []
    session: str | None = None
    run: list[Sample] = []
    period = round(1e9 / rate_hz)

    def flush() -> None:
        for i in range(0, len(run), size):
            chunk = run[i : i + size]
            if len(chunk) < contract.MIN_FRAME_SAMPLES:
                frames[-1]["short_tail"] = len(chunk)  # folded away by real framing
                continue
            frames.append(
                {
                    "v": 1,
                    "machine_id": machine_id,
                    "clinic_id": clinic_id,
                    "seq": len(frames),
                    "session_id": session,
                    "t0_ns": chunk[0].t_ns,
                    "rate_hz": rate_hz,
                    "load_kg": chunk[0].load_kg,
                    "position_mm": [s.position_mm for s in chunk],
                    "force_left_n": [s.force_left_n for s in chunk],
                    "force_right_n": [s.force_right_n for s in chunk],
                    "replayed": False,
                }
            )
        run.clear()

    for item in items:
        if isinstance(item, SourceEvent):
            if item.type in ("session_started", "session_ended"):
                flush()
                session = item.fields["session_id"] if item.type == "session_started" else None
            events.append(
                {
                    "v": 1,
                    "machine_id": machine_id,
                    "clinic_id": clinic_id,
                    "type": item.type,
                    "event_id": str(uuid.uuid4()),
                    "seq": len(events),
                    "ts_ns": item.t_ns,
                    **item.fields,
                    "session_id": item.fields.get("session_id", session),
                    "replayed": False,
                }
            )
            continue
        if run and (item.load_kg != run[-1].load_kg or abs(item.t_ns - run[-1].t_ns - period) > 1):
            flush()
        run.append(item)
    flush()
    return frames, events


def test_same_seed_same_everything_other_seed_differs() -> None:
    a, b = build_fleet(SMALL), build_fleet(SMALL)
    assert a.truth() == b.truth()
    items_a = list(itertools.islice(a.machines[0].source().items(), 30000))
    items_b = list(itertools.islice(b.machines[0].source().items(), 30000))
    assert items_a == items_b
    c = build_fleet(dataclasses.replace(SMALL, seed=8))
    assert c.truth()["reps"] != a.truth()["reps"]


def test_a_source_can_be_iterated_again_identically(small: tuple[Fleet, list[SourceItem]]) -> None:
    fleet, items = small
    again = fleet.machines[0].source().items()
    assert [next(again) for _ in range(5000)] == items[:5000]


def test_items_are_time_ordered_at_the_rate(small: tuple[Fleet, list[SourceItem]]) -> None:
    _, items = small
    times = [i.t_ns for i in items]
    assert times == sorted(times)
    samples = [i for i in items if isinstance(i, Sample)]
    steps = Counter(b.t_ns - a.t_ns for a, b in itertools.pairwise(samples))
    # within a session every step is one period; the others are idle gaps between sessions
    assert steps.most_common(1)[0][0] == 10_000_000
    assert all(s == 10_000_000 or s > 60 * 10**9 for s in steps)
    assert not any(isinstance(i, Sample) and i.t_ns == j.t_ns for i, j in itertools.pairwise(items))


def test_events_match_the_truth_sessions(small: tuple[Fleet, list[SourceItem]]) -> None:
    fleet, items = small
    truth = fleet.truth()
    events = [i for i in items if isinstance(i, SourceEvent)]
    started = {e.fields["session_id"]: e for e in events if e.type == "session_started"}
    ended = {e.fields["session_id"]: e for e in events if e.type == "session_ended"}
    sessions = {s["session_id"]: s for s in truth["sessions"]}
    assert set(started) == set(ended) == set(sessions)
    rx = {p["patient_id"]: p for p in fleet.prescriptions}
    for sid, s in sessions.items():
        ev = started[sid]
        assert ev.t_ns == s["start_ns"]
        assert ended[sid].t_ns == s["end_ns"]
        assert ev.fields["patient_id"] == s["patient_id"]
        assert ev.fields["prescription_id"] == rx[s["patient_id"]]["prescription_id"]
        assert set(ev.fields["setup"]) == {"seat_position", "footplate_position"}
    assert {e.type for e in events} >= {"calibrated", "load_changed"}


def test_truth_boundaries_match_the_emitted_signal(small: tuple[Fleet, list[SourceItem]]) -> None:
    fleet, items = small
    pos = {i.t_ns: i.position_mm for i in items if isinstance(i, Sample)}
    load = {i.t_ns: i.load_kg for i in items if isinstance(i, Sample)}
    truth = fleet.truth()
    min_rom = {s["session_id"]: s["min_rom_mm"] for s in truth["sessions"]}
    reps = truth["reps"]
    assert reps
    assert any(not r["valid"] for r in reps)
    for r in reps:
        assert load[r["start_ns"]] == r["load_kg"]
        x0, x1, xe = pos[r["start_ns"]], pos[r["top_ns"]], pos[r["end_ns"]]
        if None in (x0, x1, xe):
            assert r["dropout_samples"] > 0
            continue
        assert abs(x0) < 3.0
        assert abs(xe) < 3.0
        assert x1 == pytest.approx(r["rom_mm"], abs=3.0)
        mcv = (x1 - x0) / 1000.0 / ((r["top_ns"] - r["start_ns"]) / 1e9)
        assert mcv == pytest.approx(r["mcv_ms"], rel=0.03)
        assert r["concentric_s"] == pytest.approx((r["top_ns"] - r["start_ns"]) / 1e9)
        assert r["valid"] == (r["rom_mm"] >= min_rom[r["session_id"]])


def test_sets_and_sessions_follow_the_schedule() -> None:
    fleet = build_fleet(FleetConfig(clinics=1, machines_per_clinic=2, patients_per_machine=4))
    truth = fleet.truth()
    rx = {p["patient_id"]: p for p in fleet.prescriptions}
    profiles = {p.patient_id: p for p in fleet.patients}
    sets_by_session: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for s in truth["sets"]:
        sets_by_session[s["session_id"]].append(s)
    reps_by_set: dict[tuple[str, int], list[dict[str, Any]]] = defaultdict(list)
    for r in truth["reps"]:
        reps_by_set[(r["session_id"], r["set_no"])].append(r)
    for session in truth["sessions"]:
        p = rx[session["patient_id"]]
        sets = sets_by_session[session["session_id"]]
        assert session["sets"] == len(sets)
        planned = p["sets"] + (1 if profiles[session["patient_id"]].warmup else 0)
        assert len(sets) <= planned
        stopped = any(s["reps"] < (5 if s["warmup"] else p["reps"]) for s in sets)
        assert len(sets) == planned or stopped
        assert session["reps"] == sum(s["reps"] for s in sets)
        assert session["volume_load_kg"] == pytest.approx(
            sum(s["reps"] * s["load_kg"] for s in sets)
        )
        for a, b in itertools.pairwise(sets):
            assert (b["start_ns"] - a["end_ns"]) / 1e9 >= 90.0  # the stream's 60 s rule splits
        for s in sets:
            reps = reps_by_set[(session["session_id"], s["set_no"])]
            assert [r["rep_no"] for r in reps] == list(range(1, len(reps) + 1))
            for a, b in itertools.pairwise(reps):
                assert 0.3 <= (b["start_ns"] - a["end_ns"]) / 1e9 <= MAX_BOTTOM_PAUSE_S + 0.01
            assert s["reps"] + s["partial_reps"] == len(reps)
        assert session["start_ns"] < sets[0]["start_ns"]
        assert sets[-1]["end_ns"] < session["end_ns"]
        day = dt.datetime.fromtimestamp(session["start_ns"] / 1e9, dt.UTC)
        assert day.weekday() < 5
        assert 8 <= day.hour < 18
    # sessions on one machine never overlap
    by_machine: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for s in truth["sessions"]:
        by_machine[s["machine_id"]].append(s)
    for sessions in by_machine.values():
        sessions.sort(key=lambda s: s["start_ns"])
        assert all(a["end_ns"] < b["start_ns"] for a, b in itertools.pairwise(sessions))
    # weekly attendance never exceeds the prescription
    for row in truth["adherence"]:
        assert row["attended"] <= row["prescribed"]


def _lapsed_week(p: PatientProfile, start: dt.date) -> str | None:
    for first, last in p.lapse_days:
        for day in range(first, last + 1):
            d = start + dt.timedelta(days=day)
            if d.weekday() == 0 and all(p.in_lapse(day + k) for k in range(7)):
                year, week, _ = d.isocalendar()
                return f"{year}-W{week:02d}"
    return None


def test_lapses_appear_in_the_weekly_truth() -> None:
    cfg = FleetConfig(clinics=1, machines_per_clinic=3, patients_per_machine=5, days=35, seed=3)
    fleet = build_fleet(cfg)
    rows = {(r["patient_id"], r["iso_week"]): r for r in fleet.truth()["adherence"]}
    lapsed = [(p.patient_id, w) for p in fleet.patients if (w := _lapsed_week(p, cfg.start_date))]
    assert lapsed, "the fixture seed should plan at least one lapsed week"
    for key in lapsed:
        assert rows[key]["attended"] == 0
        assert rows[key]["adherence"] == 0.0
    for row in rows.values():
        assert row["rolling4_attended"] <= row["rolling4_prescribed"]
        if row["prescribed"]:
            assert row["adherence"] == row["attended"] / row["prescribed"]
    mean = sum(r["attended"] for r in rows.values()) / sum(r["prescribed"] for r in rows.values())
    assert 0.6 < mean < 0.98  # realistic: ~80 % adherence


def test_ids_follow_the_contract(small: tuple[Fleet, list[SourceItem]]) -> None:
    fleet, _ = small
    truth = fleet.truth()
    ids = [m.clinic_id for m in fleet.machines] + [m.machine_id for m in fleet.machines]
    ids += [p["prescription_id"] for p in fleet.prescriptions]
    ids += [s["session_id"] for s in truth["sessions"]] + [p.patient_id for p in fleet.patients]
    for value in ids:
        assert contract.ID_PATTERN.match(value), value
    assert all(p.patient_id.startswith("p-") and len(p.patient_id) == 8 for p in fleet.patients)


def test_frames_and_events_pass_the_contract(small: tuple[Fleet, list[SourceItem]]) -> None:
    fleet, items = small
    m = fleet.machines[0]
    frames, events = frames_from_source(items, m.clinic_id, m.machine_id, m.rate_hz)
    assert len(frames) > 1000
    for f in frames:
        f.pop("short_tail", None)
        contract.validate_telemetry(f)
        assert len(contract.encode(f)) < contract.MAX_PAYLOAD_BYTES
    for e in events:
        contract.validate_event(e)
    assert sum(1 for f in frames for v in f["position_mm"] if v is None) > 0  # dropouts


def test_live_source_is_paced_to_the_wall_clock() -> None:
    ((clinic_id, machine_id, source),) = live_sources(
        1, seed=2, duration_s=0.4, clinic_id="c-live", machine_id="m-live"
    )
    assert (clinic_id, machine_id) == ("c-live", "m-live")
    assert source.rate_hz == 100.0
    t0 = time.monotonic()
    got = list(source.items())
    elapsed = time.monotonic() - t0
    assert len(got) == 40
    assert all(isinstance(i, Sample) for i in got)
    # stamped by the wall clock and paced by it: 40 samples at 100 Hz cannot come sooner
    # (an upper bound on elapsed time would only measure how loaded the machine is)
    assert got[-1].t_ns <= time.time_ns()
    assert got[-1].t_ns - got[0].t_ns >= 0.38e9
    assert elapsed >= 0.38


def test_live_source_closes_promptly() -> None:
    ((_, _, source),) = live_sources(1, seed=2, duration_s=30.0)
    it = source.items()
    next(it)
    source.close()
    rest: list[object] = []
    drained = threading.Thread(target=lambda: rest.extend(it), daemon=True)
    drained.start()
    drained.join(30)  # a deadline, not a speed check: what matters is how much came after
    assert not drained.is_alive()
    assert len(rest) < 200  # ~1 s of samples at most, not the 30 s still due


@pytest.mark.parametrize("rate_hz", [50.0, 200.0, 150.0])
def test_other_sample_rates_keep_truth_and_contract(rate_hz: float) -> None:
    cfg = FleetConfig(
        clinics=1, machines_per_clinic=1, patients_per_machine=2, days=1, seed=4, rate_hz=rate_hz
    )
    fleet = build_fleet(cfg)
    m = fleet.machines[0]
    items = list(m.source().items())
    truth = fleet.truth()
    assert truth["reps"]
    pos = {i.t_ns: i.position_mm for i in items if isinstance(i, Sample)}
    for r in truth["reps"]:
        top = pos[r["top_ns"]]
        if top is not None:
            assert top == pytest.approx(r["rom_mm"], abs=3.0)
    samples = [i for i in items if isinstance(i, Sample)]
    period = 1e9 / rate_hz
    steps = {round((b.t_ns - a.t_ns) / period, 3) for a, b in itertools.pairwise(samples)}
    assert {s for s in steps if s < 100} == {1.0}
    frames, events = frames_from_source(items, m.clinic_id, m.machine_id, rate_hz)
    for f in frames:
        f.pop("short_tail", None)
        contract.validate_telemetry(f)
    assert events


def test_crowded_machine_sessions_never_overlap() -> None:
    cfg = FleetConfig(clinics=1, machines_per_clinic=1, patients_per_machine=26, days=7, sets=5)
    sessions = sorted(build_fleet(cfg).truth()["sessions"], key=lambda s: s["start_ns"])
    assert len(sessions) > 40
    for a, b in itertools.pairwise(sessions):
        assert b["start_ns"] - a["end_ns"] >= 60 * 10**9
