"""Ground truth in clinic-local calendars: DST changes, late sessions, device clocks.

Sessions are planned in local clinic hours; the truth's dates and ISO weeks are the
clinic's local ones (weeks start Monday 00:00 local) and use *true* time, never the
device's clock. Expected values are computed here from the local wall clock
(``zoneinfo``) and compared with what a UTC calendar would say, so a truth that
bucketed in UTC, or by device time, fails.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from zoneinfo import ZoneInfo

import pytest

from edge.simulator import DeviceClock, FleetConfig, build_fleet
from edge.simulator.schedule import CLINIC_CLOSE_H, CLINIC_OPEN_H, LATE_START_S, local_ns
from edge.simulator.truth import weekly_adherence

ALL_DAYS = (0, 1, 2, 3, 4, 5, 6)


def local(ns: int, tz: str) -> dt.datetime:
    return dt.datetime.fromtimestamp(ns / 1e9, ZoneInfo(tz))


def utc(ns: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(ns / 1e9, dt.UTC)


def fleet_in(tz: str, start: dt.date, days: int = 14, **kw: object) -> dict[str, list[dict]]:
    base = {"sets": 1, "reps": 3, **kw}
    cfg = FleetConfig(
        clinics=1,
        machines_per_clinic=2,
        patients_per_machine=4,
        days=days,
        seed=4,
        start_date=start,
        time_zones=(tz,),
        **base,  # type: ignore[arg-type]
    )
    return build_fleet(cfg).truth()


def weeks_by_local_calendar(truth: dict[str, list[dict]]) -> Counter[tuple[str, str]]:
    """(patient, ISO week of the local check-in date) → sessions with a valid rep."""
    out: Counter[tuple[str, str]] = Counter()
    for s in truth["sessions"]:
        if s["reps"] > 0:
            iso = local(s["start_ns"], s["time_zone"]).date().isocalendar()
            out[(s["patient_id"], f"{iso[0]}-W{iso[1]:02d}")] += 1
    return out


def attended(truth: dict[str, list[dict]]) -> Counter[tuple[str, str]]:
    return Counter(
        {
            (r["patient_id"], r["iso_week"]): r["attended"]
            for r in truth["adherence"]
            if r["attended"]
        }
    )


@pytest.mark.parametrize(
    ("tz", "start", "change"),
    [
        # Berlin leaves summer time on Sunday 2026-10-25 (UTC+2 -> UTC+1)
        ("Europe/Berlin", dt.date(2026, 10, 19), dt.date(2026, 10, 25)),
        # Los Angeles leaves summer time on Sunday 2026-11-01 (UTC-7 -> UTC-8)
        ("America/Los_Angeles", dt.date(2026, 10, 26), dt.date(2026, 11, 1)),
        # Sydney enters summer time on Sunday 2026-10-04 (UTC+10 -> UTC+11)
        ("Australia/Sydney", dt.date(2026, 9, 28), dt.date(2026, 10, 4)),
    ],
)
def test_clinic_hours_stay_local_across_a_dst_change(
    tz: str, start: dt.date, change: dt.date
) -> None:
    truth = fleet_in(tz, start)
    sessions = truth["sessions"]
    assert len(sessions) >= 8
    offsets = set()
    for s in sessions:
        at = local(s["start_ns"], tz)
        assert CLINIC_OPEN_H <= at.hour < CLINIC_CLOSE_H, at
        assert at.weekday() < 5, at  # Monday–Friday, local
        assert s["date"] == at.date().isoformat()
        assert s["week_start"] == (at.date() - dt.timedelta(days=at.weekday())).isoformat()
        offsets.add((at.date() > change, at.utcoffset()))
    # the same local hours map to UTC instants an hour apart before and after the change
    assert len({o for _, o in offsets}) == 2, offsets
    assert len(offsets) == 2
    # adherence counts sessions in their local ISO week
    assert attended(truth) == weeks_by_local_calendar(truth)
    assert {r["time_zone"] for r in truth["adherence"]} == {tz}


def test_sydney_monday_mornings_count_in_the_local_week_not_the_utc_one() -> None:
    truth = fleet_in("Australia/Sydney", dt.date(2026, 9, 28), days=21)
    mondays = [s for s in truth["sessions"] if local(s["start_ns"], s["time_zone"]).weekday() == 0]
    # Monday 08:00–11:00 in Sydney is still Sunday in UTC: another ISO week there
    early = [s for s in mondays if utc(s["start_ns"]).weekday() == 6]
    assert early, "no Sydney Monday session falls on a UTC Sunday"
    for s in early:
        utc_iso = utc(s["start_ns"]).date().isocalendar()
        assert s["iso_week"] != f"{utc_iso[0]}-W{utc_iso[1]:02d}"
        assert s["week_start"] == s["date"]  # its own Monday, local
    assert attended(truth) == weeks_by_local_calendar(truth)


@pytest.mark.parametrize("tz", ["Europe/Berlin", "America/Los_Angeles", "Australia/Sydney"])
def test_late_sessions_cross_local_midnight_and_count_on_their_check_in_day(tz: str) -> None:
    truth = fleet_in(tz, dt.date(2026, 10, 26), days=14, clinic_weekdays=ALL_DAYS,
                     late_session_prob=1.0, sets=3, reps=10)  # fmt: skip
    crossing = 0
    for s in truth["sessions"]:
        start, end = local(s["start_ns"], tz), local(s["end_ns"], tz)
        # 23:50 or later; a patient whose machine is still busy checks in after midnight
        assert (start.hour, start.minute) >= (23, LATE_START_S % 3600 // 60) or start.hour < 2
        if start.hour == 23:
            assert end.date() > start.date()  # crosses local midnight
            crossing += 1
        assert s["date"] == start.date().isoformat()  # the check-in day, not the end's
    assert crossing > len(truth["sessions"]) // 2
    # Sunday-night sessions stay in the week they started in (Monday 00:00 local starts
    # the next), whichever UTC day or week that instant falls in
    sundays = [s for s in truth["sessions"] if local(s["start_ns"], tz).weekday() == 6]
    assert sundays
    for s in sundays:
        day = local(s["start_ns"], tz).date()
        assert s["week_start"] == (day - dt.timedelta(days=6)).isoformat()
    assert attended(truth) == weeks_by_local_calendar(truth)


def test_la_sunday_night_is_monday_in_utc_but_counts_in_the_local_week() -> None:
    tz = "America/Los_Angeles"
    truth = fleet_in(tz, dt.date(2026, 10, 26), days=14, clinic_weekdays=ALL_DAYS,
                     late_session_prob=1.0)  # fmt: skip
    sundays = [s for s in truth["sessions"] if local(s["start_ns"], tz).weekday() == 6]
    assert sundays
    for s in sundays:
        assert utc(s["start_ns"]).weekday() == 0  # Monday 06:35+ UTC: the next ISO week
        u = utc(s["start_ns"]).date().isocalendar()
        assert s["iso_week"] != f"{u[0]}-W{u[1]:02d}"


def test_truth_uses_true_time_not_the_device_clock() -> None:
    tz = "Europe/Berlin"
    ahead = DeviceClock(offset_ms=5 * 3_600_000.0, drift_ppm=40.0, reported=False)
    behind = DeviceClock(offset_ms=-9 * 3_600_000.0, reported=True)
    truth = fleet_in(tz, dt.date(2026, 10, 19), days=14, late_session_prob=0.5,
                     clocks=((0, ahead), (1, behind)))  # fmt: skip
    by_machine = {m["machine_id"]: m for m in truth["machines"]}
    moved = 0
    for s in truth["sessions"]:
        clock = by_machine[s["machine_id"]]
        at = local(s["start_ns"], tz)
        assert CLINIC_OPEN_H <= at.hour < CLINIC_CLOSE_H or at.hour in (23, 0, 1)  # late
        shift = s["device_start_ns"] - s["start_ns"]
        drift_ns = clock["clock_drift_ppm"] * 1e-6 * 15 * 86400e9  # at most, in the window
        assert abs(shift - clock["clock_offset_ms"] * 1e6) <= abs(drift_ns) + 1
        device_day = local(s["device_start_ns"], tz).date().isoformat()
        moved += device_day != s["date"]
        assert s["date"] == at.date().isoformat()
    assert moved > 0, "no session whose device date differs from its true date"
    assert attended(truth) == weeks_by_local_calendar(truth)


def test_weekly_adherence_by_hand() -> None:
    rx = {
        "patient_id": "p1",
        "clinic_id": "c1",
        "prescription_id": "rx1",
        "sessions_per_week": 2,
        "start_date": "2026-09-28",
        "end_date": None,
    }
    tz = "Australia/Sydney"

    def session(y: int, mo: int, d: int, h: int, reps: int = 10, done: bool = True) -> dict:
        ns = local_ns(dt.date(y, mo, d), h * 3600, tz)
        return {"date": local(ns, tz).date().isoformat(), "reps": reps,
                "completed_as_prescribed": done}  # fmt: skip

    sessions = [
        session(2026, 10, 2, 9),  # Friday W40
        session(2026, 10, 5, 8, done=False),  # Monday W41 (Sunday 21:00 UTC: W40 in UTC)
        session(2026, 10, 7, 9, reps=0),  # no valid rep: not attended
        session(2026, 10, 9, 23),  # Friday night W41
    ]
    rows = weekly_adherence(rx, sessions, dt.date(2026, 10, 18), tz)
    got = [(r["iso_week"], r["week_start"], r["attended"], r["completed"]) for r in rows]
    assert got == [
        ("2026-W40", "2026-09-28", 1, 1),
        ("2026-W41", "2026-10-05", 2, 1),
        ("2026-W42", "2026-10-12", 0, 0),
    ]
    assert [r["rolling4_attended"] for r in rows] == [1, 3, 3]
    assert rows[1]["adherence"] == 1.0
    assert rows[1]["compliance"] == 0.5
