"""The core's hand-rolled hot-path helpers give what the numpy routines they replace give."""

from __future__ import annotations

import math

import numpy as np
import pytest

from stream.core import metrics, turnarounds


def _pause_mask_reference(v: np.ndarray, band: float, min_samples: int) -> np.ndarray:
    slow = np.abs(v) < band
    edges = np.diff(np.concatenate(([0], slow.astype(np.int8), [0])))
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    mask = np.zeros(v.shape[0], dtype=bool)
    for s, e in zip(starts, ends, strict=True):
        if e - s > min_samples:
            mask[s:e] = True
    return mask


@pytest.mark.parametrize("seed", range(20))
def test_percentile_median_mean_max_match_numpy_exactly(seed: int) -> None:
    rng = np.random.default_rng(seed)
    a = rng.normal(300, 80, size=int(rng.integers(1, 400)))
    if seed % 3 == 0:
        a = np.round(a)  # ties
    assert metrics._percentile(a, 90) == float(np.percentile(a, 90))
    assert metrics._percentile(a, 50) == float(np.percentile(a, 50))
    assert metrics._median(a) == float(np.median(a))
    assert metrics._mean(a) == float(a.mean())
    assert metrics._max(a) == float(a.max())
    b = a.copy()
    b[rng.integers(0, b.size, size=1 + b.size // 10)] = np.nan
    assert math.isnan(metrics._median(b))
    kept = b[~np.isnan(b)]
    if kept.size:
        assert metrics._mean(b) == float(kept.mean())
        assert metrics._max(b) == float(kept.max())
    else:
        assert math.isnan(metrics._mean(b))
        assert math.isnan(metrics._max(b))


@pytest.mark.parametrize("seed", range(20))
def test_pause_mask_and_active_time_match_reference(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(2, 300))
    v = rng.normal(0, 0.05, size=n) * rng.choice([1.0, 0.01], size=n, p=[0.6, 0.4])
    got = metrics.pause_mask(v, 0.01, 3)
    assert np.array_equal(got, _pause_mask_reference(v, 0.01, 3))
    ts = np.arange(n) / 100.0
    a, b = float(rng.uniform(-0.05, ts[-1])), float(rng.uniform(0, ts[-1] + 0.05))
    paused = metrics._pauses(v, 0.01, 3)
    lo, hi = np.clip(ts[:-1], a, b), np.clip(ts[1:], a, b)
    want = 0.0 if b <= a else max(0.0, (b - a) - float(((hi - lo) * got[:-1]).sum()))
    assert metrics._active_between(ts, paused, a, b) == want


def test_jerk_score_matches_np_gradient() -> None:
    rng = np.random.default_rng(3)
    acc = rng.normal(0, 2, size=150)
    t = (np.arange(150) * 1e7).astype(np.int64)
    jerk = np.gradient(acc, 0.01)
    want = math.sqrt(0.5 * float((jerk**2).sum()) * 0.01 * 1.49**5 / 0.4**2)
    assert metrics._jerk_score(acc, t, 400.0, 100.0) == pytest.approx(want, rel=1e-14)


def test_spd4_solve_matches_lapack() -> None:
    rng = np.random.default_rng(5)
    for _ in range(50):
        j = rng.normal(size=(120, 4)) * rng.uniform(0.01, 500, size=4)
        a = j.T @ j + 1e-3 * np.diag(np.diag(j.T @ j))
        g = rng.normal(size=4)
        got = turnarounds._solve_spd4(a.tolist(), g.tolist())
        assert got is not None
        np.testing.assert_allclose(got, np.linalg.solve(a, g), rtol=1e-9)
    assert (
        turnarounds._solve_spd4(
            [[1.0, 2, 0, 0], [2, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]], [1.0] * 4
        )
        is None
    )


@pytest.mark.parametrize(("t0", "dur"), [(0.31, 0.42), (0.5, 1.3), (0.207, 2.05)])
def test_refine_stroke_recovers_a_noisy_minimum_jerk_stroke(t0: float, dur: float) -> None:
    rng = np.random.default_rng(7)
    ts = np.arange(0.0, t0 + dur + 0.3, 0.01)
    tau = np.clip((ts - t0) / dur, 0, 1)
    x = 100 + 400 * tau**3 * (10 - 15 * tau + 6 * tau**2) + rng.normal(0, 0.3, ts.size)
    # threshold turnarounds ~40 ms inside the true ones, as a velocity threshold gives
    lo, hi = int((t0 - 0.1) / 0.01), int((t0 + dur + 0.1) / 0.01)
    fit = turnarounds.refine_stroke(ts, x, lo, hi, t0 + 0.04, t0 + dur - 0.04, 2.0)
    assert fit is not None
    assert fit[0] == pytest.approx(t0, abs=0.005)
    assert fit[1] == pytest.approx(t0 + dur, abs=0.005)
    # a stroke with a hesitation half-way is not one smooth movement: no fit
    x2 = np.where(ts < t0 + dur / 2, x, np.maximum(x[int((t0 + dur / 2) / 0.01)], x - 150))
    assert turnarounds.refine_stroke(ts, x2, lo, hi, t0, t0 + dur, 2.0) is None
