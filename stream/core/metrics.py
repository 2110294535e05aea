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


# Hot path: a rep is 50–400 samples, where numpy's per-call overhead (~1 µs) costs more
# than the arithmetic. The code below takes the cheap route when a rep has no pause and no
# missing force sample (the common case) and computes exactly what the general route would
# (same operations on the same values); np.percentile/np.median/np.gradient/np.clip are
# replaced by their few underlying operations.


def pause_mask(v: npt.NDArray[np.float64], band: float, min_samples: int) -> npt.NDArray[np.bool_]:
    """True on samples inside a pause: a run of |v| < band longer than ``min_samples``."""
    mask = _pauses(v, band, min_samples)
    return mask if mask is not None else np.zeros(v.shape[0], dtype=bool)


def _pauses(
    v: npt.NDArray[np.float64], band: float, min_samples: int
) -> npt.NDArray[np.bool_] | None:
    """:func:`pause_mask`, or None when there is no pause."""
    slow = np.abs(v) < band
    if np.count_nonzero(slow) <= min_samples:
        return None  # no run can be long enough
    n = slow.shape[0]
    bounds = [0, *(np.flatnonzero(slow[1:] != slow[:-1]) + 1).tolist(), n]
    mask: npt.NDArray[np.bool_] | None = None
    for k in range(0 if slow[0] else 1, len(bounds) - 1, 2):  # the slow runs
        s, e = bounds[k], bounds[k + 1]
        if e - s > min_samples:
            if mask is None:
                mask = np.zeros(n, dtype=bool)
            mask[s:e] = True
    return mask


def _active_between(
    ts: npt.NDArray[np.float64], paused: npt.NDArray[np.bool_] | None, a: float, b: float
) -> float:
    """Time from ``a`` to ``b`` (s, same origin as ``ts``) minus the paused sample intervals
    inside it; ``a``/``b`` may fall between samples or just outside the data."""
    if b <= a:
        return 0.0
    if paused is None:
        return max(0.0, b - a)
    lo = np.minimum(np.maximum(ts[:-1], a), b)
    hi = np.minimum(np.maximum(ts[1:], a), b)
    pause = float(((hi - lo) * paused[:-1]).sum())
    return max(0.0, (b - a) - pause)


def _cross(v: npt.NDArray[np.float64], i: int, j: int, level: float) -> float:
    """Fractional index where v crosses ``level`` between samples i and j (linear)."""
    if not 0 <= i < v.shape[0] or not 0 <= j < v.shape[0]:
        return float(min(max(i, 0), v.shape[0] - 1))
    vi = float(v[i])
    dv = float(v[j]) - vi
    if dv == 0:
        return float(i)
    f = min(1.0, max(0.0, (level - vi) / dv))
    return float(i + f * (j - i))


def _mean(a: npt.NDArray[np.float64]) -> float:
    """Mean of the non-NaN values (NaN if none)."""
    if a.size:
        total = float(a.sum())
        if not math.isnan(total):
            return total / a.size
    a = a[~np.isnan(a)]
    return float(a.sum()) / a.size if a.size else math.nan


def _max(a: npt.NDArray[np.float64]) -> float:
    """Maximum of the non-NaN values (NaN if none)."""
    return float(np.fmax.reduce(a)) if a.size else math.nan


def _percentile(a: npt.NDArray[np.float64], q: float) -> float:
    """np.percentile(a, q) (linear method, same arithmetic) of a non-empty NaN-free ``a``."""
    n = int(a.shape[0])
    vi = (n - 1) * (q / 100.0)
    lo = int(vi)
    if lo >= n - 1:
        return float(np.max(a))
    part = np.partition(a, (lo, lo + 1))
    pa, pb = float(part[lo]), float(part[lo + 1])
    gamma = vi - lo
    diff = pb - pa
    return pb - diff * (1.0 - gamma) if gamma >= 0.5 else pa + diff * gamma


def _median(a: npt.NDArray[np.float64]) -> float:
    """np.median(a) of a non-empty ``a`` (NaN if any value is NaN)."""
    srt = np.sort(a)
    if math.isnan(float(srt[-1])):
        return math.nan
    h = srt.shape[0] // 2
    if srt.shape[0] % 2:
        return float(srt[h])
    return (float(srt[h - 1]) + float(srt[h])) / 2


