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

import math

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


_OFFSETS = np.linspace(-1.0, 1.0, 2 * GRID_STEPS + 1)
"""Coarse grid offsets in units of the half-range."""
_STEP_MIN_DUR = 0.05
"""A trial duration at or below this (s) is rejected (the move is not a stroke)."""

# Hot path: strokes are 50–300 samples, where numpy's per-call overhead (~1 µs) costs more
# than the arithmetic, so the code below works in preallocated buffers with in-place
# ufuncs and solves its 2×2 and 4×4 systems in closed form (np.linalg would cost ~30 µs a
# call). Same algorithm and results as the straightforward version to rounding noise.


def _clip_min_jerk(tau: F64) -> F64:
    """Clip τ to [0, 1] in place; return s = 10τ³ − 15τ⁴ + 6τ⁵ (a new array, any shape)."""
    np.maximum(tau, 0.0, out=tau)
    np.minimum(tau, 1.0, out=tau)
    s = tau * 6.0
    s -= 15.0
    s *= tau
    s += 10.0
    s *= tau
    s *= tau
    s *= tau
    return s


def _profile(ts: F64, t0: float, dur: float) -> tuple[F64, F64, F64]:
    """(τ clipped to [0, 1], s = min-jerk(τ), τ²) at onset ``t0`` and duration ``dur``."""
    tau = ts - t0
    tau /= dur
    s = _clip_min_jerk(tau)
    return tau, s, tau * tau


def _grid(ts: F64, x: F64, t0s: F64, durs: F64) -> tuple[int, int, F64]:
    """Residual sum of squares over the (t0, T) grid, x0 and Δ solved by least squares;
    returns the best (i, j) and the whole rss table."""
    n = ts.shape[0]
    tau = np.subtract.outer(t0s, ts)  # (t0, k): t0 − t
    tau = tau[:, None, :] / (-durs)[None, :, None]  # (t0, T, k): τ unclipped
    s = _clip_min_jerk(tau)
    xc = x - x.mean()
    sum_s = s.sum(axis=-1)
    var = np.einsum("ijk,ijk->ij", s, s)
    var -= sum_s * sum_s / n  # Σ(s − s̄)²
    cov = s @ xc  # Σ(s − s̄)(x − x̄) = Σ s·(x − x̄)
    delta = np.divide(cov, var, out=np.zeros_like(cov), where=var > 0)
    rss = float(xc @ xc) - delta * cov  # residual sum of squares of the linear fit
    i, j = divmod(int(np.argmin(rss)), rss.shape[1])
    return i, j, rss


def _line_fit(s: F64, x: F64) -> tuple[float, float]:
    """Least-squares (x₀, Δ) of x ≈ x₀ + Δ·s (minimum-norm when s is constant)."""
    n = s.shape[0]
    ms = float(s.sum()) / n
    mx = float(x.sum()) / n
    sc = s - ms
    var = float(sc @ sc)
    if var > 0:
        delta = float(sc @ x) / var
        return mx - delta * ms, delta
    return mx / (1.0 + ms * ms), ms * mx / (1.0 + ms * ms)


def _solve_spd4(a: list[list[float]], g: list[float]) -> tuple[float, float, float, float] | None:
    """Solve a·z = g for a symmetric positive definite 4×4 ``a`` (Cholesky, unrolled);
    None if ``a`` is not numerically positive definite."""
    a00, a01, a02, a03 = a[0]
    a11, a12, a13 = a[1][1:]
    a22, a23 = a[2][2:]
    a33 = a[3][3]
    if a00 <= 0:
        return None
    l00 = math.sqrt(a00)
    l10, l20, l30 = a01 / l00, a02 / l00, a03 / l00
    d = a11 - l10 * l10
    if d <= 0:
        return None
    l11 = math.sqrt(d)
    l21 = (a12 - l20 * l10) / l11
    l31 = (a13 - l30 * l10) / l11
    d = a22 - l20 * l20 - l21 * l21
    if d <= 0:
        return None
    l22 = math.sqrt(d)
    l32 = (a23 - l30 * l20 - l31 * l21) / l22
    d = a33 - l30 * l30 - l31 * l31 - l32 * l32
    if d <= 0:
        return None
    l33 = math.sqrt(d)
    y0 = g[0] / l00
    y1 = (g[1] - l10 * y0) / l11
    y2 = (g[2] - l20 * y0 - l21 * y1) / l22
    y3 = (g[3] - l30 * y0 - l31 * y1 - l32 * y2) / l33
    z3 = y3 / l33
    z2 = (y2 - l32 * z3) / l22
    z1 = (y1 - l21 * z2 - l31 * z3) / l11
    z0 = (y0 - l10 * z1 - l20 * z2 - l30 * z3) / l00
    return z0, z1, z2, z3


def _lm_step(jtj: F64, g: F64, lam: float) -> tuple[float, float, float, float]:
    """Levenberg–Marquardt step: (JᵀJ + λ·diag(diag(JᵀJ) + 1e-12))·step = Jᵀr."""
    a = jtj.tolist()
    for k in range(4):
        a[k][k] += lam * (a[k][k] + 1e-12)
    gl = g.tolist()
    step = _solve_spd4(a, gl)
    if step is None:  # not numerically positive definite: LAPACK's pivoted LU
        s = np.linalg.solve(np.array(a), g)
        return float(s[0]), float(s[1]), float(s[2]), float(s[3])
    return step


def _gauss_newton(ts: F64, x: F64, t0: float, dur: float) -> tuple[float, float, float] | None:
    """Levenberg–Marquardt on (x₀, Δ, t₀, T) from a grid start; (t₀, T, rss) or None."""
    tau, s, t2 = _profile(ts, t0, dur)
    x0, delta = _line_fit(s, x)
    r = x - delta * s
    r -= x0
    rss = float(r @ r)
    lam = 1e-3
    jac = np.empty((4, ts.shape[0]))  # rows: ∂model/∂(x₀, Δ, t₀, T)
    jac[0] = 1.0
    for _ in range(LM_ITERATIONS):
        # ∂s/∂τ = 30τ²(1 − τ)², zero outside the move; ∂τ/∂t₀ = −1/T, ∂τ/∂T = −τ/T
        jac[1] = s
        u = np.subtract(tau, t2, out=t2)  # τ(1 − τ); t2 is recomputed on acceptance
        np.multiply(u, u, out=jac[2])
        jac[2] *= -30.0 * delta / dur
        np.multiply(jac[2], tau, out=jac[3])
        step = _lm_step(jac @ jac.T, jac @ r, lam)
        trial = (x0 + step[0], delta + step[1], t0 + step[2], dur + step[3])
        if trial[3] <= _STEP_MIN_DUR:
            lam *= 10
            t2 = tau * tau
            continue
        ttau, ts_, tt2 = _profile(ts, trial[2], trial[3])
        tr = x - trial[1] * ts_
        tr -= trial[0]
        new_rss = float(tr @ tr)
        if new_rss < rss:
            x0, delta, t0, dur = trial
            tau, s, t2, r, rss = ttau, ts_, tt2, tr, new_rss
            lam *= 0.3
            if abs(step[2]) < LM_TOLERANCE_S and abs(step[3]) < LM_TOLERANCE_S:
                break
        else:
            lam *= 10
            t2 = tau * tau
    return t0, dur, rss


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
    t0s = t0 + h_t0 * _OFFSETS
    durs = dur + h_dur * _OFFSETS
    if durs[0] <= _STEP_MIN_DUR:
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
