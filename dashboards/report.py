"""The printable patient progress report: one self-contained HTML file with PNG charts.

It runs the *patient progress dashboard's own queries* (:mod:`dashboards.queries`,
expanded by :mod:`dashboards.macros` exactly as Grafana would for ``patient = <id>`` and
the report period), derives the facts a therapist reads first
(:mod:`dashboards.report_model`) and embeds the charts (:mod:`dashboards.report_charts`)
as base64 PNGs, so the file prints or attaches to a clinical note as it is.
"""

from __future__ import annotations

import base64
import html
import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final

from dashboards import queries, report_charts
from dashboards import thresholds as t
from dashboards.macros import Context, TimeRange, Variable
from dashboards.report_model import Facts, Trend, derive

log = logging.getLogger(__name__)

PATIENT_QUERIES: Final = (
    "patient_summary",
    "patient_prescription",
    "patient_calendar",
    "patient_adherence_weekly",
    "patient_mcv_reference_load",
    "patient_power_reference_load",
    "patient_e1rm_weekly",
    "patient_asymmetry",
    "patient_velocity_loss",
    "patient_outcomes",
    "patient_sessions",
    "patient_alerts",
)
DEFAULT_WEEKS: Final = 12


@dataclass(frozen=True, slots=True)
class Report:
    facts: Facts
    results: Mapping[str, list[dict[str, Any]]]
    charts: Mapping[str, bytes]  # name -> PNG
    html: str


def gather(
    conn: Any, patient_id: str, period: TimeRange, timescaledb: bool = False
) -> dict[str, list[dict[str, Any]]]:
    ctx = Context(period, [Variable("patient", patient_id)], timescaledb=timescaledb)
    out = {}
    for name in PATIENT_QUERIES:
        out[name] = queries.run(conn, name, ctx).dicts()
        log.debug("%s: %d rows", name, len(out[name]))
    out["patient_sessions"].sort(key=lambda r: r["time"])
    return out


def build(conn: Any, patient_id: str, period: TimeRange, timescaledb: bool = False) -> Report:
    results = gather(conn, patient_id, period, timescaledb)
    facts = derive(patient_id, period.start, period.end, results)
    charts = {
        "calendar": report_charts.calendar(results["patient_calendar"], period.start, period.end),
        "adherence": report_charts.adherence(results["patient_adherence_weekly"]),
        "strength": report_charts.strength(
            results["patient_e1rm_weekly"], results["patient_mcv_reference_load"], facts.lapses
        ),
        "asymmetry": report_charts.asymmetry(results["patient_asymmetry"], facts.lapses),
        "velocity_loss": report_charts.velocity_loss(results["patient_velocity_loss"]),
        "outcomes": report_charts.outcomes(results["patient_outcomes"], period.start, period.end),
    }
    return Report(facts, results, charts, render_html(facts, results, charts))


def period_ending(end: datetime | None = None, weeks: int = DEFAULT_WEEKS) -> TimeRange:
    end = end or datetime.now(UTC)
    return TimeRange(end - timedelta(weeks=weeks), end)


def write(report: Report, out_dir: Path) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"patient-{report.facts.patient_id}.html"
    path.write_text(report.html, encoding="utf-8")
    return path


# --- HTML ------------------------------------------------------------------------------

_CSS: Final = """
body{font-family:system-ui,Segoe UI,Helvetica,Arial,sans-serif;margin:24px;color:#222;
max-width:900px}
h1{font-size:20px;margin:0 0 4px}h2{font-size:15px;margin:22px 0 6px;border-bottom:1px solid #ccc}
.meta{color:#666;font-size:12px}table{border-collapse:collapse;font-size:12px;margin:6px 0}
td,th{border:1px solid #ddd;padding:3px 7px;text-align:left}th{background:#f4f4f4}
.num{text-align:right}.warn{color:#b35900;font-weight:600}.bad{color:#b00;font-weight:600}
.ok{color:#1a7f1a;font-weight:600}img{width:100%;max-width:880px}
.note{font-size:11px;color:#666}
@media print{body{margin:8mm}h2{break-after:avoid}img{break-inside:avoid}}
"""


