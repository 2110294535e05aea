"""Seed data for the dashboard and report tests: 12 weeks of a small fleet with known truth.

Records are stream/records.py shapes written through storage's write path (the sink's
Writer); outcomes, machine fault events and dead letters, which have no stream record, are
inserted with psycopg.sql. Patients follow the simulator's strength model
(edge/simulator/patients.py): MCV(load) = v0·(1 - load/L0), L0 growing by
``PROGRESSION`` per week in which the patient trained. The report patient (first patient
of the first clinic) misses ``LAPSE_WEEKS`` entirely, so both the strength trend and the
lapse are known here and checked against what the report prints. Each session is a warm-up
set below the prescribed load and three sets at it; the second session of every week ends
with a set over the prescribed velocity loss, so exactly half the sessions are completed as
prescribed. The report clinic keeps its calendar in ``TIME_ZONE`` and its report patient
has effort and symptom notes (``note_events``).
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Final

import psycopg
from psycopg import sql

from storage.notes import note_event
from storage.queries import refresh
from storage.rows import EVENT, event_row, record_row
from storage.writer import Batch, Writer

NS: Final = 1_000_000_000
WEEKS: Final = 12
LAPSE_WEEKS: Final = (5, 6, 7)  # 0-based weeks of the history with no session
WARMUP_LOAD_KG: Final = 40.0  # every session's first set, below the prescribed load
REFERENCE_LOAD_KG: Final = 50.0  # the prescribed load: MCV is reported at it
TIME_ZONE: Final = "Europe/Berlin"  # the report clinic's zone (the others stay UTC)
MVT_MS: Final = 0.30  # minimum velocity threshold for e1RM
PROGRESSION: Final = 0.02  # L0 growth per trained week
SETS, REPS = 3, 6
OVER_LIMIT_VL: Final = 0.24  # the last set of every week's second session: over 20 %
WITHIN_LIMIT_VL: Final = 0.18


@dataclass(frozen=True, slots=True)
class SeedFleet:
    clinics: tuple[str, ...]
    patients_per_clinic: int = 3
    machines_per_clinic: int = 2
    now: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))

    @property
    def end(self) -> dt.date:
        return self.now.date()

    @property
    def start_datetime(self) -> dt.datetime:
        return dt.datetime(self.start.year, self.start.month, self.start.day, tzinfo=dt.UTC)

    @property
    def now_ns(self) -> int:
        return int(self.now.timestamp()) * NS

    @property
    def start(self) -> dt.date:
        """Monday of the first of ``WEEKS`` ISO weeks ending with the week of ``end``."""
        monday = self.end - dt.timedelta(days=self.end.weekday())
        return monday - dt.timedelta(weeks=WEEKS - 1)

    def machine_id(self, c: str, m: int) -> str:
        return f"{c}-m{m + 1}"

    def patient_id(self, c: str, p: int) -> str:
        return f"{c}-p{p + 1}"

    @property
    def report_patient(self) -> str:
        return self.patient_id(self.clinics[0], 0)

    def lapses(self, c: str, p: int) -> bool:
        return c == self.clinics[0] and p == 0


def _ns(day: dt.date, seconds: float) -> int:
    base = dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)
    return int(base.timestamp()) * NS + int(seconds * NS)


def l0_kg(week_trained: int) -> float:
    return 100.0 * (1 + PROGRESSION) ** week_trained


def v0_ms() -> float:
    return 1.0


def mcv(load: float, l0: float) -> float:
    return v0_ms() * (1 - load / l0)


def true_e1rm(l0: float) -> float:
    """Load at which MCV reaches the MVT: L0·(1 - MVT/v0)."""
    return l0 * (1 - MVT_MS / v0_ms())


def asi_pct(week: int) -> float:
    """Asymmetry recovering from 16 % to 6 % across the history (crosses the 10 % band)."""
    return 16.0 - 10.0 * week / (WEEKS - 1)


def session_days(fleet: SeedFleet, week: int) -> list[dt.date]:
    monday = fleet.start + dt.timedelta(weeks=week)
    return [d for d in (monday, monday + dt.timedelta(days=3)) if d <= fleet.end]


def session_starts(fleet: SeedFleet, c: str, p: int, week: int) -> list[int]:
    """Start times (ns) of the patient's sessions in ``week``: none in a lapse week, none
    later than ``fleet.now``."""
    if fleet.lapses(c, p) and week in LAPSE_WEEKS:
        return []
    starts = [_ns(d, 9 * 3600 + p * 3600) for d in session_days(fleet, week)]
    return [t for t in starts if t <= fleet.now_ns]


def trained_weeks(fleet: SeedFleet, c: str, p: int) -> list[int]:
    return [w for w in range(WEEKS) if session_starts(fleet, c, p, w)]


def records(fleet: SeedFleet) -> Iterator[dict[str, Any]]:
    for c in fleet.clinics:
        for p in range(fleet.patients_per_clinic):
            yield _prescription(fleet, c, p)
            yield from _history(fleet, c, p)
        for m in range(fleet.machines_per_clinic):
            yield from _machine_status(fleet, c, fleet.machine_id(c, m))


def _prescription(fleet: SeedFleet, c: str, p: int) -> dict[str, Any]:
    return {
        "v": 1,
        "kind": "prescription",
        "prescription_id": f"rx-{fleet.patient_id(c, p)}",
        "patient_id": fleet.patient_id(c, p),
        "clinic_id": c,
        "sessions_per_week": 2,
        "sets": SETS,
        "reps": REPS,
        "load_kg": 50.0,
        "max_velocity_loss_pct": 20.0,
        "start_date": fleet.start.isoformat(),
        "end_date": None,
    }


def _history(fleet: SeedFleet, c: str, p: int) -> Iterator[dict[str, Any]]:
    patient = fleet.patient_id(c, p)
    machine = fleet.machine_id(c, p % fleet.machines_per_clinic)
    trained = 0
    attended_by_week: list[int] = []
    for week in range(WEEKS):
        monday = fleet.start + dt.timedelta(weeks=week)
        lapsed = fleet.lapses(c, p) and week in LAPSE_WEEKS
        days = session_starts(fleet, c, p, week)
        for k, start in enumerate(days):
            yield from _session(
                c,
                machine,
                patient,
                f"{patient}-w{week}-{k}",
                start,
                l0_kg(trained),
                week,
                OVER_LIMIT_VL if k == 1 else WITHIN_LIMIT_VL,
            )
        if days:
            trained += 1
        attended_by_week.append(len(days))
        window = attended_by_week[-4:]
        yield {
            "v": 1,
            "kind": "adherence",
            "patient_id": patient,
            "clinic_id": c,
            "prescription_id": f"rx-{patient}",
            "iso_week": f"{monday.isocalendar()[0]}-W{monday.isocalendar()[1]:02d}",
            "week_start": monday.isoformat(),
            "prescribed": 2,
            "attended": len(days),
            "completed": len(days),
            "adherence": len(days) / 2,
            "compliance": len(days) / 2,
            "relative_compliance": 1.0 if days else None,
            "rolling4_prescribed": 2 * len(window),
            "rolling4_attended": sum(window),
            "rolling4_completed": sum(window),
            "rolling4_adherence": sum(window) / (2 * len(window)),
            "rolling4_compliance": sum(window) / (2 * len(window)),
            "emitted_at_ns": _ns(monday, 6 * 86400),
        }
        if lapsed and week == LAPSE_WEEKS[0]:
            ts = _ns(monday + dt.timedelta(days=4), 12 * 3600)
            yield _alert("lapse", patient, c, patient, None, ts, 7.0, 7.0, "no session for 7 days")
        if week == 1:
            ts = _ns(monday + dt.timedelta(days=3), 11 * 3600)
            yield _alert(
                "asymmetry",
                patient,
                c,
                patient,
                None,
                ts,
                asi_pct(week),
                10.0,
                "asymmetry above 10 % in 2 consecutive sessions",
            )


def _alert(
    rule: str,
    subject: str,
    c: str,
    patient: str | None,
    machine: str | None,
    ts: int,
    value: float,
    threshold: float,
    message: str,
) -> dict[str, Any]:
    return {
        "v": 1,
        "kind": "alert",
        "rule": rule,
        "subject_id": subject,
        "window_start_ns": ts,
        "ts_ns": ts,
        "clinic_id": c,
        "patient_id": patient,
        "machine_id": machine,
        "severity": "warning",
        "value": value,
        "threshold": threshold,
        "message": message,
        "emitted_at_ns": ts,
    }


def _session(
    c: str,
    machine: str,
    patient: str,
    session: str,
    start: int,
    l0: float,
    week: int,
    last_vl: float,
) -> Iterator[dict[str, Any]]:
    loads = [WARMUP_LOAD_KG, REFERENCE_LOAD_KG, REFERENCE_LOAD_KG, REFERENCE_LOAD_KG]
    t = start
    total, work, all_mcv = 0, 0.0, []
    worst_vl = 0.0
    for s, load in enumerate(loads, 1):
        set_start = t
        first = mcv(load, l0)
        fatigue = (0.08, 0.10, 0.14, last_vl)[s - 1]
        vels = [first * (1 - fatigue * r / (REPS - 1)) for r in range(REPS)]
        for r, v in enumerate(vels, 1):
            force = load * 9.81 + 200.0
            yield {
                "v": 1,
                "kind": "rep",
                "clinic_id": c,
                "machine_id": machine,
                "patient_id": patient,
                "session_id": session,
                "set_no": s,
                "rep_no": r,
                "valid": True,
                "start_ns": t,
                "top_ns": t + NS,
                "end_ns": t + 3 * NS,
                "load_kg": load,
                "rom_mm": 400.0,
                "concentric_s": 0.4 / v,
                "eccentric_s": 1.5,
                "tut_s": 0.4 / v + 1.5,
                "mcv_ms": v,
                "mpv_ms": v,
                "pv_ms": v * 1.5,
                "time_to_pv_s": 0.3,
                "pv_position_pct": 40.0,
                "mean_force_n": force,
                "peak_force_n": force * 1.3,
                "mean_power_w": force * v,
                "peak_power_w": force * v * 1.5,
                "work_j": force * 0.4,
                "asi_pct": asi_pct(week),
                "weaker_side": "left",
                "sign_changes": 0,
                "jerk_score": 1.0,
                "dropout_samples": 0,
                "replayed": False,
                "emitted_at_ns": t + 4 * NS,
            }
            work += force * 0.4
            t += 4 * NS
        vl = (vels[0] - vels[-1]) / vels[0] * 100
        worst_vl = max(worst_vl, vl)
        all_mcv += vels
        total += REPS
        yield {
            "v": 1,
            "kind": "set",
            "clinic_id": c,
            "machine_id": machine,
            "patient_id": patient,
            "session_id": session,
            "set_no": s,
            "start_ns": set_start,
            "end_ns": t,
            "load_kg": load,
            "reps": REPS,
            "partial_reps": 0,
            "best_mcv_ms": vels[0],
            "last_mcv_ms": vels[-1],
            "mean_mcv_ms": sum(vels) / REPS,
            "velocity_loss_pct": vl,
            "mean_power_w": (load * 9.81 + 200) * sum(vels) / REPS,
            "peak_power_w": (load * 9.81 + 200) * vels[0] * 1.5,
            "work_j": REPS * 0.4 * load,
            "tut_s": 10.0,
            "mean_asi_pct": asi_pct(week),
            "emitted_at_ns": t + NS,
        }
        t += 90 * NS
    yield {
        "v": 1,
        "kind": "session",
        "session_id": session,
        "clinic_id": c,
        "machine_id": machine,
        "patient_id": patient,
        "prescription_id": f"rx-{patient}",
        "start_ns": start,
        "end_ns": t,
        "end_reason": "checkout",
        "sets": len(loads),
        "reps": total,
        "partial_reps": 0,
        "volume_load_kg": REPS * sum(loads),
        "work_j": work,
        "mean_asi_pct": asi_pct(week),
        "mean_mcv_ms": sum(all_mcv) / len(all_mcv),
        "max_velocity_loss_pct": worst_vl,
        "duration_s": (t - start) / NS,
        "density_j_per_min": work / ((t - start) / NS / 60),
        "max_load_kg": max(loads),
        "seat_position": None,
        "footplate_position": None,
        "completed_as_prescribed": True,
        "lv_intercept_ms": v0_ms(),
        "lv_slope_ms_per_kg": -v0_ms() / l0,
        "e1rm_kg": true_e1rm(l0),
        "emitted_at_ns": t + NS,
    }


def _machine_status(fleet: SeedFleet, c: str, machine: str) -> Iterator[dict[str, Any]]:
    now = dt.datetime.now(dt.UTC).replace(minute=0, second=0, microsecond=0)
    for h in range(72, -1, -1):
        ts = int((now - dt.timedelta(hours=h)).timestamp()) * NS
        frames = (72 - h) * 36_000
        yield {
            "v": 1,
            "kind": "machine_status",
            "machine_id": machine,
            "clinic_id": c,
            "ts_ns": ts,
            "status": "offline" if h in (30, 31) else "online",
            "agent_version": "0.1.0",
            "firmware": "fw-1.4",
            "rate_hz": 100.0,
            "config_version": 3,
            "clock_offset_ms": 40.0 + (300.0 if h == 10 else 0.0),
            "frames": frames,
            "frames_replayed": frames // 50,
            "frames_duplicate": 3,
            "frames_missing": 2 if h < 20 else 0,
            "edge_dropped": 0,
            "last_seq": frames,
            "emitted_at_ns": ts,
        }


def seed(
    conn: psycopg.Connection[Any], fleet: SeedFleet, flavour: str = "postgres", mode: str = "copy"
) -> None:
    """Write the fleet's records, outcomes, fault events and dead letters; refresh aggregates."""
    batch = Batch()
    for rec in records(fleet):
        spec, row = record_row(rec)
        batch.add(spec, row)
    for note in note_events(fleet):
        batch.add(EVENT, event_row(note))
    Writer(conn, flavour, mode=mode).write(batch)  # type: ignore[arg-type]
    conn.execute(
        sql.SQL("UPDATE {} SET time_zone = %s WHERE clinic_id = %s").format(
            sql.Identifier("sledfleet", "clinics")
        ),
        (TIME_ZONE, fleet.clinics[0]),
    )
    _extras(conn, fleet, flavour, mode)
    refresh(conn, flavour)  # type: ignore[arg-type]


