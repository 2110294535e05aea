"""Ground truth of a simulated fleet: reps, sets, sessions, weekly adherence.

Everything is computed from the *planned, noise-free* timeline at the true boundaries
(before tremor, sensor noise, rounding, dropouts and channel faults are applied).
Times are **true** epoch ns: the device time of the sample-grid index (``t0 + index /
rate``, what the samples carry) minus the device clock's offset and drift
(``edge.simulator.disorder.DeviceClock``); with an exact clock the two are equal.
Days and ISO weeks are the clinic's **local** calendar (its IANA zone,
``FleetConfig.time_zones``): a week starts on Monday 00:00 local.

**Rep** (one per concentric stroke, partial ones included; natural key
``(machine_id, session_id, set_no, rep_no)``):

- ``start_ns``: movement onset at the bottom turnaround: the first sample of the
  concentric minimum-jerk move (velocity 0, rising). ``top_ns``: the top turnaround, the
  first sample after the concentric move (velocity back to 0; a top pause, if any,
  starts here). ``end_ns``: the instant the eccentric move reaches the bottom (velocity
  0); the bottom pause before the next onset is *not* part of the rep.
- ``rom_mm``: top − bottom position of the stroke (bottom is the calibrated zero).
- ``concentric_s`` = (top_ns − start_ns); ``eccentric_s``: duration of the downward
  move only (top pause and bottom pause excluded, DOMAIN.md); ``tut_s`` = sum of both.
  All pauses are either absent or ≥ 0.4 s (the pause rule is |v| < 0.01 m/s > 260 ms).
  Note: a minimum-jerk stroke spends a few % of its duration near each end with
  |v| < 0.05 m/s; those samples *are* part of the phase.
- ``valid``: rom_mm ≥ max(150, 0.5 × calibrated ROM), the calibrated ROM being the
  ``usable_rom_mm`` of the session's ``calibrated`` event.
- ``mcv_ms`` = ROM / concentric_s; ``pv_ms`` = 1.875 × MCV (analytic peak of the
  minimum-jerk profile at half the duration); ``mpv_ms`` mean v up to the last sample with
  a ≥ −g·sin θ; forces, power, work over the concentric samples of the noise-free forces.
- ``asi_pct`` = (F̄_R − F̄_L) / max(F̄_R, F̄_L) × 100 on mean concentric force (positive:
  left weaker), ``weaker_side`` accordingly. ``dropout_samples``: samples of the rep
  (start..end) reported as ``None``. ``fault``: a load cell of that set was flat/saturated.

**Set** (sets are separated by ≥ 95 s without a rep; within a set reps are < 7 s apart):
``set_no`` 1-based in the session (a warm-up set counts); ``start_ns``/``end_ns`` of its
first/last rep; ``reps`` valid, ``partial_reps``; ``best_mcv_ms`` = max MCV of the valid
reps, ``last_mcv_ms`` MCV of the last valid rep, ``velocity_loss_pct`` = (best − last) /
best × 100 (None with < 2 valid reps); ``load_kg`` of the set; ``mean_asi_pct`` over valid
reps; ``work_j``, ``tut_s`` sums over all its reps.

**Session**: ``start_ns``/``end_ns`` = ``session_started``/``session_ended`` event times;
``sets`` = sets with ≥ 1 rep; ``reps``/``partial_reps`` totals; ``volume_load_kg`` = Σ load ×
valid reps; ``mean_mcv_ms`` / ``mean_asi_pct`` over valid reps; ``max_velocity_loss_pct``
the worst set; ``max_load_kg``; ``completed_as_prescribed``: at least the prescribed number
of sets each with ≥ the prescribed valid reps at ≥ the prescribed load (warm-up and lighter
sets do not count; velocity loss is not part of it).

**Session** also carries ``time_zone``, ``date`` (local date of the check-in, true time),
``iso_week`` and ``week_start`` (its local Monday) and ``device_start_ns`` (the check-in
as the device stamped it).

**Adherence** per patient and clinic-local ISO week overlapping the prescription:
``prescribed`` = sessions_per_week (also for a partly covered first/last week);
``attended`` = sessions started that week with ≥ 1 valid rep; ``completed`` = those
completed as prescribed;
adherence = attended / prescribed, compliance = completed / prescribed, relative
compliance = completed / attended (None when the denominator is 0); rolling4 = sums over
this and the 3 previous ISO weeks (MoXFo, DOMAIN.md).
"""

from __future__ import annotations

import datetime as dt
import json
from collections import defaultdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edge.simulator.schedule import local_date

if TYPE_CHECKING:
    from edge.simulator.fleet import Fleet
    from edge.simulator.session import SessionScript

TRUTH_FILES = ("reps", "sets", "sessions", "adherence", "prescriptions", "machines")


def _mean(xs: list[float]) -> float | None:
    return sum(xs) / len(xs) if xs else None


