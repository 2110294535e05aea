"""Issue 12's disordered fleet has every kind of disorder, whatever day it is built on,
and never asks the platform for the impossible (a clock it cannot know about moving a
session to another local week)."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from edge.simulator import build_fleet
from edge.simulator.disorder import DAY_NS
from edge.simulator.scenarios import AHEAD_MACHINE, BEHIND_MACHINE, ZONES, disordered_fleet

NOW = dt.datetime(2026, 12, 3, 13, 0, tzinfo=dt.UTC)


def iso_week(ns: int, tz: str) -> str:
    iso = dt.datetime.fromtimestamp(ns / 1e9, ZoneInfo(tz)).date().isocalendar()
    return f"{iso[0]}-W{iso[1]:02d}"


@pytest.mark.parametrize("days_later", [0, 2, 4, 6])
@pytest.mark.parametrize("hour", [0, 13])
def test_the_disordered_fleet_has_it_all(days_later: int, hour: int) -> None:
    now = NOW.replace(hour=hour) + dt.timedelta(days=days_later)
    fleet = build_fleet(disordered_fleet(now, id_prefix="x"))
    truth = fleet.truth()
    machines = truth["machines"]
    assert {m["time_zone"] for m in machines} == set(ZONES)
    assert {m["rate_hz"] for m in machines} == {50.0, 100.0, 200.0}
    offline = [m for m in machines if m["reconnect_at_ns"] is not None]
    assert len(offline) == len(machines) // 4
    assert all(1.0 <= m["offline_days"] <= 3.0 for m in offline)
    assert max(m["delay_s"] for m in machines) > 120  # some minutes behind the others
    ahead, behind = machines[AHEAD_MACHINE], machines[BEHIND_MACHINE]
    assert ahead["clock_offset_ms"] >= 3 * 3_600_000
    assert ahead["clock_offset_reported"]
    assert behind["clock_offset_ms"] <= -4 * 3_600_000
    assert not behind["clock_offset_reported"]
    assert ahead not in offline
    assert behind not in offline
    assert truth["reps"]
    sessions = truth["sessions"]
    # everything happened at least a day ago and within a week (retention, replay bound)
    now_ns = int(now.timestamp()) * 10**9
    assert all(now_ns - 7 * DAY_NS < s["start_ns"] and s["end_ns"] < now_ns for s in sessions)
    # a clock nobody reports never moves a session to another local ISO week
    unreported = {m["machine_id"] for m in machines if not m["clock_offset_reported"]}
    for s in sessions:
        if s["machine_id"] in unreported:
            assert iso_week(s["device_start_ns"], s["time_zone"]) == s["iso_week"], s