NOTES: Final = (  # (week, rpe, fatigue, symptoms, relapse_suspected) for the report patient
    (1, 5.0, 3.0, None, False),
    (4, 7.0, 6.0, "legs heavier since Sunday, worse in the heat", False),
    (9, 4.0, 2.0, None, False),
    (10, 6.0, 7.0, "new numbness in the left foot for 2 days", True),
)


def note_events(fleet: SeedFleet) -> list[dict[str, Any]]:
    """The report patient's notes, taken after the week's first session."""
    c = fleet.clinics[0]
    out = []
    for week, rpe, fatigue, symptoms, relapse in NOTES:
        starts = session_starts(fleet, c, 0, week)
        if not starts:
            continue
        at = dt.datetime.fromtimestamp(starts[0] / NS + 3600, dt.UTC)
        out.append(
            note_event(
                fleet.report_patient, c, fleet.machine_id(c, 0), at, phase="after_session",
                rpe=rpe, fatigue=fatigue, symptoms=symptoms, relapse_suspected=relapse,
            )
        )  # fmt: skip
    return out


def outcome_rows(fleet: SeedFleet) -> list[tuple[str, str, dt.date, str, float, str]]:
    rows = []
    for c in fleet.clinics:
        for p in range(fleet.patients_per_clinic):
            pid = fleet.patient_id(c, p)
            for i, week in enumerate((0, 6, 11)):
                day = fleet.start + dt.timedelta(weeks=week, days=1)
                if day > fleet.end:
                    continue
                rows += [
                    (pid, "t25fw", day, c, 9.0 - 0.5 * i, "s"),
                    (pid, "5sts", day, c, 16.0 - 1.0 * i, "s"),
                    (pid, "6mw", day, c, 320.0 + 20 * i, "m"),
                    (pid, "msws12", day, c, 40.0 - 4 * i, "points"),
                ]
    return rows


