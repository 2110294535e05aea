"""One training session on one machine: its timeline (blocks + events) and its ground truth.

:func:`plan_session` decides everything about a session from a seeded Generator *without*
rendering samples: the blocks of segments (each at one load), the lifecycle events and
the per-rep truth. :func:`edge.simulator.physics.render` later turns blocks into samples;
truth and samples come from the same integers, so the truth is exact.

Timeline of a session (sample-grid indices, times ``t0_ns + index·period``):
``LEAD_S`` idle → ``session_started`` (+ ``calibrated`` 1 s later, + ``load_changed``
when the machine's load differs) → setup idle → per set: idle, feet on the plate
``PRE_SET_S``, reps (bottom pause ≥ ``MIN_PAUSE_S`` between reps, optional top pause),
``POST_SET_S`` on the plate → rest (``REST_RANGE_S`` between the last rep's end and the next
set's first onset, a ``load_changed`` in its middle when the load changes) → idle
``CHECKOUT_RANGE_S`` → ``session_ended`` → ``LEAD_S`` idle.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from edge.simulator.patients import (
    FULL_ROM_RANGE,
    PARTIAL_ROM_RANGE,
    SET_FATIGUE_CARRYOVER,
    PatientProfile,
    round_load,
)
from edge.simulator.physics import Mechanics, Segment, SensorEffects, concentric_metrics

LEAD_S = 2.0
"""Idle samples emitted before check-in and after check-out."""
SETUP_RANGE_S = (15.0, 45.0)
PRE_SET_S = 1.5
POST_SET_S = 1.0
REST_RANGE_S = (95.0, 150.0)
"""Rest between sets, last rep end → next onset: ≥ 90 s so the stream's 60 s rule splits sets."""
MIN_PAUSE_S = 0.4
"""Pauses are either absent or at least this long (the pause rule is > 260 ms)."""
MAX_BOTTOM_PAUSE_S = 6.0
"""Gaps between reps of a set stay below this (well below the 60 s set rule)."""
CHECKOUT_RANGE_S = (8.0, 40.0)
BAD_DAY_LOAD_FACTOR = 0.85
WARMUP_LOAD_FACTOR = 0.5
WARMUP_REPS = 5
FAULT_SESSION_PROB = 0.01
"""Chance that one set of a session has a stuck (flat) or saturated load cell."""
DROPOUT_SAMPLE_PROB = 2e-4
"""Chance per sample that a dropout of 1..5 samples starts."""
REP_MCV_JITTER = 0.02


@dataclass(slots=True)
class Block:
    """Contiguous samples at one load, starting at grid index ``start``."""

    start: int
    load_kg: float
    asi_pct: float
    segments: list[Segment] = field(default_factory=list)
    effects: SensorEffects = field(default_factory=SensorEffects)
    dropouts: list[tuple[int, int]] = field(default_factory=list)  # (offset, length)

    @property
    def n(self) -> int:
        return sum(s.n for s in self.segments)


@dataclass(frozen=True, slots=True)
class PlannedEvent:
    index: int
    type: str
    fields: dict[str, Any]


@dataclass(slots=True)
class SessionScript:
    session_id: str
    start_index: int  # first emitted sample (LEAD_S before check-in)
    end_index: int  # one past the last emitted sample
    blocks: list[Block]
    events: list[PlannedEvent]
    reps: list[dict[str, Any]]  # truth, index-based (converted to ns by the fleet)
    info: dict[str, Any]


@dataclass(frozen=True, slots=True)
class SessionPlan:
    """What the schedule decided: who, when, what was prescribed."""

    session_id: str
    patient: PatientProfile
    prescription_id: str | None
    sets: int
    reps: int
    load_kg: float
    weeks_trained: int
    checkin_index: int


