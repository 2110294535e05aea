"""Hip-sled kinematics and forces: noise-free signals of strokes, then sensor effects.

A timeline is a list of :class:`Segment` s on a fixed sample grid (``n`` samples each):

- ``move``: minimum-jerk movement from ``x0_mm`` to ``x1_mm`` over ``n`` samples. With
  τ = i/n, x = x0 + Δ·(10τ³ − 15τ⁴ + 6τ⁵), v = Δ/T·(30τ² − 60τ³ + 30τ⁴),
  a = Δ/T²·(60τ − 180τ² + 120τ³). Velocity is zero at both ends (the turnarounds),
  its mean is exactly Δ/T and its peak is 1.875·Δ/T at τ = ½.
- ``hold``: the sled held still off the stop (a pause at the top), patient pushing.
- ``rest``: the sled on its bottom stop with the feet on the plate (pause between reps);
  force ramps smoothly to/from the holding force over ``FORCE_RAMP_S`` next to a move.
- ``idle``: nobody pushing (before, between and after sets): the sled on its stop.

Forces (N, both plates together): while pushing F = m·(a + g·sin θ) + F_fr·tanh(v / V_FR)
with m = load + sled carriage mass and F_fr = μ·m·g·cos θ (rail friction, smooth in v);
on the stop the plates carry ``REST_FORCE_FRACTION``·m·g·sin θ (feet resting), idle 0.
The total is split left/right with a constant ratio so that the asymmetry index
ASI = (F_R − F_L) / max(F_R, F_L) × 100 of any mean is exactly the configured value
(positive: the left side is weaker).

Sensor effects (:func:`perturb`) come after: tremor (a small oscillation in movement,
enveloped to vanish at the turnarounds), Gaussian noise, rounding, dropouts (``None``).
Everything is pure: inputs in, numpy arrays out; randomness only from the given Generator.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final, Literal

import numpy as np
import numpy.typing as npt

Array = npt.NDArray[np.float64]

G: Final = 9.80665
SLED_MASS_KG: Final = 25.0
"""Mass of the sled carriage moved with the selected load."""
FRICTION_COEFF: Final = 0.03
"""Rail friction coefficient μ (rolling bearings)."""
FRICTION_V_MS: Final = 0.01
"""Velocity scale of the smooth friction sign, tanh(v / V_FR)."""
REST_FORCE_FRACTION: Final = 0.15
"""Share of m·g·sin θ the feet press while the sled rests on its stop within a set."""
FORCE_RAMP_S: Final = 0.2
"""Force build-up before a stroke starts and release after the sled lands."""
POSITION_NOISE_MM: Final = 0.5
FORCE_NOISE_N: Final = 5.0
POSITION_DECIMALS: Final = 1
FORCE_DECIMALS: Final = 1
SATURATED_N: Final = 9950.0
"""Reading of a saturated load cell (the contract allows up to 10 kN)."""
MIN_JERK_PEAK: Final = 1.875
"""Peak / mean velocity of a minimum-jerk stroke."""

SegmentKind = Literal["move", "hold", "rest", "idle"]


@dataclass(frozen=True, slots=True)
class Segment:
    kind: SegmentKind
    n: int  # samples
    x0_mm: float = 0.0
    x1_mm: float = 0.0


@dataclass(frozen=True, slots=True)
class Mechanics:
    incline_deg: float = 45.0
    sled_mass_kg: float = SLED_MASS_KG
    friction_coeff: float = FRICTION_COEFF

    def mass(self, load_kg: float) -> float:
        return load_kg + self.sled_mass_kg

    def gravity_force(self, load_kg: float) -> float:
        return self.mass(load_kg) * G * math.sin(math.radians(self.incline_deg))

    def friction_force(self, load_kg: float) -> float:
        return (
            self.friction_coeff * self.mass(load_kg) * G * math.cos(math.radians(self.incline_deg))
        )


@dataclass(frozen=True, slots=True)
class Signal:
    """Noise-free signals of a timeline: position mm, v m/s, a m/s², forces N."""

    position_mm: Array
    velocity_ms: Array
    accel_ms2: Array
    force_left_n: Array
    force_right_n: Array

    @property
    def force_n(self) -> Array:
        return self.force_left_n + self.force_right_n


def min_jerk(n: int) -> tuple[Array, Array, Array]:
    """Shape of a minimum-jerk move sampled at τ = i/n, i = 0..n−1.

    Returns (x, v, a) as fractions of Δ, Δ/T and Δ/T² respectively.
    """
    tau = np.arange(n, dtype=np.float64) / n
    t2 = tau * tau
    x = t2 * tau * (10.0 - 15.0 * tau + 6.0 * t2)
    v = t2 * (30.0 - 60.0 * tau + 30.0 * t2)
    a = tau * (60.0 - 180.0 * tau + 120.0 * t2)
    return x, v, a


def side_split(asi_pct: float) -> tuple[float, float]:
    """Shares (left, right) of the total force giving the signed ASI (positive: left weaker)."""
    r = 1.0 - abs(asi_pct) / 100.0  # weaker / stronger
    weak, strong = r / (1.0 + r), 1.0 / (1.0 + r)
    return (weak, strong) if asi_pct >= 0 else (strong, weak)


def asi_of(mean_left: float, mean_right: float) -> float:
    """ASI = (F_R − F_L) / max(F_R, F_L) × 100 (DOMAIN.md)."""
    top = max(mean_left, mean_right)
    return 0.0 if top <= 0 else (mean_right - mean_left) / top * 100.0


def render(
    segments: list[Segment],
    load_kg: float,
    asi_pct: float,
    rate_hz: float,
    mech: Mechanics,
) -> Signal:
    """The noise-free signals of ``segments`` at one load, sample by sample."""
    total = sum(s.n for s in segments)
    pos = np.empty(total)
    vel = np.zeros(total)
    acc = np.zeros(total)
    engaged = np.zeros(total)  # 1 pushing, 0 resting on the stop (weight REST_FORCE_FRACTION)
    idle = np.zeros(total, dtype=bool)
    ramp_n = max(1, round(FORCE_RAMP_S * rate_hz))
    i = 0
    for k, seg in enumerate(segments):
        j = i + seg.n
        if seg.kind == "move":
            x, v, a = min_jerk(seg.n)
            delta = seg.x1_mm - seg.x0_mm
            dur = seg.n / rate_hz
            pos[i:j] = seg.x0_mm + delta * x
            vel[i:j] = delta / 1000.0 / dur * v
            acc[i:j] = delta / 1000.0 / (dur * dur) * a
            engaged[i:j] = 1.0
        elif seg.kind == "hold":
            pos[i:j] = seg.x0_mm
            engaged[i:j] = 1.0
        else:
            pos[i:j] = seg.x0_mm
            if seg.kind == "idle":
                idle[i:j] = True
            else:
                _ramps(engaged, i, j, ramp_n, segments, k)
        i = j
    g_force = mech.gravity_force(load_kg)
    pushing = (
        mech.mass(load_kg) * acc
        + g_force
        + mech.friction_force(load_kg) * np.tanh(vel / FRICTION_V_MS)
    )
    resting = REST_FORCE_FRACTION * g_force
    force = resting + engaged * (pushing - resting)
    force[idle] = 0.0
    left, right = side_split(asi_pct)
    return Signal(pos, vel, acc, force * left, force * right)


def _ramps(engaged: Array, i: int, j: int, ramp_n: int, segments: list[Segment], k: int) -> None:
    """Smooth force build-up/release inside a rest segment next to moves."""
    n = j - i
    m = min(ramp_n, n)
    shape = 0.5 - 0.5 * np.cos(np.pi * np.arange(1, m + 1) / (m + 1))  # 0 → 1
    if k + 1 < len(segments) and segments[k + 1].kind in ("move", "hold"):
        engaged[j - m : j] = np.maximum(engaged[j - m : j], shape)
    if k > 0 and segments[k - 1].kind in ("move", "hold"):
        engaged[i : i + m] = np.maximum(engaged[i : i + m], shape[::-1])


@dataclass(frozen=True, slots=True)
class SensorEffects:
    tremor_mm: float = 0.0
    tremor_hz: float = 7.0
    position_noise_mm: float = POSITION_NOISE_MM
    force_noise_n: float = FORCE_NOISE_N
    fault: Literal["flat_left", "flat_right", "saturated_left", "saturated_right"] | None = None


@dataclass(frozen=True, slots=True)
class Measured:
    """What the sensors report: rounded lists with ``None`` for dropped samples."""

    position_mm: list[float | None]
    force_left_n: list[float | None]
    force_right_n: list[float | None]
    dropouts: Array  # bool per sample: position missing


def perturb(
    sig: Signal,
    segments: list[Segment],
    load_kg: float,
    rate_hz: float,
    mech: Mechanics,
    fx: SensorEffects,
    dropouts: list[tuple[int, int]],
    rng: np.random.Generator,
) -> Measured:
    """Tremor, noise, rounding, dropouts and channel faults on a noise-free signal."""
    n = len(sig.position_mm)
    pos = sig.position_mm.copy()
    fl = sig.force_left_n.copy()
    fr = sig.force_right_n.copy()
    if fx.tremor_mm > 0:
        env = _movement_envelope(segments, n)
        t = np.arange(n) / rate_hz
        w = 2 * np.pi * fx.tremor_hz
        phase = rng.uniform(0, 2 * np.pi)
        osc = fx.tremor_mm * env * np.sin(w * t + phase)
        pos += osc
        tremor_force = mech.mass(load_kg) * (-(w * w) * osc / 1000.0)
        share_l = fl / np.where(sig.force_n > 0, sig.force_n, 1.0)
        fl += tremor_force * share_l
        fr += tremor_force * (1.0 - share_l) * (sig.force_n > 0)
    pos += rng.normal(0.0, fx.position_noise_mm, n)
    fl += rng.normal(0.0, fx.force_noise_n, n)
    fr += rng.normal(0.0, fx.force_noise_n, n)
    if fx.fault is not None:
        target = fl if fx.fault.endswith("left") else fr
        target[:] = SATURATED_N if fx.fault.startswith("saturated") else round(float(target[0]), 1)
    np.clip(pos, -49.0, 1499.0, out=pos)
    np.clip(fl, -499.0, 9999.0, out=fl)
    np.clip(fr, -499.0, 9999.0, out=fr)
    drop = np.zeros(n, dtype=bool)
    for start, length in dropouts:
        drop[start : start + length] = True
    p_list: list[float | None] = np.round(pos, POSITION_DECIMALS).tolist()
    l_list: list[float | None] = np.round(fl, FORCE_DECIMALS).tolist()
    r_list: list[float | None] = np.round(fr, FORCE_DECIMALS).tolist()
    for idx in np.flatnonzero(drop).tolist():
        p_list[idx] = None
        l_list[idx] = None
        r_list[idx] = None
    return Measured(p_list, l_list, r_list, drop)


def _movement_envelope(segments: list[Segment], n: int) -> Array:
    env = np.zeros(n)
    i = 0
    for seg in segments:
        if seg.kind == "move" and seg.n > 0:
            env[i : i + seg.n] = np.sin(np.pi * np.arange(seg.n) / seg.n)
        i += seg.n
    return env


def concentric_metrics(
    rom_mm: float, n: int, load_kg: float, asi_pct: float, rate_hz: float, mech: Mechanics
) -> dict[str, float]:
    """Ground-truth metrics of one noise-free minimum-jerk concentric stroke of ``n`` samples.

    Duration T = n / rate (onset sample to top sample, exclusive), MCV = ROM / T,
    PV = 1.875·MCV at T/2 (analytic), MPV = mean v up to the last sample with
    a ≥ −g·sin θ; forces, power and work are means/peaks/sums over the ``n`` samples.
    """
    dur = n / rate_hz
    _, v_shape, a_shape = min_jerk(n)
    rom_m = rom_mm / 1000.0
    v = rom_m / dur * v_shape
    a = rom_m / (dur * dur) * a_shape
    force = (
        mech.mass(load_kg) * a
        + mech.gravity_force(load_kg)
        + mech.friction_force(load_kg) * np.tanh(v / FRICTION_V_MS)
    )
    left_share, right_share = side_split(asi_pct)
    mean_force = float(force.mean())
    power = force * v
    propulsive = np.flatnonzero(a >= -G * math.sin(math.radians(mech.incline_deg)))
    last = int(propulsive[-1]) + 1 if len(propulsive) else n
    mcv = rom_m / dur
    return {
        "mcv_ms": mcv,
        "mpv_ms": float(v[:last].mean()),
        "pv_ms": MIN_JERK_PEAK * mcv,
        "time_to_pv_s": dur / 2.0,
        "pv_position_pct": 50.0,
        "mean_force_n": mean_force,
        "peak_force_n": float(force.max()),
        "mean_force_left_n": mean_force * left_share,
        "mean_force_right_n": mean_force * right_share,
        "asi_pct": asi_of(mean_force * left_share, mean_force * right_share),
        "mean_power_w": float(power.mean()),
        "peak_power_w": float(power.max()),
        "work_j": float((force * v).sum() / rate_hz),
    }
