"""Concentric turnarounds refined by a minimum-jerk fit of the whole stroke.

At a turnaround the sled moves as (t − t₀)³ (velocity and acceleration both zero): the
first and last ~30 ms of a stroke move it less than the sensor noise, and tremor ripples
the velocity flanks, so any threshold on v misplaces the turnarounds by 10–80 ms — on a
0.4 s stroke that is a 5–20 % MCV error. Fitting the minimum-jerk trajectory
x(t) = x₀ + Δ·(10τ³ − 15τ⁴ + 6τ⁵), τ = (t − t₀)/T clipped to [0, 1] (Flash & Hogan 1985,
the standard model of a smooth voluntary point-to-point movement) to *all* the stroke's
position samples averages noise and tremor out. x₀ and Δ are linear given (t₀, T), so
a coarse grid over (t₀, T) only finds the basin, and Levenberg–Marquardt on all four
parameters polishes it. A stroke that is not one smooth
movement (a hesitation mid-way) fits badly — RMS residual above ``max_rms_pct`` of the
ROM — and keeps its threshold turnarounds.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

F64 = npt.NDArray[np.float64]
COARSE_T0 = (0.03, 0.12)
"""Coarse search half-range of the onset: a + b × (threshold duration), s."""
COARSE_DUR = (0.05, 0.25)
"""Coarse search half-range of the duration: a + b × (threshold duration), s."""
GRID_STEPS = 4
"""Coarse grid points each side of the threshold estimate; Levenberg–Marquardt polishes."""
LM_ITERATIONS = 8
LM_TOLERANCE_S = 2e-4
"""Stop when t₀ and T move less than this (0.2 ms, far below the sample period)."""


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


def _gauss_newton(ts: F64, x: F64, t0: float, dur: float) -> tuple[float, float, float] | None:
    """Levenberg–Marquardt on (x₀, Δ, t₀, T) from a grid start; (t₀, T, rss) or None."""
    s = _min_jerk((ts - t0) / dur)
    a = np.vstack([np.ones_like(s), s]).T
    (x0, delta), *_ = np.linalg.lstsq(a, x, rcond=None)
    params = np.array([x0, delta, t0, dur])
    lam = 1e-3
    rss = float(((x - x0 - delta * s) ** 2).sum())
    for _ in range(LM_ITERATIONS):
        x0, delta, t0, dur = params
        tau = np.clip((ts - t0) / dur, 0.0, 1.0)
        s = tau**3 * (10.0 - 15.0 * tau + 6.0 * tau * tau)
        ds = 30.0 * tau * tau * (1.0 - tau) ** 2  # ds/dτ, zero outside the move
        r = x - (x0 + delta * s)
        jac = np.vstack([np.ones_like(s), s, -delta * ds / dur, -delta * ds * tau / dur]).T
        jtj = jac.T @ jac
        step = np.linalg.solve(jtj + lam * np.diag(np.diag(jtj) + 1e-12), jac.T @ r)
        trial = params + step
        if trial[3] <= 0.05:
            lam *= 10
            continue
        tt = np.clip((ts - trial[2]) / trial[3], 0.0, 1.0)
        new_rss = float(((x - trial[0] - trial[1] * _min_jerk(tt)) ** 2).sum())
        if new_rss < rss:
            params, rss, lam = trial, new_rss, lam * 0.3
            if abs(step[2]) < LM_TOLERANCE_S and abs(step[3]) < LM_TOLERANCE_S:
                break
        else:
            lam *= 10
    return float(params[2]), float(params[3]), rss


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
    t0s = t0 + np.linspace(-h_t0, h_t0, 2 * GRID_STEPS + 1)
    durs = dur + np.linspace(-h_dur, h_dur, 2 * GRID_STEPS + 1)
    if durs[0] <= 0.05:
        return None
    i, j, _ = _grid(tw, xs, t0s, durs)
    last = 2 * GRID_STEPS
    if i in (0, last) or j in (0, last):
        return None  # optimum outside the plausible range: not a minimum-jerk stroke
    fit = _gauss_newton(tw, xs, float(t0s[i]), float(durs[j]))
    if fit is None:
        return None
    t0, dur, rss = fit
    rms = float(np.sqrt(max(rss, 0.0) / n))
    if rms > max_rms_pct / 100.0 * dist:
        return None
    return t0, t0 + dur