class _Builder:
    def __init__(self, start: int, load: float, asi: float, rate: float) -> None:
        self.rate = rate
        self.index = start
        self.asi = asi
        self.blocks = [Block(start, load, asi)]
        self.events: list[PlannedEvent] = []

    @property
    def load(self) -> float:
        return self.blocks[-1].load_kg

    def n(self, seconds: float) -> int:
        return max(1, round(seconds * self.rate))

    def add(self, kind: str, n: int, x0: float = 0.0, x1: float = 0.0) -> int:
        at = self.index
        self.blocks[-1].segments.append(Segment(kind, n, x0, x1))  # type: ignore[arg-type]
        self.index += n
        return at

    def idle(self, seconds: float) -> None:
        self.add("idle", self.n(seconds))

    def event(self, etype: str, **fields: Any) -> None:
        self.events.append(PlannedEvent(self.index, etype, fields))

    def set_load(self, kg: float, session_id: str) -> None:
        if kg == self.load:
            return
        self.event("load_changed", load_kg=kg, session_id=session_id)
        self.blocks.append(Block(self.index, kg, self.asi))


def plan_session(
    plan: SessionPlan,
    machine_load_kg: float,
    day_factor: float,
    bad_day: bool,
    rate_hz: float,
    mech: Mechanics,
    rng: np.random.Generator,
) -> SessionScript:
    p = plan.patient
    asi = p.signed_asi_pct + float(rng.normal(0.0, p.asi_sd))
    work = round_load(plan.load_kg * BAD_DAY_LOAD_FACTOR) if bad_day else plan.load_kg
    loads = [round_load(work * WARMUP_LOAD_FACTOR)] if p.warmup else []
    reps_per_set = [WARMUP_REPS] if p.warmup else []
    loads += [work] * plan.sets
    reps_per_set += [plan.reps] * plan.sets
    if not bad_day and plan.sets > 1 and rng.random() < 0.1:
        loads[-1] = work + float(rng.choice([2.5, 5.0]))  # feels good: heavier last set
    fault_set = int(rng.integers(0, len(loads))) if rng.random() < FAULT_SESSION_PROB else -1

    start = plan.checkin_index - round(LEAD_S * rate_hz)
    b = _Builder(start, machine_load_kg, asi, rate_hz)
    b.idle(LEAD_S)
    sid = plan.session_id
    setup = {"seat_position": p.seat_position, "footplate_position": p.footplate_position}
    b.event(
        "session_started",
        patient_id=p.patient_id,
        session_id=sid,
        prescription_id=plan.prescription_id,
        setup=setup,
    )
    b.idle(1.0)
    b.event(
        "calibrated",
        session_id=sid,
        usable_rom_mm=p.calibrated_rom_mm,
        zero_offsets={"position_mm": 0.0, "force_left_n": 0.0, "force_right_n": 0.0},
    )
    b.idle(1.0)
    b.set_load(loads[0], sid)
    b.idle(float(rng.uniform(*SETUP_RANGE_S)))

    reps: list[dict[str, Any]] = []
    rest_s = 0.0
    min_rom = max(150.0, 0.5 * p.calibrated_rom_mm)
    for s, (load, target) in enumerate(zip(loads, reps_per_set, strict=True)):
        if s > 0:
            half = max(1.0, (rest_s - PRE_SET_S - POST_SET_S) / 2)
            b.idle(half)
            b.set_load(load, sid)
            b.idle(half)
        if s == fault_set:
            code = str(rng.choice(["flat_left", "flat_right", "saturated_left", "saturated_right"]))
            b.event("fault", session_id=sid, code=f"load_cell_{code}", detail="simulated fault")
            b.blocks.append(Block(b.index, load, asi))
            b.blocks[-1].effects = _effects(p, code)
        b.add("rest", b.n(PRE_SET_S))
        set_reps = _plan_set(b, p, plan, s, load, target, day_factor, min_rom, mech, rng)
        for r in set_reps:
            r["fault"] = s == fault_set
        reps += set_reps
        b.add("rest", b.n(POST_SET_S))
        if s == fault_set:
            b.blocks.append(Block(b.index, load, asi))
        stopped = len([r for r in set_reps if r["valid"]]) < target
        if stopped and rng.random() < p.stop_session_prob:
            break
        rest_s = float(rng.uniform(*REST_RANGE_S))
    b.idle(float(rng.uniform(*CHECKOUT_RANGE_S)))
    b.event("session_ended", session_id=sid)
    end_event = b.index
    b.idle(LEAD_S)
    for blk in b.blocks:
        if blk.effects == SensorEffects():
            blk.effects = _effects(p, None)
        blk.dropouts = _draw_dropouts(blk.n, rng)
    blocks = [blk for blk in b.blocks if blk.n > 0]
    info = {
        "checkin_index": plan.checkin_index,
        "checkout_index": end_event,
        "asi_pct": asi,
        "bad_day": bad_day,
        "day_factor": day_factor,
        "loads": loads,
        "final_load_kg": b.load,
        "fault_set": fault_set + 1 if fault_set >= 0 else None,
        "calibrated_rom_mm": p.calibrated_rom_mm,
        "min_rom_mm": min_rom,
    }
    return SessionScript(sid, start, b.index, blocks, b.events, reps, info)


