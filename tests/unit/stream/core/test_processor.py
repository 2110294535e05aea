from __future__ import annotations

import pytest

from tests.unit.stream.core.helpers import kind, run
from tests.unit.stream.core.synth import T0, Signal, check_in, check_out, frames


def _session(sig: Signal, **kw: object) -> list[tuple[str, dict]]:
    items: list[tuple[str, dict]] = [("event", check_in(T0 - 10**9))]
    items += [("frame", f) for f in frames(sig, **kw)]  # type: ignore[arg-type]
    items.append(("event", check_out(T0 + round(sig.t_s * 1e9))))
    return items


def test_known_stroke_metrics() -> None:
    sig = Signal().rest(2)
    for _ in range(5):
        sig.rep(rom=400, up_s=1.5, down_s=2.0, fl=280, fr=320)
    out = run(_session(sig))
    reps = kind(out, "rep")
    assert len(reps) == 5
    for r, truth in zip(reps, sig.truth, strict=True):
        assert r["valid"]
        assert r["patient_id"] == "p1"
        assert r["rom_mm"] == pytest.approx(400, abs=1)
        assert r["mcv_ms"] == pytest.approx(truth.mcv_ms, abs=0.005)
        assert r["pv_ms"] == pytest.approx(truth.pv_ms, abs=0.005)
        assert r["concentric_s"] == pytest.approx(1.5, abs=0.03)
        assert r["eccentric_s"] == pytest.approx(2.0, abs=0.03)
        assert r["pv_position_pct"] == pytest.approx(50, abs=2)
        assert r["asi_pct"] == pytest.approx(12.5, abs=0.01)
        assert r["weaker_side"] == "left"
        assert r["start_ns"] == pytest.approx(T0 + truth.start_s * 1e9, abs=0.03e9)
        assert r["top_ns"] == pytest.approx(T0 + truth.top_s * 1e9, abs=0.03e9)
    (s,) = kind(out, "set")
    assert s["reps"] == 5
    (sess,) = kind(out, "session")
    assert sess["end_reason"] == "checkout"
    assert sess["reps"] == 5
    assert sess["volume_load_kg"] == pytest.approx(250)
