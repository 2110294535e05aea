"""A simulated fleet: clinics × machines × patients, their schedule and a source per machine.

:func:`build_fleet` draws patients and prescriptions, schedules sessions and plans
every session (truth included) without rendering samples. ``fleet.machines[i].source()``
then yields that machine's samples and events (an ``edge.samples.SensorSource``).

**Backfill** (``mode="backfill"``): ``days`` days from ``start_date`` (00:00 UTC; clinic
hours ``CLINIC_OPEN_H``–``CLINIC_CLOSE_H`` UTC, Monday–Friday). Each patient trains on one
machine at a fixed slot on fixed weekdays (2 or 3 a week), minus skipped sessions and
planned lapses. Samples are emitted only around sessions (``LEAD_S`` either side), as fast
as the consumer pulls (``live = False``).

**Live** (``mode="live"``): time starts at the next whole second; each machine runs
sessions back to back with ``LIVE_GAP_RANGE_S`` idle between them (idle samples are
emitted), patients in turn, paced to the wall clock (``live = True``), until
``duration_s`` (or forever). Sessions are planned lazily.
"""

from __future__ import annotations

import datetime as dt
import itertools
import threading
import time
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any, Literal

import numpy as np

from edge.samples import Sample, SourceEvent, SourceItem
from edge.simulator.patients import PatientProfile, draw_patient, pseudonym
from edge.simulator.physics import Measured, Mechanics, Segment, perturb, render
from edge.simulator.session import (
    LEAD_S,
    Block,
    SessionPlan,
    SessionScript,
    plan_session,
)

CLINIC_OPEN_H = 8
CLINIC_CLOSE_H = 18
SLOT_MIN = 30
"""Each patient's session slot on a machine (the sled part is ~8–12 min of it)."""
SLOT_JITTER_S = 300.0
LIVE_GAP_RANGE_S = (20.0, 60.0)
CHANGEOVER_S = 60.0
"""Backfill: a session starting before the previous one ended + this waits for the machine."""
LIVE_TRUTH_SESSIONS = 50
"""Live mode keeps the plans (and so the truth) of this many latest sessions per machine."""
PACE_SLACK_S = 0.03
"""A paced source sleeps until a sample is due plus this, then yields what is due (batching)."""
WEEKDAY_PATTERNS = {2: ((0, 3), (1, 4), (0, 2), (2, 4)), 3: ((0, 2, 4),)}
DEFAULT_START = dt.date(2026, 10, 5)  # a Monday


@dataclass(frozen=True, slots=True)
class FleetConfig:
    clinics: int = 3
    machines_per_clinic: int = 3
    patients_per_machine: int = 5
    days: int = 28
    seed: int = 1
    start_date: dt.date = DEFAULT_START
    rate_hz: float = 100.0
    mode: Literal["backfill", "live"] = "backfill"
    duration_s: float | None = None  # live only
    incline_deg: float = 45.0
    id_prefix: str = ""  # prepended to clinic and machine ids (test isolation)
    sets: int = 3
    reps: int = 10
    max_velocity_loss_pct: float = 20.0
    start_mcv_ms: float = 0.55
    """Prescribed load: where the patient's first rep moves at about this MCV at week 0."""


@dataclass(slots=True)
class MachineSim:
    clinic_id: str
    machine_id: str
    index: int
    t0_ns: int
    rate_hz: float
    mech: Mechanics
    scripts: Callable[[], Iterator[SessionScript]]
    live: bool = False
    fill_idle: bool = False
    end_index: int | None = None

    def source(self) -> MachineSource:
        """A fresh SensorSource over this machine's timeline (same items every time)."""
        return MachineSource(self)


@dataclass(slots=True)
class Fleet:
    config: FleetConfig
    machines: list[MachineSim]
    patients: list[PatientProfile]
    prescriptions: list[dict[str, Any]]
    patient_machine: dict[str, str]
    scripts: dict[str, list[SessionScript]] = field(default_factory=dict)  # by machine
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def truth(self) -> dict[str, list[dict[str, Any]]]:
        """Ground truth of every planned session (backfill: all of them)."""
        from edge.simulator.truth import ground_truth

        with self._lock:
            return ground_truth(self)

    def write_ground_truth(self, directory: str) -> dict[str, int]:
        from edge.simulator.truth import write_ground_truth

        return write_ground_truth(self.truth(), directory)