def _plan_set(
    b: _Builder,
    p: PatientProfile,
    plan: SessionPlan,
    s: int,
    load: float,
    target: int,
    day_factor: float,
    min_rom: float,
    mech: Mechanics,
    rng: np.random.Generator,
) -> list[dict[str, Any]]:
    mcv0 = p.mcv_at(load, plan.weeks_trained, day_factor) * (1 - SET_FATIGUE_CARRYOVER * s)
    stop_after = (
        int(rng.integers(1, target)) if target > 1 and rng.random() < p.stop_set_prob else 0
    )
    out: list[dict[str, Any]] = []
    valid = 0
    rep_no = 0
    while valid < target and rep_no < target + 5:
        rep_no += 1
        partial = rng.random() < p.partial_rep_prob
        frac = rng.uniform(*(PARTIAL_ROM_RANGE if partial else FULL_ROM_RANGE))
        rom = round(float(p.calibrated_rom_mm * frac), 1)
        fatigue = 1.0 - p.fatigue * valid / max(1, target - 1)
        mcv = mcv0 * fatigue * float(rng.normal(1.0, REP_MCV_JITTER)) * (0.8 if partial else 1.0)
        n_con = max(10, round(rom / 1000.0 / mcv * b.rate))
        n_top = b.n(p.top_pause_s * float(rng.uniform(0.8, 1.2))) if p.top_pause_s > 0 else 0
        n_ecc = max(10, round(p.eccentric_s * float(rng.uniform(0.9, 1.1)) * b.rate))
        if rep_no > 1:
            pause = min(MAX_BOTTOM_PAUSE_S, p.bottom_pause_s * float(rng.uniform(0.8, 1.2)))
            b.add("rest", b.n(max(MIN_PAUSE_S, pause)))
        start = b.add("move", n_con, 0.0, rom)
        if n_top:
            b.add("hold", n_top, rom, rom)
        b.add("move", n_ecc, rom, 0.0)
        is_valid = rom >= min_rom
        valid += is_valid
        truth = concentric_metrics(rom, n_con, load, b.asi, b.rate, mech)
        out.append(
            {
                "set_no": s + 1,
                "rep_no": rep_no,
                "valid": is_valid,
                "start_index": start,
                "top_index": start + n_con,
                "end_index": start + n_con + n_top + n_ecc,
                "rom_mm": rom,
                "concentric_s": n_con / b.rate,
                "top_pause_s": n_top / b.rate,
                "eccentric_s": n_ecc / b.rate,
                "tut_s": (n_con + n_ecc) / b.rate,
                "load_kg": load,
                "warmup": p.warmup and s == 0,
                **truth,
                "weaker_side": "left" if b.asi > 0 else "right" if b.asi < 0 else None,
            }
        )
        if stop_after and valid >= stop_after:
            break
    return out


def _effects(p: PatientProfile, fault: str | None) -> SensorEffects:
    return SensorEffects(
        tremor_mm=p.tremor_mm,
        tremor_hz=p.tremor_hz,
        fault=fault,  # type: ignore[arg-type]
    )


def _draw_dropouts(n: int, rng: np.random.Generator) -> list[tuple[int, int]]:
    count = int(rng.binomial(n, DROPOUT_SAMPLE_PROB)) if n else 0
    starts = sorted(rng.integers(0, n, count).tolist()) if count else []
    return [(int(st), int(rng.integers(1, 6))) for st in starts]
