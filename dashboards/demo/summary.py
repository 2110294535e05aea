"""The demo's fleet summary: SQL on the database the sink wrote, scored against ground truth.

Everything printed comes from the database (``fleet_summary``); the simulator's ground
truth is used only to score it (``score_against_truth``). Tolerances are the stream
issue's acceptance criteria, named here.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import psycopg
from psycopg import sql
from psycopg.rows import dict_row

MCV_TOLERANCE_MS: Final = 0.02
"""p95 |MCV error| allowed, m/s (issue 5)."""
ROM_TOLERANCE_MM: Final = 5.0
"""p95 |ROM error| allowed, mm (issue 5)."""
ASI_TOLERANCE_PP: Final = 2.0
"""p95 |ASI error| allowed, percentage points (issue 5)."""
REP_COUNT_EXACT_SETS: Final = 0.99
"""Fraction of sets whose rep count must be exact (issue 5)."""

Q_TOTALS: Final = sql.SQL(
    """
    SELECT (SELECT count(*) FROM sledfleet.machines) AS machines,
           (SELECT count(*) FILTER (WHERE online) FROM sledfleet.machines) AS machines_online,
           (SELECT count(*) FROM sledfleet.patients) AS patients,
           (SELECT count(*) FROM sledfleet.sessions) AS sessions,
           (SELECT count(*) FROM sledfleet.sets) AS sets,
           (SELECT count(*) FILTER (WHERE valid) FROM sledfleet.reps) AS reps,
           (SELECT count(*) FILTER (WHERE NOT valid) FROM sledfleet.reps) AS partial_reps,
           (SELECT count(*) FROM sledfleet.v_alerts_open) AS open_alerts
    """
)
Q_CLINICS: Final = sql.SQL(
    """
    WITH latest AS (
        SELECT a.*, row_number() OVER (PARTITION BY patient_id ORDER BY week_start DESC) AS rn
        FROM sledfleet.v_patient_adherence a
        WHERE week_start <= %(last_week_start)s
    )
    SELECT c.clinic_id,
           (SELECT count(*) FROM sledfleet.machines m WHERE m.clinic_id = c.clinic_id)
               AS machines,
           (SELECT count(*) FROM sledfleet.patients p WHERE p.clinic_id = c.clinic_id)
               AS patients,
           (SELECT count(*) FROM sledfleet.sessions s WHERE s.clinic_id = c.clinic_id)
               AS sessions,
           (SELECT avg(l.adherence) FROM latest l WHERE l.rn = 1 AND l.clinic_id = c.clinic_id)
               AS week_adherence,
           (SELECT avg(l.rolling4_adherence) FROM latest l
             WHERE l.rn = 1 AND l.clinic_id = c.clinic_id) AS rolling4_adherence,
           (SELECT avg(l.rolling4_compliance) FROM latest l
             WHERE l.rn = 1 AND l.clinic_id = c.clinic_id) AS rolling4_compliance,
           (SELECT count(*) FROM sledfleet.v_alerts_open o WHERE o.clinic_id = c.clinic_id)
               AS open_alerts
    FROM sledfleet.clinics c
    ORDER BY c.clinic_id
    """
)
Q_ALERTS: Final = sql.SQL(
    "SELECT rule, count(*) AS n FROM sledfleet.v_alerts_open GROUP BY rule ORDER BY rule"
)
Q_LATENCY: Final = sql.SQL(
    """
    SELECT count(*) AS n,
           percentile_cont(0.5) WITHIN GROUP (ORDER BY lat) AS p50,
           percentile_cont(0.95) WITHIN GROUP (ORDER BY lat) AS p95,
           percentile_cont(0.99) WITHIN GROUP (ORDER BY lat) AS p99
    FROM (SELECT extract(epoch FROM stored_at - sledfleet.ns_to_ts(end_ns)) AS lat
          FROM sledfleet.reps WHERE end_ns >= %(since_ns)s) l
    """
)
Q_REPS: Final = sql.SQL(
    """
    SELECT machine_id, session_id, set_no, rep_no, valid, rom_mm, mcv_ms, asi_pct
    FROM sledfleet.reps WHERE start_ns >= %(from_ns)s AND start_ns < %(to_ns)s
    """
)
Q_ADHERENCE: Final = sql.SQL(
    """
    SELECT patient_id, iso_week, prescribed, attended, completed
    FROM sledfleet.adherence_weekly WHERE week_start BETWEEN %(first)s AND %(last)s
    """
)
"""The stream's own rows, scored against the simulator's truth (which, like the stream,
counts a session complete on sets × reps at the load). v_patient_adherence recounts
``completed`` with the prescription's velocity-loss limit too (docs/report.md)."""


def fleet_summary(
    conn: psycopg.Connection[Any], last_week_start: Any, live_since_ns: int | None
) -> dict[str, Any]:
    """Machines, sessions, reps, adherence per clinic, open alerts, latency: all by SQL."""
    cur = conn.cursor(row_factory=dict_row)
    totals = cur.execute(Q_TOTALS).fetchone() or {}
    clinics = cur.execute(Q_CLINICS, {"last_week_start": last_week_start}).fetchall()
    alerts = {r["rule"]: r["n"] for r in cur.execute(Q_ALERTS).fetchall()}
    latency = None
    if live_since_ns is not None:
        latency = cur.execute(Q_LATENCY, {"since_ns": live_since_ns}).fetchone()
    return {"totals": dict(totals), "clinics": clinics, "alerts": alerts, "latency": latency}


