from __future__ import annotations

import itertools

import numpy as np
import pytest

from stream.core.signal import Conditioned, Conditioner, savgol_kernels

RATE = 100.0


def _signal(n: int = 600, seed: int = 3) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    t = (1_700_000_000 * 10**9 + np.arange(n) * 10**7).astype(np.int64)
    x = 100 + 200 * (1 - np.cos(np.arange(n) / 100.0)) + rng.normal(0, 0.5, n)
    rows = np.vstack([x, np.full(n, 300.0), np.full(n, 310.0), np.full(n, 50.0), np.zeros(n)])
    return t, rows


def _run(t: np.ndarray, rows: np.ndarray, cuts: list[int]) -> Conditioned:
    c = Conditioner(RATE, 0.15, 3, 25)
    parts = []
    bounds = [0, *cuts, t.shape[0]]
    for a, b in itertools.pairwise(bounds):
        parts += c.push(t[a:b], rows[:, a:b])
    parts += c.flush()
    return Conditioned.concat(parts)


def test_savgol_kernels_are_exact_on_a_cubic() -> None:
    k0, k1, k2 = savgol_kernels(15, 3)
    j = np.arange(-7, 8, dtype=float)
    y = 2 + 3 * j - 0.5 * j**2 + 0.1 * j**3
    assert k0 @ y == pytest.approx(2)
    assert k1 @ y == pytest.approx(3)
    assert k2 @ y == pytest.approx(-1)


@pytest.mark.parametrize("cut", [1, 7, 13, 50, 99, 333])
def test_output_does_not_depend_on_where_frames_are_cut(cut: int) -> None:
    t, rows = _signal()
    whole = _run(t, rows, [])
    split = _run(t, rows, [cut, cut + 50, cut + 61])
    assert np.array_equal(whole.t, split.t)
    assert np.allclose(whole.x, split.x, rtol=0, atol=1e-9)
    assert np.allclose(whole.v, split.v, rtol=0, atol=1e-12)
    assert len(whole) == t.shape[0]


def test_velocity_of_a_ramp() -> None:
    n = 300
    t = (10**18 + np.arange(n) * 10**7).astype(np.int64)
    x = 100 + 3.0 * np.arange(n)  # 3 mm per 10 ms = 0.3 m/s
    rows = np.vstack([x, np.zeros(n), np.zeros(n), np.zeros(n), np.zeros(n)])
    out = _run(t, rows, [50])
    inner = slice(20, n - 20)
    assert np.allclose(out.v[inner], 0.3)
    assert np.allclose(out.a[inner], 0.0, atol=1e-9)


def test_dropouts_are_marked_not_hidden() -> None:
    t, rows = _signal()
    rows[0, 200:205] = np.nan
    out = _run(t, rows, [202])
    assert out.missing.sum() == 5
    assert np.isfinite(out.x).all()  # bridged for the filter only


def test_long_gap_is_a_break() -> None:
    t, rows = _signal()
    rows[0, 200:260] = np.nan  # 0.6 s > 25 samples
    c = Conditioner(RATE, 0.15, 3, 25)
    parts = c.push(t, rows) + c.flush()
    assert parts[0].t[-1] == t[199]  # flushed (edge-padded) before the gap
    out = Conditioned.concat(parts)
    assert out.t.shape[0] == t.shape[0] - 60
    assert out.t[200] == t[260]
