"""Facts the patient report takes from query rows, and the HTML it renders (pure)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from dashboards import report_charts
from dashboards.report_charts import EMPTY
from dashboards.report_html import Clock, render_html, table
from dashboards.report_model import contradictions, derive, lapses, weekly_trend

T0 = datetime(2026, 9, 7, 9, 0, tzinfo=UTC)


def _d(days: float) -> datetime:
    return T0 + timedelta(days=days)


def test_lapses_come_from_the_sql_rows_with_their_bounds() -> None:
    rows = [
        {"lapse_start": _d(7), "start_kind": "session", "lapse_end": _d(30),
         "end_kind": "session", "days": 23.0},
        {"lapse_start": _d(33), "start_kind": "session", "lapse_end": _d(45),
         "end_kind": "now", "days": 12.0},
    ]  # fmt: skip
    found = lapses(rows)
    assert [(lp.start, lp.end, lp.days, lp.ongoing) for lp in found] == [
        (_d(7), _d(30), 23.0, False),
        (_d(33), _d(45), 12.0, True),
    ]


def test_weekly_trend_first_and_last_week_change() -> None:
    rows = [{"time": _d(7), "v": 110.0}, {"time": _d(0), "v": 100.0}, {"time": _d(14), "v": None}]
    tr = weekly_trend(rows, "v", "e1RM", "kg")
    assert tr is not None
    assert (tr.first, tr.last) == (100.0, 110.0)
    assert tr.change_pct == pytest.approx(10.0)
    assert weekly_trend([], "v", "x", "kg") is None


def _results(with_data: bool = True) -> dict[str, list[dict[str, Any]]]:
    weeks = [_d(7 * w) for w in range(4)]
    sessions = [_d(0), _d(3), _d(7)] if with_data else []
    return {
        "patient_summary": [
            {
                "time_zone": "Europe/Berlin", "care_start": _d(0), "period_start": _d(0),
                "period_end": _d(27), "weeks": 4, "prescribed": 8, "attended": 3,
                "completed": 1, "adherence": 3 / 8, "compliance": 1 / 8, "iso_week": "2026-W40",
                "week_adherence": 0.0, "week_compliance": 0.0, "rolling4_adherence": 0.375,
                "rolling4_compliance": 0.125, "last_session": sessions[-1] if sessions else None,
                "days_since_last_session": 20.0, "sessions": len(sessions), "asi_pct": 12.5,
                "weaker_side": "left", "open_alerts": 1,
            }
        ],
        "patient_prescription": [],
        "patient_lapses": [
            {"lapse_start": _d(7), "start_kind": "session", "lapse_end": _d(27),
             "end_kind": "now", "days": 20.0}
        ] if with_data else [],
        "patient_calendar": [{"time": s, "sessions": 1, "as_prescribed": 1} for s in sessions],
        "patient_adherence_weekly": [
            {"time": w, "prescribed": 2, "attended": a, "completed": min(a, 1),
             "adherence": a / 2, "rolling4_adherence": 0.5}
            for w, a in zip(weeks, (2, 1, 0, 0), strict=True)
        ] if with_data else [],
        "patient_mcv_reference_load": [],
        "patient_e1rm_weekly": [],
        "patient_sides": [
            {"time": s, "left_force_n": 300.0, "right_force_n": 350.0, "asi_pct": 14.3,
             "weaker_side": "left"} for s in sessions
        ],
        "patient_load_progression": [
            {"time": s, "max_load_kg": 50.0, "prescribed_load_kg": 50.0, "volume_load_kg": 900.0}
            for s in sessions
        ],
        "patient_velocity_loss": [
            {"time": s, "velocity_loss_pct": vl, "prescribed_max_pct": 20.0}
            for s, vl in zip(sessions, (12.0, 24.0, 18.0), strict=False)
        ],
        "patient_notes": [],
        "patient_outcomes": [],
        "patient_outcome_change": [],
        "patient_sessions": [
            {"time": s, "machine_id": "m1", "duration_s": 1200.0, "sets": 4, "reps": 24,
             "max_load_kg": 50.0, "mean_mcv_ms": 0.5, "max_velocity_loss_pct": 24.0,
             "mean_asi_pct": 14.3, "weaker_side": "left", "e1rm_kg": None,
             "as_prescribed": "yes" if i == 0 else "no: velocity loss above 20 % in 1 set(s)"}
            for i, s in enumerate(sessions)
        ],
        "patient_alerts": [
            {"time": _d(20), "rule": "low adherence", "severity": "warning",
             "reading": "rolling 4-week adherence 38 % (below 75 %)", "state": "open"}
        ],
    }  # fmt: skip


def test_derive_takes_every_number_from_the_summary_row() -> None:
    f = derive("p1", _d(-30), _d(27), _results())
    assert (f.prescribed, f.attended, f.completed, f.sessions) == (8, 3, 1, 3)
    assert f.period_start == _d(0)  # the SQL's period, not the requested start
    assert f.adherence == pytest.approx(3 / 8)
    assert f.time_zone == "Europe/Berlin"
    assert f.weaker_side_latest == "left"
    assert f.sessions_not_as_prescribed == 2
    assert f.vl_sets_above_prescription == 1
    assert f.asi_sessions_outside_band == 3
    assert contradictions(f, _results()) == []


def test_contradictions_are_found() -> None:
    results = _results()
    results["patient_summary"][0]["sessions"] = 5
    results["patient_alerts"][0]["reading"] = "adherence 0.38"
    f = derive("p1", _d(-30), _d(27), results)
    problems = contradictions(f, results)
    assert any("session count" in p for p in problems)
    assert any("window" in p for p in problems)


def test_report_names_the_time_zone_and_has_no_raw_booleans() -> None:
    results = _results()
    f = derive("p1", _d(-30), _d(27), results)
    html = render_html(f, results, dict.fromkeys(EMPTY))
    assert "Europe/Berlin (UTC+0200)" in html  # 27 days after 7 Sep: still summer time
    assert "2026-09-07 11:00" in html  # 09:00 UTC printed in Berlin time
    assert ">True<" not in html
    assert ">False<" not in html
    assert "no: velocity loss above 20 %" in html
    with pytest.raises(TypeError, match="boolean"):
        table([{"x": True}], [("x", "x", "")], Clock("UTC"), "t", "none")


def test_empty_charts_become_a_sentence_saying_how_to_record_the_data() -> None:
    results = _results(with_data=False)
    f = derive("p1", _d(-30), _d(27), results)
    charts = {
        "calendar": report_charts.calendar([], _d(0), _d(27), "UTC"),
        "outcomes": report_charts.outcomes([], "UTC"),
        "effort": report_charts.effort([], _d(0), _d(27), "UTC"),
    }
    assert set(charts.values()) == {None}
    html = render_html(f, results, dict.fromkeys(EMPTY))
    for name, sentence in EMPTY.items():
        assert f'id="chart-{name}-empty"' in html
        assert "sledfleet" in sentence or "no" in sentence.lower()
    assert "sledfleet outcome add" in html
    assert "sledfleet note add" in html
    assert "<img" not in html


def test_charts_draw_pngs_when_there_is_data() -> None:
    r = _results()
    png = report_charts.sides(r["patient_sides"], [], _d(0), _d(27), "Europe/Berlin")
    assert png is not None
    assert png.startswith(b"\x89PNG")
    png = report_charts.outcomes(
        [{"time": _d(0), "metric": "T25FW (s)", "value": 9.0},
         {"time": _d(20), "metric": "T25FW (s)", "value": 7.0}], "UTC",
    )  # fmt: skip
    assert png is not None
    assert png.startswith(b"\x89PNG")
