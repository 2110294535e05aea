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
COARSE_T0 = (0.03, 0.08)
"""Coarse search half-range of the onset: a + b × (threshold duration), s."""
COARSE_DUR = (0.05, 0.15)
"""Coarse search half-range of the duration: a + b × (threshold duration), s."""
GRID_STEPS = 4
"""Grid points each side of the centre in every stage; each stage zooms in 3×..."""
FINEST_STEP_S = 0.003
"""...until the step is this fine; a parabola through the best point's neighbours then
places the optimum between grid points."""


def _min_jerk(tau: F64) -> F64:
    tau = np.clip(tau, 0.0, 1.0)
    t3 = tau * tau * tau
    return t3 * (10.0 - 15.0 * tau + 6.0 * tau * tau)


def _grid(ts: F64, x: F64, t0s: F64, durs: F64) -> tuple[int, int, F64]:
    """Residual sum of squares over the (t0, T) grid, x0 and Δ solved by least squares;
    returns the best (i, j) and the whole rss table."""
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
    return int(i), int(j), rss


def _vertex(ym: float, y0: float, yp: float) -> float:
    """Offset (in steps, within ±0.5) of the minimum of the parabola through 3 points."""
    den = ym - 2.0 * y0 + yp
    return 0.0 if den <= 0 else max(-0.5, min(0.5, 0.5 * (ym - yp) / den))


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
    h_t0 = COARSE_T0[0] + COARSE_T0[1] * dur
    h_dur = COARSE_DUR[0] + COARSE_DUR[1] * dur
    first = True
    while True:
        t0s = t0 + np.linspace(-h_t0, h_t0, 2 * GRID_STEPS + 1)
        durs = dur + np.linspace(-h_dur, h_dur, 2 * GRID_STEPS + 1)
        if durs[0] <= 0.05:
            return None
        i, j, table = _grid(tw, xs, t0s, durs)
        last = len(t0s) - 1
        if first and (i in (0, last) or j in (0, last)):
            return None  # optimum outside the plausible range: not a minimum-jerk stroke
        first = False
        t0, dur, rss = float(t0s[i]), float(durs[j]), float(table[i, j])
        step_t0, step_dur = h_t0 / GRID_STEPS, h_dur / GRID_STEPS
        if step_t0 <= FINEST_STEP_S and step_dur <= FINEST_STEP_S:
            if 0 < i < last:
                t0 += step_t0 * _vertex(table[i - 1, j], table[i, j], table[i + 1, j])
            if 0 < j < last:
                dur += step_dur * _vertex(table[i, j - 1], table[i, j], table[i, j + 1])
            break
        h_t0, h_dur = max(h_t0 / 3, 2 * FINEST_STEP_S), max(h_dur / 3, 2 * FINEST_STEP_S)
    rms = float(np.sqrt(max(rss, 0.0) / n))
    if rms > max_rms_pct / 100.0 * dist:
        return None
    return t0, t0 + dur