def session_truth(
    script: SessionScript, to_ns: Any, rate_hz: float, device_ns: Any = None
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], dict[str, Any]]:
    """Truth of one session; ``to_ns`` maps a grid index to true time, ``device_ns`` to
    device time (default: the same)."""
    info = script.info
    tz = info.get("time_zone", "UTC")
    base = {
        "clinic_id": info["clinic_id"],
        "machine_id": info["machine_id"],
        "patient_id": info["patient_id"],
        "session_id": script.session_id,
    }
    dropped = _dropout_indices(script)
    reps: list[dict[str, Any]] = []
    for r in script.reps:
        rec = {"kind": "rep", **base, **{k: v for k, v in r.items() if not k.endswith("_index")}}
        rec["start_ns"] = to_ns(r["start_index"])
        rec["top_ns"] = to_ns(r["top_index"])
        rec["end_ns"] = to_ns(r["end_index"])
        rec["dropout_samples"] = sum(
            1 for i in range(r["start_index"], r["end_index"] + 1) if i in dropped
        )
        reps.append(rec)
    by_set: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for rec in reps:
        by_set[rec["set_no"]].append(rec)
    sets = [_set_truth(base, no, rs) for no, rs in sorted(by_set.items())]
    rx = info["prescription"]
    done = sum(1 for s in sets if s["reps"] >= rx["reps"] and s["load_kg"] >= rx["load_kg"] - 1e-9)
    valid = [r for r in reps if r["valid"]]
    vls = [s["velocity_loss_pct"] for s in sets if s["velocity_loss_pct"] is not None]
    start_ns, end_ns = to_ns(info["checkin_index"]), to_ns(info["checkout_index"])
    day = local_date(start_ns, tz)
    iso = day.isocalendar()
    monday = day - dt.timedelta(days=day.weekday())
    session = {
        "kind": "session",
        **base,
        "prescription_id": rx["prescription_id"],
        "start_ns": start_ns,
        "end_ns": end_ns,
        "time_zone": tz,
        "date": day.isoformat(),
        "iso_week": f"{iso[0]}-W{iso[1]:02d}",
        "week_start": monday.isoformat(),
        "device_start_ns": (device_ns or to_ns)(info["checkin_index"]),
        "end_reason": "checkout",
        "sets": len(sets),
        "reps": len(valid),
        "partial_reps": len(reps) - len(valid),
        "volume_load_kg": sum(r["load_kg"] for r in valid),
        "work_j": sum(r["work_j"] for r in reps),
        "mean_asi_pct": _mean([r["asi_pct"] for r in valid]),
        "mean_mcv_ms": _mean([r["mcv_ms"] for r in valid]),
        "max_velocity_loss_pct": max(vls) if vls else None,
        "duration_s": (end_ns - start_ns) / 1e9,
        "max_load_kg": max((r["load_kg"] for r in reps), default=0.0),
        "seat_position": info["prescription"]["seat_position"],
        "footplate_position": info["prescription"]["footplate_position"],
        "completed_as_prescribed": done >= rx["sets"],
        "calibrated_rom_mm": info["calibrated_rom_mm"],
        "min_rom_mm": info["min_rom_mm"],
        "bad_day": info["bad_day"],
        "fault_set": info["fault_set"],
    }
    return reps, sets, session


def _dropout_indices(script: SessionScript) -> set[int]:
    out: set[int] = set()
    for blk in script.blocks:
        for off, length in blk.dropouts:
            out.update(range(blk.start + off, min(blk.start + off + length, blk.start + blk.n)))
    return out


def _set_truth(base: dict[str, Any], set_no: int, rs: list[dict[str, Any]]) -> dict[str, Any]:
    valid = [r for r in rs if r["valid"]]
    mcvs = [r["mcv_ms"] for r in valid]
    best = max(mcvs) if mcvs else None
    last = mcvs[-1] if mcvs else None
    vl = (best - last) / best * 100.0 if best and last is not None and len(mcvs) >= 2 else None
    return {
        "kind": "set",
        **base,
        "set_no": set_no,
        "start_ns": rs[0]["start_ns"],
        "end_ns": rs[-1]["end_ns"],
        "load_kg": rs[0]["load_kg"],
        "reps": len(valid),
        "partial_reps": len(rs) - len(valid),
        "best_mcv_ms": best,
        "last_mcv_ms": last,
        "mean_mcv_ms": _mean(mcvs),
        "velocity_loss_pct": vl,
        "mean_asi_pct": _mean([r["asi_pct"] for r in valid]),
        "work_j": sum(r["work_j"] for r in rs),
        "tut_s": sum(r["tut_s"] for r in rs),
        "warmup": rs[0]["warmup"],
        "fault": rs[0]["fault"],
    }


