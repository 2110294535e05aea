"""Clinic-local calendars: days, ISO weeks, adherence and lapse alerts in the clinic's IANA
zone, across the DST changes of Europe/Berlin, America/Los_Angeles and Australia/Sydney."""

from __future__ import annotations

import datetime as dt
import random
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from stream.core import PatientState, PatientTracker
from stream.core.weeks import calendar_days, check_zone, day_of, iso_week, midnight_ns, monday_of
from tests.unit.stream.core.test_adherence import rows_of, rx, session

H = 3600 * 10**9
BERLIN, LA, SYDNEY = "Europe/Berlin", "America/Los_Angeles", "Australia/Sydney"


def local_ns(tz: str, y: int, mo: int, d: int, h: int = 0, mi: int = 0, fold: int = 0) -> int:
    return int(dt.datetime(y, mo, d, h, mi, tzinfo=ZoneInfo(tz), fold=fold).timestamp()) * 10**9


def at(tz: str, start_ns: int, sid: str, minutes: int = 60, **kw: Any) -> dict[str, Any]:
    """A completed session starting at ``start_ns`` (session() builds it at 10:00 UTC)."""
    s = session(dt.date(2026, 1, 1), sid, **kw)
    s.update(start_ns=start_ns, end_ns=start_ns + minutes * 60 * 10**9)
    return s


# (zone, local date of a 23-hour day, local date of a 25-hour day) in 2026
DST_DAYS = [
    (BERLIN, dt.date(2026, 3, 29), dt.date(2026, 10, 25)),
    (LA, dt.date(2026, 3, 8), dt.date(2026, 11, 1)),
    (SYDNEY, dt.date(2026, 10, 4), dt.date(2026, 4, 5)),
]


# --- weeks.py ------------------------------------------------------------------------------
@pytest.mark.parametrize(("tz", "short", "long"), DST_DAYS)
def test_dst_days_last_23_and_25_hours(tz: str, short: dt.date, long: dt.date) -> None:
    one = dt.timedelta(days=1)
    assert midnight_ns(short + one, tz) - midnight_ns(short, tz) == 23 * H
    assert midnight_ns(long + one, tz) - midnight_ns(long, tz) == 25 * H
    # the last instant of the long day is still that day; the next is the day after
    end = midnight_ns(long + one, tz)
    assert (day_of(end - 1, tz), day_of(end, tz)) == (long, long + one)


@pytest.mark.parametrize("tz", [BERLIN, LA, SYDNEY, "UTC", "Asia/Kolkata", "America/Santiago"])
def test_every_instant_lies_in_its_local_day(tz: str) -> None:
    rnd = random.Random(tz)
    for _ in range(2000):
        t = rnd.randrange(1_420_070_400, 1_900_000_000) * 10**9 + rnd.randrange(10**9)
        day = day_of(t, tz)
        assert midnight_ns(day, tz) <= t < midnight_ns(day + dt.timedelta(days=1), tz)


def test_a_day_whose_midnight_does_not_exist_starts_at_the_gap_end() -> None:
    # America/Santiago skipped 00:00-01:00 on 2022-09-11: the day starts at 01:00 local
    start = midnight_ns(dt.date(2022, 9, 11), "America/Santiago")
    assert start == local_ns("America/Santiago", 2022, 9, 11, 1)
    assert day_of(start - 1, "America/Santiago") == dt.date(2022, 9, 10)


def test_calendar_days_count_local_dates_not_24_hour_periods() -> None:
    # Monday 18:00 before LA's spring forward, next Monday 08:00: 6 d 13 h but 7 dates
    last = local_ns(LA, 2026, 3, 2, 18)
    today = local_ns(LA, 2026, 3, 9, 8)
    assert today - last < 7 * 24 * H
    assert calendar_days(last, today, LA) == 7
    assert calendar_days(last, today - 9 * H, LA) == 6  # Sunday 23:00


def test_unknown_zones_are_refused() -> None:
    assert check_zone(SYDNEY) == SYDNEY
    for bad in ("Mars/Olympus", "", "../etc/passwd", None, 3):
        with pytest.raises(ValueError):
            check_zone(bad)


# --- adherence -----------------------------------------------------------------------------
def tracker(
    tz: str, start: str = "2025-12-29", spw: int = 2
) -> tuple[PatientTracker, PatientState]:
    tr = PatientTracker()
    st = tr.new_state("p1", "c1", tz)
    tr.on_prescription(st, rx(start=start, end=None, spw=spw))
    return tr, st


def weeks_of(tr: PatientTracker, st: PatientState, sessions: list[dict[str, Any]]) -> dict:
    rows: dict[str, dict[str, Any]] = {}
    for s in sessions:
        rows.update(rows_of(tr.on_session(st, s, s["end_ns"])))
    return rows


def test_sydney_monday_morning_session_counts_in_that_monday_week() -> None:
    start = local_ns(SYDNEY, 2026, 3, 2, 8)  # Monday 08:00 AEDT = Sunday 21:00 UTC
    assert day_of(start, "UTC") == dt.date(2026, 3, 1)
    tr, st = tracker(SYDNEY)
    rows = weeks_of(tr, st, [at(SYDNEY, start, "s1")])
    w10 = rows["2026-W10"]
    assert (w10["attended"], w10["week_start"], w10["time_zone"]) == (1, "2026-03-02", SYDNEY)
    assert all(r["attended"] == 0 for k, r in rows.items() if k != "2026-W10")
    # the same session in a UTC clinic falls into the week before
    tr, st = tracker("UTC")
    rows = weeks_of(tr, st, [at(SYDNEY, start, "s1")])
    assert rows["2026-W09"]["attended"] == 1
    assert rows["2026-W09"]["time_zone"] == "UTC"


