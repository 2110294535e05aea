"""What the patient report says, taken from the patient dashboard's query results.

Pure: the rows come in (as returned by :func:`dashboards.queries.run`), facts come out.
Every number is computed by one SQL definition (``dashboards/sql/patient_*.sql`` over the
views of ``storage/migrations/0011_therapist_definitions.sql``) that the dashboard shows
too; this module only picks rows (first and last week of a trend, the latest session) and
checks that what it reports does not contradict itself. Nothing here touches the database
or draws.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from dashboards import thresholds as t


@dataclass(frozen=True, slots=True)
class Lapse:
    start: datetime  # last session before the gap, or the prescription's start
    start_kind: str
    end: datetime  # next session, the prescription's end, or now (ongoing)
    end_kind: str
    days: float

    @property
    def ongoing(self) -> bool:
        return self.end_kind == "now"


@dataclass(frozen=True, slots=True)
class Trend:
    label: str
    unit: str
    first_week: datetime | None
    first: float | None
    last_week: datetime | None
    last: float | None

    @property
    def change_pct(self) -> float | None:
        if self.first is None or self.last is None or self.first == 0:
            return None
        return (self.last - self.first) / self.first * 100


@dataclass(frozen=True, slots=True)
class Facts:
    patient_id: str
    time_zone: str
    period_start: datetime
    period_end: datetime
    care_start: datetime | None
    sessions: int
    prescribed: int
    attended: int
    completed: int
    adherence: float | None  # attended / prescribed over the ISO weeks overlapping the period
    compliance: float | None  # completed as prescribed / prescribed, same weeks
    rolling4_adherence: float | None  # latest ISO week's rolling 4 weeks (the alert's number)
    latest_week: str | None
    last_session: datetime | None
    days_since_last_session: float | None
    lapses: list[Lapse] = field(default_factory=list)
    e1rm: Trend | None = None
    mcv: Trend | None = None
    reference_load: str | None = None
    asi_latest: float | None = None
    weaker_side_latest: str | None = None
    asi_sessions_outside_band: int = 0
    asi_sessions: int = 0
    sessions_not_as_prescribed: int = 0
    vl_sets_above_prescription: int = 0
    vl_sets: int = 0
    open_alerts: int = 0
    notes: int = 0
    relapse_notes: int = 0

    def as_json(self) -> dict[str, Any]:
        def conv(v: Any) -> Any:
            if isinstance(v, datetime):
                return v.isoformat()
            if isinstance(v, dict):
                return {k: conv(x) for k, x in v.items()}
            if isinstance(v, list):
                return [conv(x) for x in v]
            return v

        out: dict[str, Any] = conv(asdict(self))
        for name in ("e1rm", "mcv"):
            trend = getattr(self, name)
            if trend is not None:
                out[name]["change_pct"] = trend.change_pct
        for lapse, raw in zip(self.lapses, out["lapses"], strict=True):
            raw["ongoing"] = lapse.ongoing
        return out


def _f(v: Any) -> float | None:
    return None if v is None else float(v)


def _i(v: Any) -> int:
    return 0 if v is None else int(v)


def weekly_trend(
    rows: Sequence[Mapping[str, Any]], value: str, label: str, unit: str
) -> Trend | None:
    points = [(r["time"], _f(r[value])) for r in rows if r.get(value) is not None]
    if not points:
        return None
    points.sort(key=lambda p: p[0])
    return Trend(label, unit, points[0][0], points[0][1], points[-1][0], points[-1][1])


def lapses(rows: Sequence[Mapping[str, Any]]) -> list[Lapse]:
    return [
        Lapse(r["lapse_start"], r["start_kind"], r["lapse_end"], r["end_kind"], float(r["days"]))
        for r in rows
    ]


def derive(
    patient_id: str,
    start: datetime,
    end: datetime,
    results: Mapping[str, Sequence[Mapping[str, Any]]],
) -> Facts:
    """``results``: query name -> rows as dicts (patient_* queries)."""
    summary = results["patient_summary"][0] if results["patient_summary"] else {}
    mcv_rows = results["patient_mcv_reference_load"]
    ref = str(mcv_rows[0]["metric"]) if mcv_rows else None
    asi = results["patient_sides"]
    vl = results["patient_velocity_loss"]
    limit = t.VELOCITY_LOSS_PRESCRIBED_PCT
    notes = results["patient_notes"]
    return Facts(
        patient_id=patient_id,
        time_zone=str(summary.get("time_zone") or "UTC"),
        period_start=summary.get("period_start") or start,
        period_end=summary.get("period_end") or end,
        care_start=summary.get("care_start"),
        sessions=_i(summary.get("sessions")),
        prescribed=_i(summary.get("prescribed")),
        attended=_i(summary.get("attended")),
        completed=_i(summary.get("completed")),
        adherence=_f(summary.get("adherence")),
        compliance=_f(summary.get("compliance")),
        rolling4_adherence=_f(summary.get("rolling4_adherence")),
        latest_week=summary.get("iso_week"),
        last_session=summary.get("last_session"),
        days_since_last_session=_f(summary.get("days_since_last_session")),
        lapses=lapses(results["patient_lapses"]),
        e1rm=weekly_trend(results["patient_e1rm_weekly"], "e1rm_kg", "e1RM", "kg"),
        mcv=weekly_trend(mcv_rows, "mcv_ms", f"MCV at {ref}", "m/s") if ref else None,
        reference_load=ref,
        asi_latest=_f(summary.get("asi_pct")),
        weaker_side_latest=summary.get("weaker_side"),
        asi_sessions_outside_band=sum(
            1
            for r in asi
            if r["asi_pct"] is not None and abs(float(r["asi_pct"])) > t.ASYMMETRY_BAND_PCT
        ),
        asi_sessions=sum(1 for r in asi if r["asi_pct"] is not None),
        sessions_not_as_prescribed=sum(
            1 for r in results["patient_sessions"] if str(r["as_prescribed"]).startswith("no:")
        ),
        vl_sets_above_prescription=sum(
            1 for r in vl if float(r["velocity_loss_pct"]) > float(r["prescribed_max_pct"] or limit)
        ),
        vl_sets=len(vl),
        open_alerts=_i(summary.get("open_alerts")),
        notes=len(notes),
        relapse_notes=sum(1 for r in notes if r["relapse"]),
    )


def contradictions(facts: Facts, results: Mapping[str, Sequence[Mapping[str, Any]]]) -> list[str]:
    """Statements in the report that disagree with each other (empty when consistent).

    The rendered-output test asserts this is empty for the seeded patient; the report prints
    any it finds instead of hiding them.
    """
    out = []
    f = facts
    sessions = results["patient_sessions"]
    if f.sessions != sum(1 for r in sessions if f.period_start <= r["time"] <= f.period_end):
        out.append("the summary's session count differs from the sessions table")
    if f.lapses and f.lapses[-1].ongoing and f.last_session and f.days_since_last_session:
        lp = f.lapses[-1]
        if lp.start_kind == "session" and lp.start != f.last_session:
            out.append("the ongoing lapse does not start at the last session")
    for lp in f.lapses:
        if lp.start < (f.care_start or lp.start):
            out.append(f"a lapse starts {lp.start:%Y-%m-%d}, before care started")
    for a in results["patient_alerts"]:
        if a["rule"] == "low adherence" and "rolling 4-week" not in str(a["reading"]):
            out.append("a low-adherence alert does not name its window")
    if f.compliance is not None and f.completed > f.attended:
        out.append("more sessions completed as prescribed than attended")
    return out