def index_to_ns(t0_ns: int, rate_hz: float) -> Callable[[int], int]:
    frac = Fraction(rate_hz).limit_denominator(1000)
    num, den = frac.numerator, frac.denominator
    return lambda i: t0_ns + i * 1_000_000_000 * den // num


def build_fleet(config: FleetConfig) -> Fleet:
    seed = config.seed
    mech = Mechanics(incline_deg=config.incline_deg)
    live = config.mode == "live"
    if live:
        t0_ns = (time.time_ns() // 1_000_000_000 + 1) * 1_000_000_000
        start_date = dt.datetime.fromtimestamp(t0_ns / 1e9, dt.UTC).date()
    else:
        start_date = config.start_date
        t0_ns = int(dt.datetime(*start_date.timetuple()[:3], tzinfo=dt.UTC).timestamp()) * 10**9
    days = config.days
    end_date = start_date + dt.timedelta(days=days - 1)
    patients: list[PatientProfile] = []
    prescriptions: list[dict[str, Any]] = []
    patient_machine: dict[str, str] = {}
    machines: list[MachineSim] = []
    fleet = Fleet(config, machines, patients, prescriptions, patient_machine)
    mi = 0
    for c in range(config.clinics):
        clinic_id = f"{config.id_prefix}c{c + 1:02d}"
        for m in range(config.machines_per_clinic):
            machine_id = f"{config.id_prefix}c{c + 1:02d}-m{m + 1:02d}"
            own: list[tuple[PatientProfile, dict[str, Any]]] = []
            for k in range(config.patients_per_machine):
                pidx = mi * 1000 + k
                rng = np.random.default_rng([seed, 1, pidx])
                p = draw_patient(seed, pidx, days, rng)
                spw = int(rng.choice([2, 2, 3]))
                rx = {
                    "v": 1,
                    "kind": "prescription",
                    "prescription_id": pseudonym("rx", seed, pidx),
                    "patient_id": p.patient_id,
                    "clinic_id": clinic_id,
                    "sessions_per_week": spw,
                    "sets": config.sets,
                    "reps": config.reps,
                    "load_kg": p.load_for(config.start_mcv_ms),
                    "max_velocity_loss_pct": config.max_velocity_loss_pct,
                    "start_date": start_date.isoformat(),
                    "end_date": None if live else end_date.isoformat(),
                    "seat_position": p.seat_position,
                    "footplate_position": p.footplate_position,
                }
                patients.append(p)
                prescriptions.append(rx)
                patient_machine[p.patient_id] = machine_id
                own.append((p, rx))
            sim = MachineSim(
                clinic_id, machine_id, mi, t0_ns, config.rate_hz, mech, _no_scripts, live
            )
            if live:
                sim.fill_idle = True
                if config.duration_s is not None:
                    sim.end_index = round(config.duration_s * config.rate_hz)
                sim.scripts = _live_scripts(fleet, sim, own)
            else:
                scripts = list(_backfill_scripts(config, sim, own))
                fleet.scripts[machine_id] = scripts
                sim.scripts = scripts.__iter__
            machines.append(sim)
            mi += 1
    return fleet


def _no_scripts() -> Iterator[SessionScript]:
    return iter(())


def _session_id(seed: int, machine_index: int, ordinal: int, t0_ns: int) -> str:
    """Unique per machine timeline: a live run after a backfill (same seed) gets new ids."""
    return pseudonym("s", seed, machine_index, ordinal, t0_ns) + f"-{ordinal:04d}"


def _plan(
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
    plan = SessionPlan(
        session_id=_session_id(cfg.seed, sim.index, ordinal, sim.t0_ns),
        patient=p,
        prescription_id=rx["prescription_id"],
        sets=rx["sets"],
        reps=rx["reps"],
        load_kg=rx["load_kg"],
        weeks_trained=weeks_trained,
        checkin_index=checkin,
    )
    script = plan_session(plan, machine_load, day_factor, bad_day, cfg.rate_hz, sim.mech, rng)
    script.info.update(
        clinic_id=sim.clinic_id,
        machine_id=sim.machine_id,
        patient_id=p.patient_id,
        prescription=rx,
        ordinal=ordinal,
    )
    return script


def _backfill_scripts(
    cfg: FleetConfig, sim: MachineSim, own: list[tuple[PatientProfile, dict[str, Any]]]
) -> Iterator[SessionScript]:
    rate = cfg.rate_hz
    slots: list[tuple[int, int, PatientProfile, dict[str, Any]]] = []
    for k, (p, rx) in enumerate(own):
        patterns = WEEKDAY_PATTERNS[rx["sessions_per_week"]]
        weekdays = patterns[k % len(patterns)]
        slot = (k * 7) % ((CLINIC_CLOSE_H - CLINIC_OPEN_H) * 60 // SLOT_MIN)
        rng = np.random.default_rng([cfg.seed, 4, sim.index, k])
        for day in range(cfg.days):
            date = cfg.start_date + dt.timedelta(days=day)
            if date.weekday() not in weekdays or p.in_lapse(day):
                continue
            if rng.random() < p.skip_prob:
                continue
            sec = day * 86400.0 + CLINIC_OPEN_H * 3600 + slot * SLOT_MIN * 60
            sec += float(rng.uniform(30.0, SLOT_JITTER_S))
            slots.append((round(sec * rate), k, p, rx))
    slots.sort(key=lambda s: s[0])
    trained_weeks: dict[str, set[tuple[int, int]]] = {}
    load = 0.0
    free_at = 0  # the machine is busy until this index (previous session + changeover)
    for ordinal, (slot_checkin, _k, p, rx) in enumerate(slots):
        checkin = max(slot_checkin, free_at)  # the patient waits for the machine
        week = (cfg.start_date + dt.timedelta(seconds=checkin / rate)).isocalendar()[:2]
        weeks = trained_weeks.setdefault(p.patient_id, set())
        script = _plan(cfg, sim, p, rx, ordinal, checkin, len(weeks - {week}), load)
        weeks.add(week)
        load = script.info["final_load_kg"]
        free_at = script.end_index + round((CHANGEOVER_S + LEAD_S) * rate)
        yield script


def _live_scripts(
    fleet: Fleet, sim: MachineSim, own: list[tuple[PatientProfile, dict[str, Any]]]
) -> Callable[[], Iterator[SessionScript]]:
    cfg = fleet.config

    def gen() -> Iterator[SessionScript]:
        rng = np.random.default_rng([cfg.seed, 5, sim.index])
        index = round(float(rng.uniform(3.0, 15.0)) * cfg.rate_hz)
        load = 0.0
        ordinal = 0
        while sim.end_index is None or index < sim.end_index:
            p, rx = own[ordinal % len(own)]
            script = _plan(cfg, sim, p, rx, ordinal, index, ordinal // len(own), load)
            with fleet._lock:
                kept = fleet.scripts.setdefault(sim.machine_id, [])
                kept.append(script)
                del kept[:-LIVE_TRUTH_SESSIONS]
            yield script
            load = script.info["final_load_kg"]
            ordinal += 1
            index = script.end_index + round(float(rng.uniform(*LIVE_GAP_RANGE_S)) * cfg.rate_hz)

    return gen


class MachineSource:
    """``edge.samples.SensorSource`` over one simulated machine."""

    def __init__(self, sim: MachineSim) -> None:
        self.sim = sim
        self.rate_hz = sim.rate_hz
        self.live = sim.live
        self.clinic_id = sim.clinic_id
        self.machine_id = sim.machine_id
        self._closed = threading.Event()
        self._to_ns = index_to_ns(sim.t0_ns, sim.rate_hz)
        self._load = 0.0

    def close(self) -> None:
        self._closed.set()

    def items(self) -> Iterator[SourceItem]:
        for chunk in self._chunks():
            if self.sim.live:
                yield from self._paced(chunk)
            else:
                if self._closed.is_set():
                    return
                yield from chunk

    def _chunks(self) -> Iterator[list[SourceItem]]:
        """The timeline in chunks of up to ``CHUNK`` items (events before their sample)."""
        sim = self.sim
        last = 0
        for script in sim.scripts():
            if sim.fill_idle and script.start_index > last:
                idle = Block(last, self._load, 0.0, [Segment("idle", script.start_index - last)])
                if not (yield from self._block(idle, [], script.session_id + "-idle")):
                    return
            for blk in script.blocks:
                if not (yield from self._block(blk, script.events, script.session_id)):
                    return
            last = script.end_index
        if sim.fill_idle and sim.end_index is not None and sim.end_index > last:
            idle = Block(last, self._load, 0.0, [Segment("idle", sim.end_index - last)])
            yield from self._block(idle, [], "tail-idle")

    def _block(
        self, blk: Block, events: list[Any], salt: str
    ) -> Generator[list[SourceItem], None, bool]:
        """One block's items in chunks; returns False when closed or past the end."""
        sim = self.sim
        sig = render(blk.segments, blk.load_kg, blk.asi_pct, sim.rate_hz, sim.mech)
        rng = np.random.default_rng([sim.index, blk.start, *salt.encode()[:32]])
        m = perturb(
            sig, blk.segments, blk.load_kg, sim.rate_hz, sim.mech, blk.effects, blk.dropouts, rng
        )
        self._load = blk.load_kg
        n = len(m.position_mm)
        stop = n if sim.end_index is None else max(0, min(n, sim.end_index - blk.start))
        times = self._times(blk.start, stop)
        by_offset: dict[int, list[Any]] = {}
        for e in events:
            if 0 <= e.index - blk.start < stop:
                by_offset.setdefault(e.index - blk.start, []).append(e)
        bounds = [*sorted({0, *by_offset}), stop]
        for a, b in itertools.pairwise(bounds):
            head: list[SourceItem] = [
                SourceEvent(self._to_ns(ev.index), ev.type, dict(ev.fields))
                for ev in by_offset.get(a, [])
            ]
            for c in range(a, b, CHUNK):
                d = min(b, c + CHUNK)
                if self._closed.is_set():
                    return False
                yield head + _samples(times, m, blk.load_kg, c, d)
                head = []
        return stop == n and not self._closed.is_set()

    def _times(self, start: int, stop: int) -> list[int]:
        period = 1e9 / self.rate_hz
        if period.is_integer():
            t0 = self._to_ns(start)
            return list(range(t0, t0 + stop * int(period), int(period)))
        return [self._to_ns(start + j) for j in range(stop)]

    def _paced(self, chunk: list[SourceItem]) -> Iterator[SourceItem]:
        closed = self._closed
        for item in chunk:
            now = time.time_ns()
            if item.t_ns > now and closed.wait((item.t_ns - now) / 1e9 + PACE_SLACK_S):
                return
            yield item


CHUNK = 1000
"""Samples yielded between checks of ``close()`` in backfill."""

_new = object.__new__
_set_t = vars(Sample)["t_ns"].__set__
_set_p = vars(Sample)["position_mm"].__set__
_set_l = vars(Sample)["force_left_n"].__set__
_set_r = vars(Sample)["force_right_n"].__set__
_set_k = vars(Sample)["load_kg"].__set__


def _sample(t: int, pos: float | None, fl: float | None, fr: float | None, load: float) -> Sample:
    """``Sample(t, pos, fl, fr, load)`` without the frozen dataclass's slow ``__init__``
    (3× faster: slot descriptors set directly; the object is the same)."""
    s: Sample = _new(Sample)
    _set_t(s, t)
    _set_p(s, pos)
    _set_l(s, fl)
    _set_r(s, fr)
    _set_k(s, load)
    return s


def _samples(times: list[int], m: Measured, load: float, a: int, b: int) -> list[SourceItem]:
    new, st, sp, sl, sr, sk = _new, _set_t, _set_p, _set_l, _set_r, _set_k
    out: list[SourceItem] = []
    append = out.append
    for t, pos, fl, fr in zip(
        times[a:b], m.position_mm[a:b], m.force_left_n[a:b], m.force_right_n[a:b], strict=True
    ):
        s = new(Sample)
        st(s, t)
        sp(s, pos)
        sl(s, fl)
        sr(s, fr)
        sk(s, load)
        append(s)
    return out
