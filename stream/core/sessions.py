"""Session metrics: volume load, work, mean asymmetry, density and the load–velocity profile.

A session's sets arrive as set-field dicts (see :mod:`stream.core.sets`) plus the valid
reps' (load, MCV) pairs for the load–velocity fit MCV = a + b·load (least squares over
≥ 2 distinct loads); e1RM is the load where the line reaches the minimum velocity
threshold (MVT). Published profiles carry 7.5–30 % error: a trend, never a single truth.
"""

from __future__ import annotations

from typing import Any

from stream.core.sets import RepSummary


def load_velocity_fit(
    points: list[tuple[float, float]], mvt_ms: float
) -> tuple[float | None, float | None, float | None]:
    """(intercept a, slope b, e1RM) of MCV = a + b·load; None when under-determined."""
    loads = {round(load, 1) for load, _ in points}
    if len(loads) < 2:
        return None, None, None
    n = len(points)
    mx = sum(p[0] for p in points) / n
    my = sum(p[1] for p in points) / n
    sxx = sum((p[0] - mx) ** 2 for p in points)
    sxy = sum((p[0] - mx) * (p[1] - my) for p in points)
    if sxx <= 0:
        return None, None, None
    b = sxy / sxx
    a = my - b * mx
    e1rm = (mvt_ms - a) / b if b < 0 else None
    if e1rm is not None and e1rm <= 0:
        e1rm = None
    return a, b, e1rm


def session_fields(
    sets: list[dict[str, Any]],
    reps: list[RepSummary],
    start_ns: int,
    end_ns: int,
    mvt_ms: float,
) -> dict[str, Any]:
    """The metric fields of a Session record."""
    valid = [r for r in reps if r["valid"]]
    work = float(sum(r["work"] for r in reps))
    duration_s = max(0.0, (end_ns - start_ns) / 1e9)
    asis = [r["asi"] for r in valid if r["asi"] is not None]
    mcvs = [r["mcv"] for r in valid]
    vls = [s["velocity_loss_pct"] for s in sets if s["velocity_loss_pct"] is not None]
    a, b, e1rm = load_velocity_fit([(r["load_kg"], r["mcv"]) for r in valid], mvt_ms)
    return {
        "sets": len(sets),
        "reps": len(valid),
        "partial_reps": len(reps) - len(valid),
        "volume_load_kg": float(sum(r["load_kg"] for r in valid)),
        "work_j": work,
        "mean_asi_pct": sum(asis) / len(asis) if asis else None,
        "mean_mcv_ms": sum(mcvs) / len(mcvs) if mcvs else None,
        "max_velocity_loss_pct": max(vls) if vls else None,
        "duration_s": duration_s,
        "density_j_per_min": work / (duration_s / 60.0) if duration_s > 0 else 0.0,
        "max_load_kg": max((r["load_kg"] for r in reps), default=0.0),
        "lv_intercept_ms": a,
        "lv_slope_ms_per_kg": b,
        "e1rm_kg": e1rm,
        "set_loads_reps": [[float(s["load_kg"]), s["reps"]] for s in sets],
    }
