"""Per-repetition metrics from a segmented rep (pure numpy).

Definitions (DOMAIN.md): ROM = x(top) − x(onset); durations exclude pauses (|v| <
``pause_velocity`` for > ``pause_min``); MCV = ROM / concentric duration; MPV = mean v up
to the end of the propulsive phase (the first sample after peak velocity with
a < −g·sin θ; Sánchez-Medina 2010); PV, time to PV, PV position as % of ROM; force
F = F_L + F_R (or m·(a + g·sin θ) without load cells); power F·v; work = ∫F dx over the
concentric phase; ASI = (F̄_R − F̄_L)/max(F̄_R, F̄_L) × 100 on mean concentric force;
smoothness as velocity sign changes (outside the pause band) and dimensionless jerk
sqrt(½·∫j² dt · D⁵ / A²) (Hogan & Sternad 2009; ≈ 19 for a minimum-jerk stroke).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from stream.core.reps import RepSegment
from stream.core.turnarounds import refine_stroke

G = 9.80665
ASI_LOADED_SHARE = 0.25
"""ASI uses the concentric samples whose total force is at least this share of its 90th
percentile (a robust peak)."""


@dataclass(frozen=True, slots=True)
class MetricParams:
    rate_hz: float
    pause_velocity_ms: float
    pause_samples: int  # a pause is a run of more than this many slow samples
    incline_deg: float
    turn_velocity_ms: float = 0.0
    detect_velocity_ms: float = 0.05
    force_saturation_n: float = 9900.0
    refine_turnarounds: bool = True
    fit_max_rms_pct: float = 2.0


@dataclass(frozen=True, slots=True)
class RepMetrics:
    start_ns: int
    top_ns: int
    end_ns: int
    load_kg: float
    rom_mm: float
    concentric_s: float
    eccentric_s: float
    tut_s: float
    mcv_ms: float
    mpv_ms: float
    pv_ms: float
    time_to_pv_s: float
    pv_position_pct: float
    mean_force_n: float
    peak_force_n: float
    mean_power_w: float
    peak_power_w: float
    work_j: float
    asi_pct: float | None
    weaker_side: str | None
    sign_changes: int
    jerk_score: float
    dropout_samples: int
    replayed: bool
    complete: bool


def pause_mask(v: npt.NDArray[np.float64], band: float, min_samples: int) -> npt.NDArray[np.bool_]:
    """True on samples inside a pause: a run of |v| < band longer than ``min_samples``."""
    slow = np.abs(v) < band
    edges = np.diff(np.concatenate(([0], slow.astype(np.int8), [0])))
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    mask = np.zeros(v.shape[0], dtype=bool)
    for s, e in zip(starts, ends, strict=True):
        if e - s > min_samples:
            mask[s:e] = True
    return mask


def _active_s(t: npt.NDArray[np.int64], paused: npt.NDArray[np.bool_], lo: int, hi: int) -> float:
    """Elapsed time from sample lo to hi minus the sample intervals that start in a pause."""
    if hi <= lo:
        return 0.0
    dts = np.diff(t[lo : hi + 1]).astype(np.float64) / 1e9
    return float(dts[~paused[lo:hi]].sum())


def _active_between(
    ts: npt.NDArray[np.float64], paused: npt.NDArray[np.bool_], a: float, b: float
) -> float:
    """Time from ``a`` to ``b`` (s, same origin as ``ts``) minus the paused sample intervals
    inside it; ``a``/``b`` may fall between samples or just outside the data."""
    if b <= a:
        return 0.0
    lo = np.clip(ts[:-1], a, b)
    hi = np.clip(ts[1:], a, b)
    pause = float(((hi - lo) * paused[:-1]).sum())
    return max(0.0, (b - a) - pause)


def _cross(v: npt.NDArray[np.float64], i: int, j: int, level: float) -> float:
    """Fractional index where v crosses ``level`` between samples i and j (linear)."""
    if not 0 <= i < v.shape[0] or not 0 <= j < v.shape[0]:
        return float(min(max(i, 0), v.shape[0] - 1))
    dv = v[j] - v[i]
    if dv == 0:
        return float(i)
    f = min(1.0, max(0.0, float((level - v[i]) / dv)))
    return float(i + f * (j - i))


def _mean(a: npt.NDArray[np.float64]) -> float:
    a = a[~np.isnan(a)]
    return float(a.mean()) if a.size else math.nan


def _max(a: npt.NDArray[np.float64]) -> float:
    a = a[~np.isnan(a)]
    return float(a.max()) if a.size else math.nan


def rep_metrics(seg: RepSegment, p: MetricParams) -> RepMetrics:
    d = seg.data
    top, end = seg.top, seg.end
    t, x, v, a = d.t, d.x, d.v, d.a
    paused = pause_mask(v[: end + 1], p.pause_velocity_ms, p.pause_samples)
    rom = float(x[top] - x[0])
    # turnarounds: where v crosses the turnaround level (interpolated between samples),
    # refined by a minimum-jerk fit of each stroke when it fits (stream.core.turnarounds)
    u = p.turn_velocity_ms
    dt = 1.0 / p.rate_hz
    ts = (t[: end + 1] - t[0]).astype(np.float64) / 1e9
    s_start = _cross(v, 0, 1, u) * dt
    s_top = (_cross(v, top - 1, top, u) if top > 0 else 0.0) * dt
    s_end = (_cross(v, end - 1, end, -u) if end > top else float(top)) * dt
    # eccentric movement onset: after any pause at the top, where v falls through −u
    fast = np.flatnonzero(v[top : end + 1] < -p.detect_velocity_ms)
    s_desc = s_top
    if fast.size:
        k1 = top + int(fast[0])
        still = np.flatnonzero(v[top:k1] >= -u)
        if still.size:
            j = top + int(still[-1])
            s_desc = _cross(v, j, j + 1, -u) * dt
    con_s = _active_between(ts, paused, s_start, s_top)
    ecc_s = _active_between(ts, paused, s_desc, s_end)
    if p.refine_turnarounds:
        # a stroke that fits one smooth movement has no pause inside: its duration is
        # the fitted one (the pause rule would eat its slow first and last samples)
        fit = refine_stroke(ts, x, 0, top, s_start, s_top, p.fit_max_rms_pct)
        if fit is not None:
            s_start, s_top = fit
            con_s = s_top - s_start
        lo = max(top, int(s_desc / dt) - 3)
        fit = refine_stroke(ts, x, lo, end, s_desc, s_end, p.fit_max_rms_pct)
        if fit is not None:
            s_desc, s_end = max(fit[0], s_top), fit[1]
            ecc_s = s_end - s_desc
    if top > 0:
        con_s = max(con_s, dt)
    cv, ca = v[: top + 1], a[: top + 1]
    active = ~paused[: top + 1]
    mcv = rom / 1000.0 / con_s if con_s > 0 else 0.0
    ipv = int(np.argmax(cv)) if cv.size else 0
    pv = float(cv[ipv]) if cv.size else 0.0
    # propulsive phase: until the first sample after PV where a < −g·sin θ
    brake = np.flatnonzero(ca[ipv:] < -G * math.sin(math.radians(p.incline_deg)))
    prop_end = ipv + int(brake[0]) if brake.size else top + 1
    prop = cv[:prop_end][active[:prop_end]]
    mpv = float(prop.mean()) if prop.size else mcv
    time_to_pv = _active_between(ts, paused, s_start, float(ts[ipv]))
    pv_pos = float((x[ipv] - x[0]) / rom * 100.0) if rom > 0 else 0.0
    # force: load cells when present, else the sled's dynamics
    fl, fr = d.fl[: top + 1], d.fr[: top + 1]
    force = fl + fr
    load = float(np.median(d.load[: top + 1])) if top >= 0 else 0.0
    if np.isnan(force).all():
        force = load * (ca + G * math.sin(math.radians(p.incline_deg)))
        asi, weaker = None, None
    else:
        # ASI over the loaded part of the stroke: where the plates carry less than
        # ASI_LOADED_SHARE of the peak (feet unloading in the braking tail of a fast
        # stroke) the left/right ratio is undefined and noise would dominate it
        # (saturated or negative readings are implausible for a foot on a plate: skipped)
        with np.errstate(invalid="ignore"):
            ok = (fl >= 0) & (fr >= 0) & (fl < p.force_saturation_n) & (fr < p.force_saturation_n)
        if ok.sum() >= 3:
            peak = float(np.percentile(force[ok], 90))
            loaded = ok & (force >= ASI_LOADED_SHARE * peak)
            ml, mr = _mean(fl[loaded]), _mean(fr[loaded])
        else:
            ml = mr = math.nan
        big = max(ml, mr)
        if math.isnan(ml) or math.isnan(mr) or big <= 0:
            asi, weaker = None, None
        else:
            asi = (mr - ml) / big * 100.0
            weaker = None if ml == mr else ("left" if ml < mr else "right")
    power = force * cv
    dx_m = np.diff(x[: top + 1]) / 1000.0
    fmid = 0.5 * (force[1:] + force[:-1])
    good = ~np.isnan(fmid)
    work = float((fmid[good] * dx_m[good]).sum())
    signs = np.sign(cv[np.abs(cv) >= p.pause_velocity_ms])
    sign_changes = int(np.count_nonzero(np.diff(signs))) if signs.size > 1 else 0
    jerk = _jerk_score(ca, t[: top + 1], rom, p.rate_hz)
    return RepMetrics(
        start_ns=int(t[0]) + round(float(s_start) * 1e9),
        top_ns=int(t[0]) + round(float(s_top) * 1e9),
        end_ns=int(t[0]) + round(float(s_end) * 1e9),
        load_kg=load,
        rom_mm=rom,
        concentric_s=con_s,
        eccentric_s=ecc_s,
        tut_s=con_s + ecc_s,
        mcv_ms=mcv,
        mpv_ms=mpv,
        pv_ms=pv,
        time_to_pv_s=time_to_pv,
        pv_position_pct=pv_pos,
        mean_force_n=_mean(force),
        peak_force_n=_max(force),
        mean_power_w=_mean(power),
        peak_power_w=_max(power),
        work_j=work,
        asi_pct=asi,
        weaker_side=weaker,
        sign_changes=sign_changes,
        jerk_score=jerk,
        dropout_samples=int(np.count_nonzero(d.missing[: end + 1])),
        replayed=bool(d.replayed[: end + 1].any()),
        complete=seg.complete,
    )


def _jerk_score(
    acc: npt.NDArray[np.float64], t: npt.NDArray[np.int64], rom_mm: float, rate_hz: float
) -> float:
    if acc.size < 3 or rom_mm <= 0:
        return 0.0
    dt = 1.0 / rate_hz
    jerk = np.gradient(acc, dt)
    duration = (t[-1] - t[0]) / 1e9
    amp = rom_mm / 1000.0
    return float(math.sqrt(0.5 * float((jerk**2).sum()) * dt * duration**5 / amp**2))
