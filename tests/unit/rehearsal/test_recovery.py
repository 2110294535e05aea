"""Recovery figures from the monitor's once-a-second database counts (pure)."""

from __future__ import annotations

from typing import Any

import pytest

from rehearsal.rehearse import count_at, recovery


def samples(rates: list[float]) -> list[dict[str, Any]]:
    """One sample a second from t=0, ``rates[i]`` reps stored during second i."""
    out, total = [], 0.0
    for t, rate in enumerate(rates):
        out.append({"t": float(t), "reps": int(total)})
        total += rate
    return out


def test_a_stall_and_its_recovery() -> None:
    # 20 reps/s for 30 s, nothing for 20 s after the fault at t=30, then 20 reps/s again
    s = samples([20.0] * 30 + [0.0] * 20 + [20.0] * 40)
    r = recovery(s, 30.0, 89.0)
    assert r["pre_rate"] == pytest.approx(20.0)
    assert r["stall_s"] == pytest.approx(21.0)
    assert 50.0 <= 30.0 + r["recovery_s"] <= 56.0  # the 5-s rate passes 10/s within 5 s
    assert r["rate_after"] == pytest.approx(20.0, rel=0.1)
    assert r["rate_during"] < 10.0


def test_no_dip_means_no_recovery_time() -> None:
    s = samples([20.0] * 90)
    r = recovery(s, 30.0, 89.0)
    assert r["recovery_s"] == 0.0
    assert r["stall_s"] <= 1.0


def test_error_samples_are_skipped() -> None:
    s = samples([10.0] * 10)
    s[5] = {"t": 5.0, "error": "OperationalError"}
    assert count_at(s, 5.5) == 40
