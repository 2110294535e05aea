"""Concentric turnarounds refined by a minimum-jerk fit of the whole stroke.

At a turnaround the sled moves as (t − t₀)³ (velocity and acceleration both zero): the
first and last ~30 ms of a stroke move it less than the sensor noise, and tremor ripples
the velocity flanks, so any threshold on v misplaces the turnarounds by 10–80 ms — on a
0.4 s stroke that is a 5–20 % MCV error. Fitting the minimum-jerk trajectory
x(t) = x₀ + Δ·(10τ³ − 15τ⁴ + 6τ⁵), τ = (t − t₀)/T clipped to [0, 1] (Flash & Hogan 1985,
the standard model of a smooth voluntary point-to-point movement) to *all* the stroke's
position samples averages noise and tremor out. x₀ and Δ are linear given (t₀, T), so
the search is a two-stage grid over (t₀, T) only. A stroke that is not one smooth
movement (a hesitation mid-way) fits badly — RMS residual above ``max_rms_pct`` of the
ROM — and keeps its threshold turnarounds.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

F64 = npt.NDArray[np.float64]
STAGES = ((0.08, 0.12, 0.01), (0.012, 0.012, 0.001))
"""(± t₀ range s, ± T range s, step s) of the coarse and the fine grid."""


def _min_jerk(tau: F64) -> F64:
    tau = np.clip(tau, 0.0, 1.0)
    t3 = tau * tau * tau
    return t3 * (10.0 - 15.0 * tau + 6.0 * tau * tau)


def _grid(ts: F64, x: F64, t0s: F64, durs: F64) -> tuple[float, float, float]:
    """Best (t0, T, rss) over the grid, with x0 and Δ solved by least squares."""
    tau = (ts[None, None, :] - t0s[:, None, None]) / durs[None, :, None]
    s = _min_jerk(tau)
    sm = s.mean(axis=-1, keepdims=True)
    xc = x - x.mean()
    sc = s - sm
    var = (sc * sc).sum(axis=-1)
    cov = (sc * xc).sum(axis=-1)
    delta = np.divide(cov, var, out=np.zeros_like(cov), where=var > 0)
    rss = (xc * xc).sum() - delta * cov  # residual sum of squares of the linear fit
    i, j = np.unravel_index(int(np.argmin(rss)), rss.shape)
    return float(t0s[i]), float(durs[j]), float(rss[i, j])


def refine_stroke(
    ts: F64,
    x: F64,
    lo: int,
    hi: int,
    start_s: float,
    end_s: float,
    max_rms_pct: float,
) -> tuple[float, float] | None:
    """(start, end) in the time base of ``ts`` (s) of the minimum-jerk stroke fitted to
    x[lo..hi] around the threshold turnarounds ``start_s``/``end_s``; None if it fits badly."""
    n = hi - lo + 1
    dist = abs(float(x[hi] - x[lo]))
    if n < 8 or dist <= 0:
        return None
    tw = ts[lo : hi + 1]
    xs = x[lo : hi + 1]
    t0, dur = start_s, max(end_s - start_s, 0.05)
    rss = np.inf
    for half_t0, half_dur, step in STAGES:
        t0s = t0 + np.arange(-half_t0, half_t0 + step / 2, step)
        durs = dur + np.arange(-half_dur, half_dur + step / 2, step)
        durs = durs[durs > 0.05]
        if durs.size < 3:
            return None
        t0, dur, rss = _grid(tw, xs, t0s, durs)
        if half_t0 == STAGES[0][0] and (
            t0 <= t0s[0] or t0 >= t0s[-1] or dur <= durs[0] or dur >= durs[-1]
        ):
            return None  # optimum outside the plausible range: not a minimum-jerk stroke
    rms = float(np.sqrt(max(rss, 0.0) / n))
    if rms > max_rms_pct / 100.0 * dist:
        return None
    return t0, t0 + dur
