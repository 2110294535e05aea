from __future__ import annotations

import pytest

from stream.core.sessions import load_velocity_fit, session_fields
from stream.core.sets import set_fields, starts_new_set, velocity_loss_pct


def _rep(mcv: float, load: float = 50.0, valid: bool = True, asi: float | None = 5.0) -> dict:
    return {
        "valid": valid,
        "start_ns": 0,
        "end_ns": 10**9,
        "load_kg": load,
        "mcv": mcv,
        "mean_power": 100.0,
        "peak_power": 200.0,
        "work": 150.0,
        "tut": 3.0,
        "asi": asi,
    }


def test_velocity_loss() -> None:
    assert velocity_loss_pct([0.5, 0.45, 0.4]) == pytest.approx(20.0)
    assert velocity_loss_pct([0.45, 0.5, 0.3]) == pytest.approx(40.0)  # best, not first
    assert velocity_loss_pct([0.5]) is None


def test_set_fields() -> None:
    f = set_fields([_rep(0.5), _rep(0.2, valid=False, asi=None), _rep(0.4)])
    assert (f["reps"], f["partial_reps"]) == (2, 1)
    assert f["velocity_loss_pct"] == pytest.approx(20.0)
    assert f["work_j"] == pytest.approx(450.0)  # partial reps' work and TUT count
    assert f["tut_s"] == pytest.approx(9.0)
    assert f["mean_asi_pct"] == pytest.approx(5.0)


def test_gap_rule() -> None:
    assert not starts_new_set(None, 10**9, 60.0)
    assert not starts_new_set(0, 59 * 10**9, 60.0)
    assert starts_new_set(0, 60 * 10**9, 60.0)


def test_load_velocity_profile_and_e1rm() -> None:
    pts = [(40.0, 0.9), (60.0, 0.7), (80.0, 0.5)]
    a, b, e1rm = load_velocity_fit(pts, mvt_ms=0.3)
    assert a == pytest.approx(1.3)
    assert b == pytest.approx(-0.01)
    assert e1rm == pytest.approx(100.0)
    assert load_velocity_fit([(40.0, 0.9), (40.0, 0.8)], 0.3) == (None, None, None)


def test_session_fields() -> None:
    reps = [_rep(0.6, 40.0), _rep(0.5, 60.0), _rep(0.3, 60.0, valid=False)]
    f = session_fields([set_fields(reps)], reps, 0, 600 * 10**9, 0.3)
    assert f["volume_load_kg"] == pytest.approx(100.0)
    assert f["max_load_kg"] == 60.0
    assert f["density_j_per_min"] == pytest.approx(450.0 / 10)
    assert f["e1rm_kg"] is not None
