"""Adherence by ISO week and rolling 4 weeks, by event time (MoXFo definitions)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from stream.core import PatientState, PatientTracker
from tests.unit.stream.core.helpers import check_shape

DAY = 86_400 * 10**9


def ns(day: dt.date, hour: int = 10) -> int:
    return int(dt.datetime(day.year, day.month, day.day, hour, tzinfo=dt.UTC).timestamp()) * 10**9


def rx(start: str = "2026-10-05", end: str | None = "2026-11-29", spw: int = 2) -> dict[str, Any]:
    return {
        "v": 1,
        "kind": "prescription",
        "prescription_id": "rx1",
        "patient_id": "p1",
        "clinic_id": "c1",
        "sessions_per_week": spw,
        "sets": 3,
        "reps": 10,
        "load_kg": 60.0,
        "max_velocity_loss_pct": 20.0,
        "start_date": start,
        "end_date": end,
    }


def session(day: dt.date, sid: str, completed: bool | None = True, **kw: Any) -> dict[str, Any]:
    start = ns(day)
    rec = {
        "v": 1,
        "kind": "session",
        "session_id": sid,
        "clinic_id": "c1",
        "machine_id": "m1",
        "patient_id": "p1",
        "prescription_id": "rx1",
        "start_ns": start,
        "end_ns": start + 600 * 10**9,
        "end_reason": "checkout",
        "sets": 3,
        "reps": 30,
        "partial_reps": 0,
        "volume_load_kg": 1800.0,
        "work_j": 9000.0,
        "mean_asi_pct": 3.0,
        "mean_mcv_ms": 0.5,
        "max_velocity_loss_pct": 15.0,
        "duration_s": 600.0,
        "density_j_per_min": 900.0,
        "max_load_kg": 60.0,
        "seat_position": None,
        "footplate_position": None,
        "completed_as_prescribed": completed,
        "lv_intercept_ms": None,
        "lv_slope_ms_per_kg": None,
        "e1rm_kg": None,
        "emitted_at_ns": 0,
    }
    rec.update(kw)
    return rec


def rows_of(out: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    for r in out:
        check_shape(r)
    return {r["iso_week"]: r for r in out if r["kind"] == "adherence"}


def feed(tr: PatientTracker, st: PatientState, sessions: list[dict[str, Any]]) -> dict:
    rows: dict[str, dict[str, Any]] = {}
    for s in sessions:
        rows.update(rows_of(tr.on_session(st, s, s["end_ns"])))
    return rows


MON = dt.date(2026, 10, 5)  # ISO 2026-W41


def test_weekly_and_rolling_across_iso_weeks() -> None:
    tr = PatientTracker()
    st = tr.new_state("p1", "c1")
    tr.on_prescription(st, rx())
    days = [MON, MON + dt.timedelta(days=3), MON + dt.timedelta(days=7)]  # 2 in W41, 1 in W42
    days += [MON + dt.timedelta(days=15)]  # W43 Wednesday
    rows = feed(tr, st, [session(d, f"s{i}", completed=i != 1) for i, d in enumerate(days)])
    today = ns(MON + dt.timedelta(days=27), 12)  # Sunday of W44
    rows.update(rows_of(tr.on_tick(st, today, today)))
    w41, w42, w43, w44 = (rows[w] for w in ("2026-W41", "2026-W42", "2026-W43", "2026-W44"))
    assert (w41["prescribed"], w41["attended"], w41["completed"]) == (2, 2, 1)
    assert w41["adherence"] == 1.0
    assert w41["compliance"] == 0.5
    assert w41["relative_compliance"] == 0.5
    assert (w42["attended"], w43["attended"]) == (1, 1)
    assert w44["attended"] == 0  # a week with no sessions still has its row
    assert w44["adherence"] == 0.0
    assert (w44["rolling4_prescribed"], w44["rolling4_attended"]) == (8, 4)
    assert w44["rolling4_adherence"] == 0.5
    assert w44["rolling4_completed"] == 3


def test_late_replayed_session_counts_in_its_own_week() -> None:
    tr = PatientTracker()
    st = tr.new_state("p1", "c1")
    tr.on_prescription(st, rx())
    feed(tr, st, [session(MON + dt.timedelta(days=d), f"s{d}") for d in (0, 2, 7, 9)])
    # a session done on W41 Friday arrives (replayed from the edge) during W43
    late = session(MON + dt.timedelta(days=4), "late")
    out = tr.on_session(st, late, ns(MON + dt.timedelta(days=16)))
    rows = rows_of(out)
    assert rows["2026-W41"]["attended"] == 3
    assert rows["2026-W42"]["rolling4_attended"] == 5  # the rolling window after it too
    assert "2026-W40" not in rows


def test_redelivered_session_emits_nothing_new() -> None:
    tr = PatientTracker()
    st = tr.new_state("p1", "c1")
    tr.on_prescription(st, rx())
    s = session(MON, "s1")
    assert rows_of(tr.on_session(st, s, s["end_ns"]))
    assert [r for r in tr.on_session(st, s, s["end_ns"]) if r["kind"] == "adherence"] == []


def test_first_week_is_prorated_and_weeks_before_have_no_row() -> None:
    tr = PatientTracker()
    st = tr.new_state("p1", "c1")
    tr.on_prescription(st, rx(start="2026-10-08", spw=3))  # a Thursday: 4 of 7 days
    today = ns(dt.date(2026, 10, 20))
    rows = rows_of(tr.on_tick(st, today, today))
    assert rows["2026-W41"]["prescribed"] == 2  # ⌊3 × 4/7 + ½⌋
    assert rows["2026-W42"]["prescribed"] == 3
    assert rows["2026-W43"]["prescribed"] == 1  # up to today (Tuesday): ⌊3 × 2/7 + ½⌋
    assert "2026-W40" not in rows


def test_state_round_trip() -> None:
    tr = PatientTracker()
    st = tr.new_state("p1", "c1")
    tr.on_prescription(st, rx())
    feed(tr, st, [session(MON, "s1")])
    st2 = PatientState.from_json(st.to_json())
    s = session(MON + dt.timedelta(days=2), "s2")
    assert tr.on_session(st, s, s["end_ns"]) == tr.on_session(st2, s, s["end_ns"])


@pytest.mark.parametrize(
    ("sets", "reps", "load", "expected"),
    [(3, 30, 60.0, True), (2, 30, 60.0, False), (3, 29, 60.0, False), (3, 30, 50.0, False)],
)
def test_completion_fallback_from_totals(sets: int, reps: int, load: float, expected: bool) -> None:
    tr = PatientTracker()
    st = tr.new_state("p1", "c1")
    tr.on_prescription(st, rx())
    s = session(MON, "s1", completed=None, sets=sets, reps=reps, max_load_kg=load)
    out = tr.on_session(st, s, s["end_ns"])
    assert rows_of(out)["2026-W41"]["completed"] == int(expected)
    (echo,) = [r for r in out if r["kind"] == "session"]  # the verdict goes back to storage
    assert echo["completed_as_prescribed"] is expected


@pytest.mark.parametrize(
    ("per_set", "expected"),
    [
        ([[30.0, 5], [60.0, 10], [60.0, 10], [60.0, 10]], True),  # warm-up set does not hurt
        ([[30.0, 5], [60.0, 10], [60.0, 10], [60.0, 9]], False),  # 34 reps, 4 sets: short set
        ([[60.0, 10], [60.0, 10], [57.5, 10]], False),  # a lighter set
    ],
)
def test_completion_exact_from_set_loads_reps(per_set: list, expected: bool) -> None:
    tr = PatientTracker()
    st = tr.new_state("p1", "c1")
    tr.on_prescription(st, rx())
    reps = sum(r for _, r in per_set)
    s = session(MON, "s1", completed=None, sets=len(per_set), reps=reps, set_loads_reps=per_set)
    out = tr.on_session(st, s, s["end_ns"])
    assert rows_of(out)["2026-W41"]["completed"] == int(expected)
