"""The core scored against the fleet simulator's exact ground truth (prints the scores).

A small multi-clinic fleet runs through the edge's real Framer (50-sample contract
frames) and the core; ``benchmarks/score_core.py`` runs the same on a bigger fleet.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

from edge.simulator import FleetConfig

_PATH = Path(__file__).resolve().parents[4] / "benchmarks" / "score_core.py"
_spec = importlib.util.spec_from_file_location("score_core", _PATH)
assert _spec is not None
assert _spec.loader is not None
score_core = importlib.util.module_from_spec(_spec)
sys.modules["score_core"] = score_core
_spec.loader.exec_module(score_core)


@pytest.fixture(scope="module")
def scores() -> dict:
    cfg = FleetConfig(clinics=2, machines_per_clinic=1, patients_per_machine=3, days=14, seed=7)
    out, truth, timing = score_core.run_fleet(cfg)
    s = score_core.score(out, truth)
    s["_report"] = score_core.report(s, timing)
    return s


def test_scores_against_simulator_ground_truth(
    scores: dict, capsys: pytest.CaptureFixture[str]
) -> None:
    with capsys.disabled():
        print("\n" + scores["_report"])
    assert scores["sets"] > 50
    assert scores["sets_exact_share"] >= 0.99
    assert scores["mcv_err_p95"] <= 0.02
    assert scores["rom_err_p95"] <= 5.0
    assert scores["asi_err_p95"] <= 2.0
    assert scores["adherence_rows"] > 0
    assert scores["adherence_exact"] == scores["adherence_rows"]
    assert scores["adherence_extra_rows"] == []
    assert scores["sessions_exact"] == scores["sessions"]


def test_restarts_from_json_state_change_nothing() -> None:
    """A worker restarted from its changelog state (every 37th frame here) emits exactly
    what an uninterrupted one does, on simulator data."""
    cfg = FleetConfig(clinics=1, machines_per_clinic=1, patients_per_machine=2, days=3, seed=11)
    plain, _, _ = score_core.run_fleet(cfg)
    restarted, _, _ = score_core.run_fleet(cfg, roundtrip_every=37)
    assert plain.keys() == restarted.keys()
    for k in plain:
        assert plain[k] == restarted[k], k
    assert len(plain["rep"]) > 50