def _e(v: Any) -> str:
    return html.escape(str(v))


def _num(v: Any, fmt: str = "{:.2f}", unit: str = "") -> str:
    if v is None:
        return "–"
    return _e(fmt.format(float(v)) + unit)


def _date(v: datetime | None) -> str:
    return v.strftime("%Y-%m-%d") if v else "–"


def _img(name: str, png: bytes, alt: str) -> str:
    data = base64.b64encode(png).decode("ascii")
    return f'<img id="chart-{name}" alt="{_e(alt)}" src="data:image/png;base64,{data}">'


def _trend_row(tr: Trend | None, fmt: str) -> str:
    if tr is None:
        return "<td colspan=4>no data in this period</td>"
    change = tr.change_pct
    cls = "ok" if change is not None and change > 0 else "warn"
    return (
        f"<td>{_date(tr.first_week)}: {_num(tr.first, fmt)} {_e(tr.unit)}</td>"
        f"<td>{_date(tr.last_week)}: {_num(tr.last, fmt)} {_e(tr.unit)}</td>"
        f'<td class="num {cls}">{_num(change, "{:+.1f}", " %")}</td>'
    )


def _table(rows: Sequence[Mapping[str, Any]], cols: Sequence[tuple[str, str, str]]) -> str:
    if not rows:
        return '<p class="note">none in this period</p>'
    head = "".join(f"<th>{_e(label)}</th>" for _, label, _ in cols)
    body = []
    for r in rows:
        cells = []
        for key, _, fmt in cols:
            v = r.get(key)
            if isinstance(v, datetime):
                cells.append(f"<td>{_e(v.strftime('%Y-%m-%d %H:%M'))}</td>")
            elif fmt and v is not None and not isinstance(v, bool):
                cells.append(f'<td class="num">{_num(v, fmt)}</td>')
            else:
                cells.append(f"<td>{_e('–' if v is None else v)}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><tr>{head}</tr>{''.join(body)}</table>"


def render_html(
    facts: Facts, results: Mapping[str, Sequence[Mapping[str, Any]]], charts: Mapping[str, bytes]
) -> str:
    f = facts
    rx = results["patient_prescription"][0] if results["patient_prescription"] else None
    summary = results["patient_summary"][0] if results["patient_summary"] else {}
    adh_cls = "bad" if (f.adherence or 0) < t.ADHERENCE_LAPSE else "ok"
    lapse_rows = (
        "".join(
            f'<tr class="lapse"><td>{_date(lp.start)}</td><td>{_date(lp.end)}'
            f'{" (ongoing)" if lp.ongoing else ""}</td><td class="num bad">{lp.days:.0f}</td></tr>'
            for lp in f.lapses
        )
        or "<tr><td colspan=3>no lapse (no gap of more than 7 days)</td></tr>"
    )
    rx_html = (
        f"{_e(rx['sessions_per_week'])} sessions/week, {_e(rx['sets'])} × {_e(rx['reps'])} at "
        f"{_num(rx['load_kg'], '{:g}', ' kg')}, velocity loss ≤ "
        f"{_num(rx['max_velocity_loss_pct'], '{:g}', ' %')}, since {_e(rx['start_date'])}"
        if rx
        else "no prescription on record"
    )
    parts = [
        "<!DOCTYPE html><html lang=en><head><meta charset=utf-8>",
        f"<title>SledFleet progress report {_e(f.patient_id)}</title><style>{_CSS}</style>",
        "</head><body>",
        f"<h1>Hip-sled training progress: patient {_e(f.patient_id)}</h1>",
        f'<p class="meta">Period {_date(f.period_start)} to {_date(f.period_end)} · generated '
        f"{datetime.now(UTC).strftime('%Y-%m-%d %H:%M')} UTC · pseudonymous id; for clinician "
        "review, not a diagnosis.</p>",
        f"<p><b>Prescription:</b> {rx_html}</p>",
        '<h2>Summary</h2><table id="summary">',
        f'<tr><th>Sessions in period</th><td class="num" id="sessions">{f.sessions}</td></tr>',
        f'<tr><th>Adherence (attended / prescribed)</th><td class="num {adh_cls}" '
        f'id="adherence">{f.attended} / {f.prescribed} = {_num(f.adherence, "{:.0%}")}</td></tr>',
        f'<tr><th>Rolling 4-week adherence (latest week)</th><td class="num">'
        f"{_num(summary.get('rolling4_adherence'), '{:.0%}')}</td></tr>",
        f'<tr><th>Days since last session</th><td class="num">'
        f"{_num(summary.get('days_since_last_session'), '{:.1f}')}</td></tr>",
        '<tr><th>Latest session asymmetry</th><td class="num">'
        f"{_num(f.asi_latest, '{:+.1f}', ' %')}"
        f" ({f.asi_sessions_outside_band} sessions outside ±{t.ASYMMETRY_BAND_PCT:g} %)</td></tr>",
        f'<tr><th>Sets above the prescribed velocity loss</th><td class="num">'
        f"{f.vl_sets_above_prescription} of {f.vl_sets}</td></tr></table>",
        '<h2>Strength trend</h2><table id="strength"><tr><th></th><th>first week</th>'
        "<th>last week</th><th>change</th></tr>",
        f'<tr id="trend-e1rm"><th>e1RM (weekly mean)</th>{_trend_row(f.e1rm, "{:.1f}")}</tr>',
        f'<tr id="trend-mcv"><th>MCV at reference load'
        f" {_e(f.reference_load or '')}</th>{_trend_row(f.mcv, '{:.3f}')}</tr></table>",
        '<p class="note">e1RM is the load at the minimum velocity threshold of each session\'s '
        "load–velocity profile; published profiles carry 7.5–30 % error, so read it as a "
        "trend with its band, never as a single truth.</p>",
        _img("strength", charts["strength"], "e1RM and MCV at reference loads per week"),
        '<h2>Attendance</h2><table id="lapses"><tr><th>last session</th><th>next session</th>'
        f"<th>days without a session</th></tr>{lapse_rows}</table>",
        _img("calendar", charts["calendar"], "session calendar"),
        _img("adherence", charts["adherence"], "adherence per week"),
        "<h2>Asymmetry and fatigue</h2>",
        _img("asymmetry", charts["asymmetry"], "asymmetry trend with the 10 % band"),
        _img("velocity_loss", charts["velocity_loss"], "velocity loss per set"),
        "<h2>Clinical outcome tests</h2>",
        _img("outcomes", charts["outcomes"], "clinical outcome tests"),
        "<h2>Alerts</h2>",
        _table(
            results["patient_alerts"],
            [
                ("time", "time", ""),
                ("rule", "rule", ""),
                ("severity", "severity", ""),
                ("message", "message", ""),
            ],
        ),
        "<h2>Sessions</h2>",
        _table(
            results["patient_sessions"],
            [
                ("time", "start", ""),
                ("duration_s", "duration (s)", "{:.0f}"),
                ("sets", "sets", "{:.0f}"),
                ("reps", "reps", "{:.0f}"),
                ("max_load_kg", "max load (kg)", "{:g}"),
                ("mean_mcv_ms", "MCV (m/s)", "{:.3f}"),
                ("max_velocity_loss_pct", "max VL (%)", "{:.1f}"),
                ("mean_asi_pct", "ASI (%)", "{:+.1f}"),
                ("e1rm_kg", "e1RM (kg)", "{:.1f}"),
                ("completed_as_prescribed", "as prescribed", ""),
            ],
        ),
        '<script type="application/json" id="report-data">',
        html.escape(json.dumps(f.as_json()), quote=False),
        "</script></body></html>",
    ]
    return "\n".join(parts)