def rep_metrics(seg: RepSegment, p: MetricParams) -> RepMetrics:
    d = seg.data
    top, end = seg.top, seg.end
    t, x, v, a = d.t, d.x, d.v, d.a
    paused = _pauses(v[: end + 1], p.pause_velocity_ms, p.pause_samples)
    rom = float(x[top] - x[0])
    # turnarounds: where v crosses the turnaround level (interpolated between samples),
    # refined by a minimum-jerk fit of each stroke when it fits (stream.core.turnarounds)
    u = p.turn_velocity_ms
    dt = 1.0 / p.rate_hz
    ts = (t[: end + 1] - t[0]).astype(np.float64)
    ts /= 1e9
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
    mcv = rom / 1000.0 / con_s if con_s > 0 else 0.0
    ipv = int(np.argmax(cv))
    pv = float(cv[ipv])
    # propulsive phase: until the first sample after PV where a < −g·sin θ
    g_incline = G * math.sin(math.radians(p.incline_deg))
    brake = np.flatnonzero(ca[ipv:] < -g_incline)
    prop_end = ipv + int(brake[0]) if brake.size else top + 1
    prop = cv[:prop_end]
    if paused is not None:
        prop = prop[~paused[:prop_end]]
    mpv = float(prop.sum()) / prop.size if prop.size else mcv
    time_to_pv = _active_between(ts, paused, s_start, float(ts[ipv]))
    pv_pos = float((x[ipv] - x[0]) / rom * 100.0) if rom > 0 else 0.0
    # force: load cells when present, else the sled's dynamics
    fl, fr = d.fl[: top + 1], d.fr[: top + 1]
    force = fl + fr
    load = _median(d.load[: top + 1])
    force_nan = math.isnan(float(force.sum()))  # a missing (or no) load-cell reading
    if force_nan and np.isnan(force).all():
        force = load * (ca + g_incline)
        force_nan = False
        asi, weaker = None, None
    else:
        asi, weaker = _asi(fl, fr, force, p.force_saturation_n)
    power = force * cv
    dx_m = (x[1 : top + 1] - x[:top]) / 1000.0
    fmid = force[1:] + force[:-1]
    fmid *= 0.5
    if force_nan:
        good = ~np.isnan(fmid)
        fmid, dx_m = fmid[good], dx_m[good]
    work = float((fmid * dx_m).sum())
    signs = np.sign(cv[np.abs(cv) >= p.pause_velocity_ms])
    sign_changes = int(np.count_nonzero(signs[1:] != signs[:-1]))
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


def _asi(
    fl: npt.NDArray[np.float64],
    fr: npt.NDArray[np.float64],
    force: npt.NDArray[np.float64],
    saturation_n: float,
) -> tuple[float | None, str | None]:
    """(ASI %, weaker side) over the loaded part of the stroke: where the plates carry less
    than ASI_LOADED_SHARE of the peak (feet unloading in the braking tail of a fast stroke)
    the left/right ratio is undefined and noise would dominate it (saturated, negative or
    missing readings are implausible for a foot on a plate: skipped)."""
    ok = (np.minimum(fl, fr) >= 0) & (np.maximum(fl, fr) < saturation_n)  # NaN: False
    n_ok = int(np.count_nonzero(ok))
    if n_ok < 3:
        return None, None
    if n_ok == ok.shape[0]:
        peak = _percentile(force, 90)
        loaded = force >= ASI_LOADED_SHARE * peak
    else:
        peak = _percentile(force[ok], 90)
        loaded = ok & (force >= ASI_LOADED_SHARE * peak)
    n_loaded = int(np.count_nonzero(loaded))
    if n_loaded == 0:
        return None, None
    ml = float(fl[loaded].sum()) / n_loaded
    mr = float(fr[loaded].sum()) / n_loaded
    big = max(ml, mr)
    if big <= 0:
        return None, None
    return (mr - ml) / big * 100.0, None if ml == mr else ("left" if ml < mr else "right")


def _jerk_score(
    acc: npt.NDArray[np.float64], t: npt.NDArray[np.int64], rom_mm: float, rate_hz: float
) -> float:
    if acc.size < 3 or rom_mm <= 0:
        return 0.0
    dt = 1.0 / rate_hz
    # np.gradient(acc, dt): central differences inside, one-sided at the ends
    jerk = np.empty_like(acc)
    np.subtract(acc[2:], acc[:-2], out=jerk[1:-1])
    jerk[1:-1] /= 2.0 * dt
    jerk[0] = (acc[1] - acc[0]) / dt
    jerk[-1] = (acc[-1] - acc[-2]) / dt
    duration = (t[-1] - t[0]) / 1e9
    amp = rom_mm / 1000.0
    return float(math.sqrt(0.5 * float((jerk * jerk).sum()) * dt * duration**5 / amp**2))
