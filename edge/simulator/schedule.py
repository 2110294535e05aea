"""When sessions happen: clinic hours in the clinic's local time, per machine.

**Backfill**: each patient trains on one machine at a fixed slot on fixed weekdays (2 or 3
a week, from the clinic's open weekdays), minus skipped sessions and planned lapses.
Slots are local wall-clock times from ``CLINIC_OPEN_H`` in the clinic's IANA zone, so a
Berlin session at 09:30 stays at 09:30 local across a DST change (its UTC time moves by
an hour). With ``late_session_prob`` a session is moved to ``LATE_START_S`` local (late
evening) and crosses local midnight. Slot times are *true* time; the machine's device
clock (``edge.simulator.disorder.DeviceClock``) turns them into sample-grid indices.

**Live**: sessions back to back with ``LIVE_GAP_RANGE_S`` idle between them, from the
next whole second, planned lazily.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import numpy as np

from edge.simulator.patients import PatientProfile, pseudonym
from edge.simulator.session import LEAD_S, SessionPlan, SessionScript, plan_session

if TYPE_CHECKING:
    from edge.simulator.fleet import Fleet, FleetConfig, MachineSim

CLINIC_OPEN_H = 8
CLINIC_CLOSE_H = 18
"""Clinic hours, local wall-clock time of the clinic's zone."""
SLOT_MIN = 30
"""Each patient's session slot on a machine (the sled part is ~8–12 min of it)."""
SLOT_JITTER_S = 300.0
LATE_START_S = 23 * 3600 + 55 * 60
"""A late session checks in at 23:55 local plus up to ``LATE_JITTER_S``: it ends after
local midnight (a session of 3 sets lasts well over 5 minutes)."""
LATE_JITTER_S = 240.0
LIVE_GAP_RANGE_S = (20.0, 60.0)
CHANGEOVER_S = 60.0
"""Backfill: a session starting before the previous one ended + this waits for the machine."""
LIVE_TRUTH_SESSIONS = 50
"""Live mode keeps the plans (and so the truth) of this many latest sessions per machine."""
WEEKDAY_PATTERNS = {2: ((0, 3), (1, 4), (0, 2), (2, 4)), 3: ((0, 2, 4),)}
"""Training weekdays of the k-th patient of a machine when clinics open Monday–Friday."""
MON_FRI = (0, 1, 2, 3, 4)

Own = list[tuple[PatientProfile, dict[str, Any]]]


def local_ns(day: dt.date, seconds: float, tz: str) -> int:
    """True epoch ns of local wall-clock time ``seconds`` after local midnight of ``day``
    in zone ``tz`` (a time a DST change skips or repeats resolves as ``fold=0``)."""
    midnight = dt.datetime(day.year, day.month, day.day, tzinfo=ZoneInfo(tz))
    local = midnight + dt.timedelta(seconds=seconds)  # wall-clock arithmetic (PEP 495)
    return round(local.timestamp() * 1e9)