@dataclass(frozen=True, slots=True)
class Score:
    truth_reps: int
    matched_reps: int
    missing_reps: int
    extra_reps: int
    sets: int
    sets_exact: int
    mcv_p95: float
    rom_p95: float
    asi_p95: float
    adherence_rows: int
    adherence_exact: int
    adherence_diff: tuple[dict[str, Any], ...] = ()
    """The first truth rows (up to 10) the stored weekly rows do not match."""

    @property
    def sets_exact_fraction(self) -> float:
        return self.sets_exact / self.sets if self.sets else 1.0

    def passed(self) -> bool:
        return (
            self.sets_exact_fraction >= REP_COUNT_EXACT_SETS
            and self.mcv_p95 <= MCV_TOLERANCE_MS
            and self.rom_p95 <= ROM_TOLERANCE_MM
            and self.asi_p95 <= ASI_TOLERANCE_PP
            and self.adherence_exact == self.adherence_rows
        )


def p95(values: Sequence[float]) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(0.95 * len(ordered)) - 1)]


def _key(r: Mapping[str, Any]) -> tuple[str, str, int, int]:
    return (r["machine_id"], r["session_id"], int(r["set_no"]), int(r["rep_no"]))


def score_against_truth(
    conn: psycopg.Connection[Any],
    truth: Mapping[str, Sequence[Mapping[str, Any]]],
    window_ns: tuple[int, int],
) -> Score:
    """Match DB reps to truth reps by natural key; compare set rep counts and adherence."""
    cur = conn.cursor(row_factory=dict_row)
    rows = cur.execute(Q_REPS, {"from_ns": window_ns[0], "to_ns": window_ns[1]}).fetchall()
    db = {_key(r): r for r in rows}
    truth_reps = {_key(r): r for r in truth["reps"]}
    matched = [(t, db[k]) for k, t in truth_reps.items() if k in db]
    mcv_err = [abs(t["mcv_ms"] - d["mcv_ms"]) for t, d in matched if t["valid"]]
    rom_err = [abs(t["rom_mm"] - d["rom_mm"]) for t, d in matched if t["valid"]]
    asi_err = [
        abs(t["asi_pct"] - d["asi_pct"])
        for t, d in matched
        if t["valid"] and t.get("asi_pct") is not None and d["asi_pct"] is not None
    ]
    sets_exact = _sets_exact(truth["sets"], db.values())
    adh_diff = adherence_mismatches(conn, truth["adherence"])
    return Score(
        truth_reps=len(truth_reps),
        matched_reps=len(matched),
        missing_reps=len(truth_reps.keys() - db.keys()),
        extra_reps=len(db.keys() - truth_reps.keys()),
        sets=len(truth["sets"]),
        sets_exact=sets_exact,
        mcv_p95=p95(mcv_err),
        rom_p95=p95(rom_err),
        asi_p95=p95(asi_err),
        adherence_rows=len(truth["adherence"]),
        adherence_exact=len(truth["adherence"]) - len(adh_diff),
        adherence_diff=tuple(adh_diff[:10]),
    )


def _sets_exact(
    truth_sets: Iterable[Mapping[str, Any]], db_reps: Iterable[Mapping[str, Any]]
) -> int:
    counts: dict[tuple[str, str, int], tuple[int, int]] = {}
    for r in db_reps:
        k = (r["machine_id"], r["session_id"], int(r["set_no"]))
        valid, partial = counts.get(k, (0, 0))
        counts[k] = (valid + 1, partial) if r["valid"] else (valid, partial + 1)
    return sum(
        1
        for s in truth_sets
        if counts.get((s["machine_id"], s["session_id"], int(s["set_no"])))
        == (s["reps"], s["partial_reps"])
    )


def adherence_mismatches(
    conn: psycopg.Connection[Any], truth_rows: Sequence[Mapping[str, Any]]
) -> list[dict[str, Any]]:
    """The truth's weekly rows the stream's rows do not match: patient, week, stored
    (prescribed, attended, completed) or None, truth. The week in progress is compared on
    attended and completed only: the stream prorates its ``prescribed`` up to today."""
    if not truth_rows:
        return []
    weeks = sorted(r["week_start"] for r in truth_rows)
    cur = conn.cursor(row_factory=dict_row)
    got = {
        (r["patient_id"], r["iso_week"]): (r["prescribed"], r["attended"], r["completed"])
        for r in cur.execute(Q_ADHERENCE, {"first": weeks[0], "last": weeks[-1]}).fetchall()
    }
    out = []
    for t in truth_rows:
        g = got.get((t["patient_id"], t["iso_week"]))
        want = (t["prescribed"], t["attended"], t["completed"])
        compared = slice(1, 3) if t["week_start"] == weeks[-1] else slice(0, 3)
        if g is None or g[compared] != want[compared]:
            out.append(
                {"patient": t["patient_id"], "week": t["iso_week"], "stored": g, "truth": want}
            )
    return out