def test_la_sunday_evening_session_stays_in_its_week() -> None:
    start = local_ns(LA, 2026, 3, 8, 20)  # Sunday after spring forward, 20:00 PDT = Mon 03:00 UTC
    tr, st = tracker(LA)
    rows = weeks_of(tr, st, [at(LA, start, "s1")])
    assert rows["2026-W10"]["attended"] == 1
    assert rows["2026-W10"]["week_start"] == "2026-03-02"


def test_session_crossing_local_midnight_counts_once_on_its_start_day() -> None:
    # Sunday 2026-10-25 (Berlin falls back that night at 03:00) 23:30 → Monday 00:40
    start = local_ns(BERLIN, 2026, 10, 25, 23, 30)
    s = at(BERLIN, start, "late-night", minutes=70)
    assert day_of(s["end_ns"], BERLIN) == dt.date(2026, 10, 26)
    tr, st = tracker(BERLIN)
    rows = weeks_of(tr, st, [s])
    assert rows["2026-W43"]["attended"] == 1  # the week of its start (Mon 19 Oct)
    assert "2026-W44" not in rows or rows["2026-W44"]["attended"] == 0
    # and a session just after local midnight belongs to the new week, though UTC says Sunday
    monday = local_ns(BERLIN, 2026, 10, 26, 0, 15)
    assert day_of(monday, "UTC") == dt.date(2026, 10, 25)
    rows = weeks_of(tr, st, [at(BERLIN, monday, "monday")])
    assert rows["2026-W44"]["attended"] == 1
    assert rows["2026-W44"]["week_start"] == "2026-10-26"


@pytest.mark.parametrize(("tz", "short", "long"), DST_DAYS)
def test_sessions_around_dst_changes_land_in_their_local_week(
    tz: str, short: dt.date, long: dt.date
) -> None:
    tr, st = tracker(tz)
    sessions = []
    for day in (short, long):  # both Sundays: the last local hour and the next morning
        sessions.append(at(tz, local_ns(tz, day.year, day.month, day.day, 23, 15), f"sun{day}"))
        nxt = day + dt.timedelta(days=1)
        sessions.append(at(tz, local_ns(tz, nxt.year, nxt.month, nxt.day, 0, 30), f"mon{day}"))
    rows = weeks_of(tr, st, sessions)
    for day in (short, long):
        assert rows[iso_week(monday_of(day))]["attended"] >= 1
        assert rows[iso_week(day + dt.timedelta(days=1))]["attended"] >= 1
    assert sum(r["attended"] for r in rows.values()) == 4


def test_zone_change_rebuckets_history_and_names_the_zone() -> None:
    start = local_ns(SYDNEY, 2026, 3, 2, 8)
    tr, st = tracker("UTC")
    weeks_of(tr, st, [at(SYDNEY, start, "s1")])
    moved = rows_of(tr.set_zone(st, SYDNEY, start))
    assert moved["2026-W09"]["attended"] == 0
    assert moved["2026-W10"]["attended"] == 1
    assert {r["time_zone"] for r in moved.values()} == {SYDNEY}
    assert tr.set_zone(st, SYDNEY, start) == []  # unchanged: nothing
    with pytest.raises(ValueError):
        tr.set_zone(st, "Nowhere/Special", start)


def test_state_keeps_its_zone_through_json() -> None:
    tr, st = tracker(SYDNEY)
    weeks_of(tr, st, [at(SYDNEY, local_ns(SYDNEY, 2026, 3, 2, 8), "s1")])
    back = PatientState.from_json(st.to_json())
    assert back.time_zone == SYDNEY
    assert back.to_json() == st.to_json()
    old = st.to_json()
    del old["time_zone"]  # a state written before zones existed is a UTC one
    assert PatientState.from_json(old).time_zone == "UTC"


# --- lapse alerts ---------------------------------------------------------------------------
def _lapses(out: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [a for a in out if a["kind"] == "alert" and a["rule"] == "lapse"]


def test_lapse_counts_local_days_across_spring_forward() -> None:
    tr, st = tracker(LA, start="2026-02-02")
    last = at(LA, local_ns(LA, 2026, 3, 2, 18), "s1")  # Monday 18:00 PST
    tr.on_session(st, last, last["end_ns"])
    sunday = local_ns(LA, 2026, 3, 8, 23)
    assert _lapses(tr.on_tick(st, sunday, sunday)) == []
    monday = local_ns(LA, 2026, 3, 9, 8)  # 6 d 13 h later, but the 7th local day
    (a,) = _lapses(tr.on_tick(st, monday, monday))
    assert a["window_start_ns"] == last["end_ns"]
    assert a["value"] == 7


def test_low_adherence_window_starts_at_local_midnight() -> None:
    tr, st = tracker(SYDNEY, start="2026-03-02", spw=3)
    s = at(SYDNEY, local_ns(SYDNEY, 2026, 3, 2, 8), "s1")
    tr.on_session(st, s, s["end_ns"])
    today = local_ns(SYDNEY, 2026, 3, 18, 9)  # Wednesday of week 3: week 2 complete, empty
    out = tr.on_tick(st, today, today)
    (a,) = [x for x in out if x["kind"] == "alert" and x["rule"] == "low_adherence"]
    assert a["window_start_ns"] == local_ns(SYDNEY, 2026, 3, 9)  # Monday 00:00 AEDT