def local_date(true_ns: int, tz: str) -> dt.date:
    """The local date in zone ``tz`` of the true instant ``true_ns``."""
    return dt.datetime.fromtimestamp(true_ns // 1_000_000_000, ZoneInfo(tz)).date()


def training_weekdays(open_days: tuple[int, ...], per_week: int, k: int) -> tuple[int, ...]:
    """The weekdays the k-th patient of a machine trains on (spread over the open days)."""
    if tuple(open_days) == MON_FRI and per_week in WEEKDAY_PATTERNS:
        patterns = WEEKDAY_PATTERNS[per_week]
        return patterns[k % len(patterns)]
    days = sorted(set(open_days))
    step = max(1, len(days) // max(1, per_week))
    return tuple(sorted({days[(k + j * step) % len(days)] for j in range(per_week)}))


def session_id(seed: int, machine_index: int, ordinal: int, t0_ns: int) -> str:
    """Unique per machine timeline: a live run after a backfill (same seed) gets new ids."""
    return pseudonym("s", seed, machine_index, ordinal, t0_ns) + f"-{ordinal:04d}"


def plan(
    cfg: FleetConfig,
    sim: MachineSim,
    p: PatientProfile,
    rx: dict[str, Any],
    ordinal: int,
    checkin: int,
    weeks_trained: int,
    machine_load: float,
) -> SessionScript:
    rng = np.random.default_rng([cfg.seed, 2, sim.index, ordinal])
    day_factor = float(rng.normal(1.0, p.day_sd))
    bad_day = bool(rng.random() < p.bad_day_prob)
    if bad_day:
        day_factor *= 0.9
    splan = SessionPlan(
        session_id=session_id(cfg.seed, sim.index, ordinal, sim.t0_ns),
        patient=p,
        prescription_id=rx["prescription_id"],
        sets=rx["sets"],
        reps=rx["reps"],
        load_kg=rx["load_kg"],
        weeks_trained=weeks_trained,
        checkin_index=checkin,
    )
    script = plan_session(splan, machine_load, day_factor, bad_day, sim.rate_hz, sim.mech, rng)
    script.info.update(
        clinic_id=sim.clinic_id,
        machine_id=sim.machine_id,
        patient_id=p.patient_id,
        prescription=rx,
        ordinal=ordinal,
        time_zone=sim.time_zone,
    )
    return script


def backfill_slots(
    cfg: FleetConfig, sim: MachineSim, own: Own
) -> list[tuple[int, PatientProfile, dict[str, Any], dt.date]]:
    """(true check-in ns, patient, prescription, local date) of every planned session."""
    slots: list[tuple[int, PatientProfile, dict[str, Any], dt.date]] = []
    since = sim.delivery.offline_since_ns
    for k, (p, rx) in enumerate(own):
        weekdays = training_weekdays(cfg.clinic_weekdays, rx["sessions_per_week"], k)
        slot = (k * 7) % ((CLINIC_CLOSE_H - CLINIC_OPEN_H) * 60 // SLOT_MIN)
        rng = np.random.default_rng([cfg.seed, 4, sim.index, k])
        late = np.random.default_rng([cfg.seed, 10, sim.index, k])
        for day in range(cfg.days):
            date = cfg.start_date + dt.timedelta(days=day)
            if date.weekday() not in weekdays or p.in_lapse(day):
                continue
            if rng.random() < p.skip_prob:
                continue
            sec = (
                CLINIC_OPEN_H * 3600
                + slot * SLOT_MIN * 60
                + float(rng.uniform(30.0, SLOT_JITTER_S))
            )
            if cfg.late_session_prob > 0 and late.random() < cfg.late_session_prob:
                sec = LATE_START_S + float(late.uniform(0.0, LATE_JITTER_S))
            true_ns = local_ns(date, sec, sim.time_zone)
            if since is not None and true_ns < since:
                continue  # delivered before its outage began: not part of this run
            slots.append((true_ns, p, rx, date))
    slots.sort(key=lambda s: s[0])
    return slots


def backfill_scripts(cfg: FleetConfig, sim: MachineSim, own: Own) -> Iterator[SessionScript]:
    rate = sim.rate_hz
    period_ns = 1e9 / rate
    trained_weeks: dict[str, set[tuple[int, int]]] = {}
    load = 0.0
    free_at = 0  # the machine is busy until this index (previous session + changeover)
    for ordinal, (true_ns, p, rx, date) in enumerate(backfill_slots(cfg, sim, own)):
        slot_checkin = round((sim.clock.device_ns(true_ns) - sim.t0_ns) / period_ns)
        checkin = max(slot_checkin, free_at)  # the patient waits for the machine
        week = date.isocalendar()[:2]
        weeks = trained_weeks.setdefault(p.patient_id, set())
        script = plan(cfg, sim, p, rx, ordinal, checkin, len(weeks - {week}), load)
        weeks.add(week)
        load = script.info["final_load_kg"]
        free_at = script.end_index + round((CHANGEOVER_S + LEAD_S) * rate)
        yield script


def live_scripts(fleet: Fleet, sim: MachineSim, own: Own) -> Callable[[], Iterator[SessionScript]]:
    cfg = fleet.config

    def gen() -> Iterator[SessionScript]:
        rng = np.random.default_rng([cfg.seed, 5, sim.index])
        index = round(float(rng.uniform(3.0, 15.0)) * sim.rate_hz)
        load = 0.0
        ordinal = 0
        while sim.end_index is None or index < sim.end_index:
            p, rx = own[ordinal % len(own)]
            script = plan(cfg, sim, p, rx, ordinal, index, ordinal // len(own), load)
            with fleet._lock:
                kept = fleet.scripts.setdefault(sim.machine_id, [])
                kept.append(script)
                del kept[:-LIVE_TRUTH_SESSIONS]
            yield script
            load = script.info["final_load_kg"]
            ordinal += 1
            index = script.end_index + round(float(rng.uniform(*LIVE_GAP_RANGE_S)) * sim.rate_hz)

    return gen
