"""The printable patient progress report: one self-contained HTML file with PNG charts.

It runs the *patient progress dashboard's own queries* (:mod:`dashboards.queries`,
expanded by :mod:`dashboards.macros` exactly as Grafana would for ``patient = <id>`` and
the report period), derives the facts a therapist reads first
(:mod:`dashboards.report_model`) and embeds the charts (:mod:`dashboards.report_charts`)
as base64 PNGs, so the file prints or attaches to a clinical note as it is.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final

from dashboards import queries, report_charts
from dashboards.macros import Context, TimeRange, Variable
from dashboards.report_html import render_html
from dashboards.report_model import Facts, contradictions, derive

log = logging.getLogger(__name__)

PATIENT_QUERIES: Final = (
    "patient_summary",
    "patient_prescription",
    "patient_lapses",
    "patient_calendar",
    "patient_adherence_weekly",
    "patient_mcv_reference_load",
    "patient_e1rm_weekly",
    "patient_sides",
    "patient_load_progression",
    "patient_velocity_loss",
    "patient_notes",
    "patient_outcomes",
    "patient_outcome_change",
    "patient_sessions",
    "patient_alerts",
)
DEFAULT_WEEKS: Final = 12


@dataclass(frozen=True, slots=True)
class Report:
    facts: Facts
    results: Mapping[str, list[dict[str, Any]]]
    charts: Mapping[str, bytes | None]  # name -> PNG, None when there is nothing to draw
    html: str
    problems: list[str]


def gather(
    conn: Any, patient_id: str, period: TimeRange, timescaledb: bool = False
) -> dict[str, list[dict[str, Any]]]:
    ctx = Context(period, [Variable("patient", patient_id)], timescaledb=timescaledb)
    out = {}
    for name in PATIENT_QUERIES:
        out[name] = queries.run(conn, name, ctx).dicts()
        log.debug("%s: %d rows", name, len(out[name]))
    return out


def build(conn: Any, patient_id: str, period: TimeRange, timescaledb: bool = False) -> Report:
    first = gather(conn, patient_id, period, timescaledb)
    summary = first["patient_summary"]
    # the period starts no earlier than care: run the charts' queries over that period
    start = summary[0]["period_start"] if summary and summary[0]["period_start"] else period.start
    real = TimeRange(start, period.end)
    results = gather(conn, patient_id, real, timescaledb) if start != period.start else first
    facts = derive(patient_id, real.start, real.end, results)
    tz, s, e = facts.time_zone, real.start, real.end
    r = results
    charts = {
        "calendar": report_charts.calendar(r["patient_calendar"], s, e, tz),
        "adherence": report_charts.adherence(r["patient_adherence_weekly"], tz),
        "strength": report_charts.strength(
            r["patient_e1rm_weekly"], r["patient_mcv_reference_load"], facts.lapses, s, e, tz
        ),
        "load": report_charts.load(r["patient_load_progression"], r["patient_notes"], s, e, tz),
        "sides": report_charts.sides(r["patient_sides"], facts.lapses, s, e, tz),
        "effort": report_charts.effort(r["patient_notes"], s, e, tz),
        "velocity_loss": report_charts.velocity_loss(r["patient_velocity_loss"], s, e, tz),
        "outcomes": report_charts.outcomes(r["patient_outcomes"], tz),
    }
    problems = contradictions(facts, results)
    return Report(facts, results, charts, render_html(facts, results, charts, problems), problems)


def period_ending(end: datetime | None = None, weeks: int = DEFAULT_WEEKS) -> TimeRange:
    end = end or datetime.now(UTC)
    return TimeRange(end - timedelta(weeks=weeks), end)


def write(report: Report, out_dir: Path) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"patient-{report.facts.patient_id}.html"
    path.write_text(report.html, encoding="utf-8")
    return path
