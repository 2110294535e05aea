"""Deterministic synthetic stream records (stream/records.py shapes) for tests, benchmarks
and seeding dashboards: clinics, machines, patients training twice a week, with a lapse.

Pure: yields dicts; nothing is written. Times derive only from the arguments, so the same
call always yields the same records (and the same natural keys and times).
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Final

NS: Final = 1_000_000_000
DAY_NS: Final = 86_400 * NS


@dataclass(frozen=True, slots=True)
class Fleet:
    clinics: int = 2
    machines_per_clinic: int = 2
    patients_per_clinic: int = 4
    weeks: int = 4
    sets: int = 3
    reps: int = 8
    start: dt.date = dt.date(2026, 9, 7)  # a Monday
    lapse_patient: int = 0  # this patient index skips weeks 2-3 of the history (0 = none)
    seed: int = 7

    def clinic_id(self, c: int) -> str:
        return f"c{c + 1}"

    def machine_id(self, c: int, m: int) -> str:
        return f"c{c + 1}-m{m + 1}"

    def patient_id(self, c: int, p: int) -> str:
        return f"c{c + 1}-p{p + 1}"


def _ns(day: dt.date, seconds: float) -> int:
    base = dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)
    return int(base.timestamp()) * NS + int(seconds * NS)


def records(fleet: Fleet) -> Iterator[dict[str, Any]]:
    """Prescriptions, then per session its reps, sets and session, then weekly adherence,
    hourly machine status and an alert per lapse."""
    rng = random.Random(fleet.seed)
    for c in range(fleet.clinics):
        clinic = fleet.clinic_id(c)
        for p in range(fleet.patients_per_clinic):
            yield prescription(fleet, c, p)
        for p in range(fleet.patients_per_clinic):
            yield from _patient_history(fleet, c, p, rng)
        for m in range(fleet.machines_per_clinic):
            machine = fleet.machine_id(c, m)
            for day in range(fleet.weeks * 7):
                for hour in (8, 12, 16):
                    ts = _ns(fleet.start + dt.timedelta(days=day), hour * 3600)
                    yield machine_status(clinic, machine, ts, frames=(day * 3 + hour) * 1000)


def prescription(fleet: Fleet, c: int, p: int) -> dict[str, Any]:
    return {
        "v": 1,
        "kind": "prescription",
        "prescription_id": f"rx-{fleet.patient_id(c, p)}",
        "patient_id": fleet.patient_id(c, p),
        "clinic_id": fleet.clinic_id(c),
        "sessions_per_week": 2,
        "sets": fleet.sets,
        "reps": fleet.reps,
        "load_kg": 60.0,
        "max_velocity_loss_pct": 20.0,
        "start_date": fleet.start.isoformat(),
        "end_date": None,
        "seat_position": 4.0,
        "footplate_position": 2.0,
    }


def machine_status(clinic: str, machine: str, ts_ns: int, frames: int) -> dict[str, Any]:
    return {
        "v": 1,
        "kind": "machine_status",
        "machine_id": machine,
        "clinic_id": clinic,
        "ts_ns": ts_ns,
        "status": "online",
        "agent_version": "0.1.0",
        "firmware": "fw-1.4",
        "rate_hz": 100.0,
        "config_version": 3,
        "clock_offset_ms": 1.5,
        "frames": frames,
        "frames_replayed": frames // 100,
        "frames_duplicate": 2,
        "frames_missing": 1,
        "edge_dropped": 0,
        "last_seq": frames,
        "emitted_at_ns": ts_ns,
    }


def _patient_history(fleet: Fleet, c: int, p: int, rng: random.Random) -> Iterator[dict[str, Any]]:
    clinic, patient = fleet.clinic_id(c), fleet.patient_id(c, p)
    machine = fleet.machine_id(c, p % fleet.machines_per_clinic)
    for week in range(fleet.weeks):
        monday = fleet.start + dt.timedelta(weeks=week)
        lapsed = fleet.lapse_patient and p == fleet.lapse_patient and week in (2, 3)
        attended = 0
        for k, weekday in enumerate((0, 3)):
            if lapsed:
                continue
            attended += 1
            day = monday + dt.timedelta(days=weekday)
            start = _ns(day, 9 * 3600 + (p * 3 + k) * 1800)
            yield from _session(
                fleet,
                clinic,
                machine,
                patient,
                f"{patient}-w{week}-{k}",
                start,
                60.0 + 2.5 * week,
                rng,
            )
        yield {
            "v": 1,
            "kind": "adherence",
            "patient_id": patient,
            "clinic_id": clinic,
            "prescription_id": f"rx-{patient}",
            "iso_week": f"{monday.isocalendar()[0]}-W{monday.isocalendar()[1]:02d}",
            "week_start": monday.isoformat(),
            "prescribed": 2,
            "attended": attended,
            "completed": attended,
            "adherence": attended / 2,
            "compliance": attended / 2,
            "relative_compliance": 1.0 if attended else None,
            "rolling4_prescribed": 8,
            "rolling4_attended": 8 - (4 if lapsed else 0),
            "rolling4_completed": 8,
            "rolling4_adherence": (8 - (4 if lapsed else 0)) / 8,
            "rolling4_compliance": 1.0,
            "emitted_at_ns": _ns(monday + dt.timedelta(days=7), 0),
        }
        if lapsed and week == 2:
            ts = _ns(monday, 12 * 3600)
            yield {
                "v": 1,
                "kind": "alert",
                "rule": "lapse",
                "subject_id": patient,
                "window_start_ns": ts,
                "ts_ns": ts,
                "clinic_id": clinic,
                "patient_id": patient,
                "machine_id": None,
                "severity": "warning",
                "value": 14.0,
                "threshold": 7.0,
                "message": f"no session for 14 days ({patient})",
                "emitted_at_ns": ts,
            }


def _session(
    fleet: Fleet,
    clinic: str,
    machine: str,
    patient: str,
    session: str,
    start: int,
    load: float,
    rng: random.Random,
) -> Iterator[dict[str, Any]]:
    t = start
    total_reps, work, mcvs = 0, 0.0, []
    for s in range(1, fleet.sets + 1):
        set_start = t
        set_mcv: list[float] = []
        for r in range(1, fleet.reps + 1):
            mcv = round(0.55 - 0.015 * r + rng.uniform(-0.02, 0.02), 4)
            rep_work = load * 9.81 * 0.4
            yield {
                "v": 1,
                "kind": "rep",
                "clinic_id": clinic,
                "machine_id": machine,
                "patient_id": patient,
                "session_id": session,
                "set_no": s,
                "rep_no": r,
                "valid": True,
                "start_ns": t,
                "top_ns": t + NS,
                "end_ns": t + 2 * NS,
                "load_kg": load,
                "rom_mm": 400.0,
                "concentric_s": 0.8,
                "eccentric_s": 1.2,
                "tut_s": 2.0,
                "mcv_ms": mcv,
                "mpv_ms": mcv + 0.03,
                "pv_ms": mcv * 1.6,
                "time_to_pv_s": 0.35,
                "pv_position_pct": 45.0,
                "mean_force_n": 900.0,
                "peak_force_n": 1250.0,
                "mean_power_w": 900.0 * mcv,
                "peak_power_w": 1250.0 * mcv * 1.6,
                "work_j": rep_work,
                "asi_pct": round(rng.uniform(2, 12), 2),
                "weaker_side": "left",
                "sign_changes": 1,
                "jerk_score": 2.5,
                "dropout_samples": 0,
                "replayed": False,
                "emitted_at_ns": t + 3 * NS,
            }
            set_mcv.append(mcv)
            work += rep_work
            t += 3 * NS
        total_reps += fleet.reps
        mcvs += set_mcv
        best, last = max(set_mcv), set_mcv[-1]
        yield {
            "v": 1,
            "kind": "set",
            "clinic_id": clinic,
            "machine_id": machine,
            "patient_id": patient,
            "session_id": session,
            "set_no": s,
            "start_ns": set_start,
            "end_ns": t,
            "load_kg": load,
            "reps": fleet.reps,
            "partial_reps": 0,
            "best_mcv_ms": best,
            "last_mcv_ms": last,
            "mean_mcv_ms": sum(set_mcv) / len(set_mcv),
            "velocity_loss_pct": (best - last) / best * 100,
            "mean_power_w": 400.0,
            "peak_power_w": 700.0,
            "work_j": load * 9.81 * 0.4 * fleet.reps,
            "tut_s": 2.0 * fleet.reps,
            "mean_asi_pct": 6.0,
            "emitted_at_ns": t + NS,
        }
        t += 90 * NS
    yield {
        "v": 1,
        "kind": "session",
        "session_id": session,
        "clinic_id": clinic,
        "machine_id": machine,
        "patient_id": patient,
        "prescription_id": f"rx-{patient}",
        "start_ns": start,
        "end_ns": t,
        "end_reason": "checkout",
        "sets": fleet.sets,
        "reps": total_reps,
        "partial_reps": 0,
        "volume_load_kg": load * total_reps,
        "work_j": work,
        "mean_asi_pct": 6.0,
        "mean_mcv_ms": sum(mcvs) / len(mcvs),
        "max_velocity_loss_pct": 25.0,
        "duration_s": (t - start) / NS,
        "density_j_per_min": work / ((t - start) / NS / 60),
        "max_load_kg": load,
        "seat_position": 4.0,
        "footplate_position": 2.0,
        "completed_as_prescribed": True,
        "lv_intercept_ms": 1.2,
        "lv_slope_ms_per_kg": -0.01,
        "e1rm_kg": 95.0 + load / 10,
        "emitted_at_ns": t + NS,
    }