def weekly_adherence(
    prescription: dict[str, Any],
    sessions: list[dict[str, Any]],
    last_date: dt.date,
    time_zone: str = "UTC",
) -> list[dict[str, Any]]:
    """Rows per clinic-local ISO week; ``sessions[i]["date"]`` is the local check-in date,
    ``last_date`` the last local date simulated."""
    start = dt.date.fromisoformat(prescription["start_date"])
    end = dt.date.fromisoformat(prescription["end_date"]) if prescription["end_date"] else last_date
    end = min(end, last_date)
    spw = prescription["sessions_per_week"]
    monday = start - dt.timedelta(days=start.weekday())
    rows: list[dict[str, Any]] = []
    while monday <= end:
        sunday = monday + dt.timedelta(days=6)
        week = [
            s
            for s in sessions
            if monday <= dt.date.fromisoformat(s["date"]) <= sunday and s["reps"] > 0
        ]
        iso = monday.isocalendar()
        rows.append(
            {
                "kind": "adherence",
                "patient_id": prescription["patient_id"],
                "clinic_id": prescription["clinic_id"],
                "prescription_id": prescription["prescription_id"],
                "iso_week": f"{iso[0]}-W{iso[1]:02d}",
                "week_start": monday.isoformat(),
                "time_zone": time_zone,
                "prescribed": spw,
                "attended": len(week),
                "completed": sum(1 for s in week if s["completed_as_prescribed"]),
            }
        )
        monday += dt.timedelta(days=7)
    for i, row in enumerate(rows):
        window = rows[max(0, i - 3) : i + 1]
        for key in ("prescribed", "attended", "completed"):
            row[f"rolling4_{key}"] = sum(w[key] for w in window)
        row["adherence"] = _ratio(row["attended"], row["prescribed"])
        row["compliance"] = _ratio(row["completed"], row["prescribed"])
        row["relative_compliance"] = _ratio(row["completed"], row["attended"])
        row["rolling4_adherence"] = _ratio(row["rolling4_attended"], row["rolling4_prescribed"])
        row["rolling4_compliance"] = _ratio(row["rolling4_completed"], row["rolling4_prescribed"])
    return rows


def _ratio(a: int, b: int) -> float | None:
    return a / b if b else None


def ground_truth(fleet: Fleet) -> dict[str, list[dict[str, Any]]]:
    from edge.simulator.source import index_to_ns

    out: dict[str, list[dict[str, Any]]] = {k: [] for k in TRUTH_FILES}
    by_patient: dict[str, list[dict[str, Any]]] = defaultdict(list)
    last_date = fleet.config.start_date + dt.timedelta(days=fleet.config.days - 1)
    for sim in fleet.machines:
        device_ns = index_to_ns(sim.t0_ns, sim.rate_hz)
        clock = sim.clock

        def true_ns(i: int, device_ns: Any = device_ns, clock: Any = clock) -> int:
            return int(clock.true_ns(device_ns(i)))

        scripts = fleet.scripts.get(sim.machine_id, [])
        for script in scripts:
            reps, sets, session = session_truth(script, true_ns, sim.rate_hz, device_ns)
            out["reps"] += reps
            out["sets"] += sets
            out["sessions"].append(session)
            by_patient[session["patient_id"]].append(session)
            last_date = max(last_date, dt.date.fromisoformat(session["date"]))
        d = sim.delivery
        out["machines"].append(
            {
                "clinic_id": sim.clinic_id,
                "machine_id": sim.machine_id,
                "time_zone": sim.time_zone,
                "rate_hz": sim.rate_hz,
                "frame_samples": sim.frame_samples,
                "t0_ns": sim.t0_ns,
                "clock_offset_ms": clock.offset_ms,
                "clock_drift_ppm": clock.drift_ppm,
                "clock_offset_reported": clock.reported,
                "delay_s": d.delay_ns / 1e9,
                "outages": [list(o) for o in d.outages],
                "reconnect_at_ns": d.reconnect_at_ns,
                "offline_days": d.offline_days,
                "sessions": len(scripts),
            }
        )
    zones = fleet.clinic_time_zones
    for rx in fleet.prescriptions:
        out["prescriptions"].append(rx)
        tz = zones.get(rx["clinic_id"], "UTC")
        sessions = by_patient.get(rx["patient_id"], [])
        out["adherence"] += weekly_adherence(rx, sessions, last_date, tz)
    return out


def write_ground_truth(truth: dict[str, list[dict[str, Any]]], directory: str) -> dict[str, int]:
    """Write ``<kind>.jsonl`` files (one JSON object a line); returns line counts."""
    path = Path(directory)
    path.mkdir(parents=True, exist_ok=True)
    counts: dict[str, int] = {}
    for kind, rows in truth.items():
        with (path / f"{kind}.jsonl").open("w", encoding="utf-8") as fh:
            for row in rows:
                fh.write(json.dumps(row, separators=(",", ":"), allow_nan=False) + "\n")
        counts[kind] = len(rows)
    return counts
