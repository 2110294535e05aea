"""Simulated MS patients: strength, asymmetry, fatigue, tremor, progression, adherence.

A :class:`PatientProfile` is drawn once per patient from the fleet seed. Its behaviour:

- **Strength** is a linear load–velocity profile MCV(load) = v0·(1 − load / L0): v0 is the
  velocity at no load, L0 the load at which MCV reaches 0.
- **Progression**: L0 grows by ``progression_pct_per_week`` for every ISO week since the
  start in which the patient attended at least one session (training effect).
- **Day-to-day variation**: each attended day multiplies strength by a day factor
  N(1, ``day_sd``); a *bad day* (probability ``bad_day_prob``) lowers it further and the
  patient picks a lighter load (resistance adjusted to the day).
- **Fatigue** within a set: MCV of the k-th valid rep (0-based) of n planned is
  MCV₀·(1 − fatigue·k/(n − 1)), so the set's velocity loss is ≈ ``fatigue`` × 100 %.
  Later sets start ``SET_FATIGUE_CARRYOVER`` lower each.
- **Asymmetry**: the weaker side delivers ``asi_pct`` % less force (day-to-day ±``asi_sd``).
- **Tremor/spasticity**: ``tremor_mm`` amplitude at ``tremor_hz`` during movement.
- **Partial reps** (ROM 20–45 % of the calibrated ROM) with ``partial_rep_prob`` per rep,
  **stopping mid-set** with ``stop_set_prob`` per set (then ending the session with
  ``stop_session_prob``).
- **Adherence**: ``skip_prob`` per planned session, and planned lapses (whole days with no
  session): some patients miss one ISO week, some lapse 10–16 days.

Patient ids are pseudonyms (``p-`` + 6 hex digits of a hash); no names exist anywhere.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

Side = Literal["left", "right"]

SET_FATIGUE_CARRYOVER = 0.03
"""Each further set starts this fraction slower than the first (incomplete recovery)."""
PARTIAL_ROM_RANGE = (0.20, 0.45)
"""Partial reps reach this fraction of the calibrated ROM (below the 50 % rule)."""
FULL_ROM_RANGE = (0.88, 0.98)
"""Valid reps reach this fraction of the calibrated ROM."""
MIN_MCV_MS = 0.12
"""Floor of a simulated MCV (a very slow but still moving stroke)."""
LOAD_STEP_KG = 2.5
"""Weight stack increment."""


def pseudonym(prefix: str, *parts: object) -> str:
    """A short stable pseudonymous id, e.g. ``p-7f3a2c``."""
    digest = hashlib.sha256("/".join(str(p) for p in parts).encode()).hexdigest()
    return f"{prefix}-{digest[:6]}"


def round_load(kg: float) -> float:
    return max(LOAD_STEP_KG, round(kg / LOAD_STEP_KG) * LOAD_STEP_KG)


@dataclass(frozen=True, slots=True)
class PatientProfile:
    patient_id: str
    v0_ms: float
    l0_kg: float
    weaker_side: Side
    asi_pct: float  # magnitude, %
    asi_sd: float
    fatigue: float  # velocity loss fraction across a set
    tremor_mm: float
    tremor_hz: float
    day_sd: float
    bad_day_prob: float
    progression_pct_per_week: float
    calibrated_rom_mm: float
    seat_position: float
    footplate_position: float
    top_pause_s: float  # 0 or ≥ 0.4
    eccentric_s: float
    bottom_pause_s: float  # ≥ 0.4
    partial_rep_prob: float
    stop_set_prob: float
    stop_session_prob: float
    skip_prob: float
    warmup: bool  # does a lighter warm-up set first (gives a load–velocity profile)
    lapse_days: tuple[tuple[int, int], ...] = field(default=())  # [first, last] day indices

    @property
    def signed_asi_pct(self) -> float:
        """Positive when the left side is weaker (F_R > F_L)."""
        return self.asi_pct if self.weaker_side == "left" else -self.asi_pct

    def mcv_at(self, load_kg: float, weeks_trained: int = 0, day_factor: float = 1.0) -> float:
        l0 = self.l0_kg * (1.0 + self.progression_pct_per_week / 100.0 * weeks_trained)
        return max(MIN_MCV_MS, self.v0_ms * (1.0 - load_kg / l0) * day_factor)

    def load_for(self, mcv_ms: float) -> float:
        """The load at which this patient's first rep moves at ``mcv_ms`` (week 0)."""
        return round_load(self.l0_kg * (1.0 - mcv_ms / self.v0_ms))

    def in_lapse(self, day: int) -> bool:
        return any(a <= day <= b for a, b in self.lapse_days)


def draw_patient(seed: int, index: int, days: int, rng: np.random.Generator) -> PatientProfile:
    """One patient's profile; lapses are planned inside ``days`` simulated days."""
    lapses: list[tuple[int, int]] = []
    kind = rng.random()
    if kind < 0.15 and days >= 14:  # misses one whole ISO week (days are Monday-aligned)
        week = int(rng.integers(1, max(2, days // 7)))
        lapses.append((week * 7, week * 7 + 6))
    elif kind < 0.30 and days >= 21:  # a 10–16 day lapse
        length = int(rng.integers(10, 17))
        first = int(rng.integers(5, max(6, days - length)))
        lapses.append((first, first + length - 1))
    top_pause = float(rng.choice([0.0, 0.0, rng.uniform(0.4, 1.0)]))
    return PatientProfile(
        patient_id=pseudonym("p", seed, index),
        v0_ms=float(rng.uniform(1.1, 1.6)),
        l0_kg=float(rng.uniform(120.0, 260.0)),
        weaker_side="left" if rng.random() < 0.5 else "right",
        asi_pct=float(abs(rng.normal(9.0, 6.0))),
        asi_sd=float(rng.uniform(0.5, 2.0)),
        fatigue=float(rng.uniform(0.08, 0.32)),
        tremor_mm=float(rng.choice([0.0, rng.uniform(0.2, 1.2)])),
        tremor_hz=float(rng.uniform(5.0, 9.0)),
        day_sd=float(rng.uniform(0.02, 0.07)),
        bad_day_prob=float(rng.uniform(0.03, 0.12)),
        progression_pct_per_week=float(rng.uniform(0.5, 2.5)),
        calibrated_rom_mm=float(round(rng.uniform(340.0, 480.0))),
        seat_position=float(rng.integers(1, 20) * 5),
        footplate_position=float(rng.integers(1, 20) * 5),
        top_pause_s=top_pause,
        eccentric_s=float(rng.uniform(1.2, 2.4)),
        bottom_pause_s=float(rng.uniform(0.6, 2.5)),
        partial_rep_prob=float(rng.uniform(0.0, 0.06)),
        stop_set_prob=float(rng.uniform(0.0, 0.06)),
        stop_session_prob=0.5,
        skip_prob=float(rng.uniform(0.02, 0.15)),
        warmup=bool(rng.random() < 0.5),
        lapse_days=tuple(lapses),
    )