def _extras(conn: psycopg.Connection[Any], fleet: SeedFleet, flavour: str, mode: str) -> None:
    with conn.cursor() as cur:
        cur.executemany(
            sql.SQL(
                "INSERT INTO {} (patient_id, test, measured_on, clinic_id, value, unit) "
                "VALUES (%s, %s, %s, %s, %s, %s)"
            ).format(sql.Identifier("sledfleet", "outcomes")),
            outcome_rows(fleet),
        )
        now = dt.datetime.now(dt.UTC)
        for i, (c, m) in enumerate(
            (c, m) for c in fleet.clinics for m in range(fleet.machines_per_clinic)
        ):
            machine = fleet.machine_id(c, m)
            ts = now - dt.timedelta(hours=5 + i)
            cur.execute(
                sql.SQL(
                    "INSERT INTO {} (ts, event_id, machine_id, clinic_id, ts_ns, type, seq, "
                    "code, detail, payload) VALUES (%s, %s, %s, %s, %s, 'fault', %s, "
                    "'load_cell_flat', 'left load cell flat for 5 s', '{{}}'::jsonb)"
                ).format(sql.Identifier("sledfleet", "machine_events")),
                (ts, uuid.uuid4(), machine, c, int(ts.timestamp()) * NS, 100 + i),
            )
            cur.execute(
                sql.SQL(
                    "INSERT INTO {} (payload_sha256, origin, received_at, source, reason, "
                    "detail, payload_size) VALUES (%s, 'sledfleet.events', %s, 'bridge', "
                    "'bad_json', 'not JSON', 12)"
                ).format(sql.Identifier("sledfleet", "dead_letters")),
                (uuid.uuid4().hex, now - dt.timedelta(hours=2 + i)),
            )
        ts = now - dt.timedelta(hours=3)
        rec = _alert(
            "clock_skew",
            fleet.machine_id(fleet.clinics[0], 1),
            fleet.clinics[0],
            None,
            fleet.machine_id(fleet.clinics[0], 1),
            int(ts.timestamp()) * NS,
            340.0,
            250.0,
            "device clock offset 340 ms",
        )
    batch = Batch()
    spec, row = record_row(rec)
    batch.add(spec, row)
    Writer(conn, flavour, mode=mode).write(batch)  # type: ignore[arg-type]
