"""Sets: consecutive reps with less than ``set_gap`` between them, and their metrics.

A set is a list of rep summaries (plain dicts, JSON-ready). Its record follows DOMAIN.md:
valid and partial rep counts, mean/peak power, total work, time under tension, velocity
loss VL % = (MCV_best − MCV_last)/MCV_best × 100 over the valid reps (Sánchez-Medina &
González-Badillo 2011; best is usually the first rep).
"""

from __future__ import annotations

import math
from typing import Any

from stream.core.metrics import RepMetrics

RepSummary = dict[str, Any]


def summarise(m: RepMetrics, valid: bool) -> RepSummary:
    """The numbers of a rep that sets and sessions aggregate."""
    return {
        "valid": valid,
        "start_ns": m.start_ns,
        "end_ns": m.end_ns,
        "load_kg": _finite(m.load_kg),
        "mcv": _finite(m.mcv_ms),
        "mean_power": _finite(m.mean_power_w),
        "peak_power": _finite(m.peak_power_w),
        "work": _finite(m.work_j),
        "tut": _finite(m.tut_s),
        "asi": None if m.asi_pct is None or not math.isfinite(m.asi_pct) else m.asi_pct,
    }


def _finite(value: float) -> float:
    """State and records stay JSON: a metric without data (all samples missing) is 0."""
    return float(value) if math.isfinite(value) else 0.0


def velocity_loss_pct(mcvs: list[float]) -> float | None:
    if len(mcvs) < 2:
        return None
    best = max(mcvs)
    return (best - mcvs[-1]) / best * 100.0 if best > 0 else None


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def set_fields(reps: list[RepSummary]) -> dict[str, Any]:
    """The metric fields of a Set record from its reps (partial reps included in work/TUT)."""
    valid = [r for r in reps if r["valid"]]
    mcvs = [r["mcv"] for r in valid]
    loads = [r["load_kg"] for r in reps[:1]]  # the load the set was started at
    asis = [r["asi"] for r in valid if r["asi"] is not None]
    return {
        "start_ns": reps[0]["start_ns"],
        "end_ns": reps[-1]["end_ns"],
        "load_kg": sum(loads) / len(loads) if loads else 0.0,
        "reps": len(valid),
        "partial_reps": len(reps) - len(valid),
        "best_mcv_ms": max(mcvs) if mcvs else None,
        "last_mcv_ms": mcvs[-1] if mcvs else None,
        "mean_mcv_ms": _mean(mcvs),
        "velocity_loss_pct": velocity_loss_pct(mcvs),
        "mean_power_w": _mean([r["mean_power"] for r in valid]),
        "peak_power_w": max((r["peak_power"] for r in valid), default=None),
        "work_j": float(sum(r["work"] for r in reps)),
        "tut_s": float(sum(r["tut"] for r in reps)),
        "mean_asi_pct": _mean(asis),
    }


def starts_new_set(last_end_ns: int | None, start_ns: int, gap_s: float) -> bool:
    """True when a rep starting at ``start_ns`` begins a new set (≥ gap since the last rep)."""
    return last_end_ns is not None and start_ns - last_end_ns >= gap_s * 1e9
