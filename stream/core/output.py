"""Builders of the stream.records dicts the machine processor emits."""

from __future__ import annotations

import math
from typing import Any

from stream.core.metrics import RepMetrics
from stream.records import RECORD_VERSION


def _f(value: float) -> float:
    """JSON-safe float (NaN/inf never leave the core)."""
    return float(value) if math.isfinite(value) else 0.0


def _fo(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)


def rep_record(
    ident: dict[str, Any], set_no: int, rep_no: int, valid: bool, m: RepMetrics, now_ns: int
) -> dict[str, Any]:
    return {
        "v": RECORD_VERSION,
        "kind": "rep",
        "clinic_id": ident["clinic_id"],
        "machine_id": ident["machine_id"],
        "patient_id": ident["patient_id"],
        "session_id": ident["session_id"],
        "set_no": set_no,
        "rep_no": rep_no,
        "valid": valid,
        "start_ns": m.start_ns,
        "top_ns": m.top_ns,
        "end_ns": m.end_ns,
        "load_kg": _f(m.load_kg),
        "rom_mm": _f(m.rom_mm),
        "concentric_s": _f(m.concentric_s),
        "eccentric_s": _f(m.eccentric_s),
        "tut_s": _f(m.tut_s),
        "mcv_ms": _f(m.mcv_ms),
        "mpv_ms": _f(m.mpv_ms),
        "pv_ms": _f(m.pv_ms),
        "time_to_pv_s": _f(m.time_to_pv_s),
        "pv_position_pct": _f(m.pv_position_pct),
        "mean_force_n": _f(m.mean_force_n),
        "peak_force_n": _f(m.peak_force_n),
        "mean_power_w": _f(m.mean_power_w),
        "peak_power_w": _f(m.peak_power_w),
        "work_j": _f(m.work_j),
        "asi_pct": _fo(m.asi_pct),
        "weaker_side": m.weaker_side,
        "sign_changes": m.sign_changes,
        "jerk_score": _f(m.jerk_score),
        "dropout_samples": m.dropout_samples,
        "replayed": m.replayed,
        "emitted_at_ns": now_ns,
    }


def set_record(
    ident: dict[str, Any], set_no: int, fields: dict[str, Any], now_ns: int
) -> dict[str, Any]:
    rec: dict[str, Any] = {
        "v": RECORD_VERSION,
        "kind": "set",
        "clinic_id": ident["clinic_id"],
        "machine_id": ident["machine_id"],
        "patient_id": ident["patient_id"],
        "session_id": ident["session_id"],
        "set_no": set_no,
    }
    for k, v in fields.items():
        rec[k] = _fo(v) if isinstance(v, float) else v
    rec["emitted_at_ns"] = now_ns
    return rec


def session_record(
    ident: dict[str, Any],
    start_ns: int,
    end_ns: int,
    end_reason: str,
    fields: dict[str, Any],
    now_ns: int,
) -> dict[str, Any]:
    rec: dict[str, Any] = {
        "v": RECORD_VERSION,
        "kind": "session",
        "session_id": ident["session_id"],
        "clinic_id": ident["clinic_id"],
        "machine_id": ident["machine_id"],
        "patient_id": ident["patient_id"],
        "prescription_id": ident.get("prescription_id"),
        "start_ns": start_ns,
        "end_ns": end_ns,
        "end_reason": end_reason,
    }
    order = (
        "sets",
        "reps",
        "partial_reps",
        "volume_load_kg",
        "work_j",
        "mean_asi_pct",
        "mean_mcv_ms",
        "max_velocity_loss_pct",
        "duration_s",
        "density_j_per_min",
        "max_load_kg",
    )
    for k in order:
        v = fields[k]
        rec[k] = _fo(v) if isinstance(v, float) else v
    rec["seat_position"] = ident.get("seat_position")
    rec["footplate_position"] = ident.get("footplate_position")
    rec["completed_as_prescribed"] = ident.get("completed_as_prescribed")
    for k in ("lv_intercept_ms", "lv_slope_ms_per_kg", "e1rm_kg"):
        rec[k] = _fo(fields[k])
    rec["emitted_at_ns"] = now_ns
    rec["set_loads_reps"] = fields["set_loads_reps"]
    return rec
