"""Facts the patient report derives from query rows (pure)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from dashboards import report_charts
from dashboards.report import render_html
from dashboards.report_model import derive, lapses, reference_load, weekly_trend

T0 = datetime(2026, 9, 7, 9, 0, tzinfo=UTC)


def _d(days: float) -> datetime:
    return T0 + timedelta(days=days)


def test_lapses_between_sessions_and_at_the_edges() -> None:
    sessions = [_d(0), _d(3), _d(7), _d(30), _d(33)]
    found = lapses(sessions, _d(-2), _d(45))
    assert [(lp.start, lp.end, lp.days, lp.ongoing) for lp in found] == [
        (_d(7), _d(30), 23.0, False),
        (_d(33), _d(45), 12.0, True),
    ]
    assert lapses([], _d(0), _d(6)) == []
    assert lapses([], _d(0), _d(8))[0].ongoing


def test_weekly_trend_first_and_last_week_change() -> None:
    rows = [{"time": _d(7), "v": 110.0}, {"time": _d(0), "v": 100.0}, {"time": _d(14), "v": None}]
    tr = weekly_trend(rows, "v", "e1RM", "kg")
    assert tr is not None
    assert (tr.first, tr.last) == (100.0, 110.0)
    assert tr.change_pct == pytest.approx(10.0)
    assert weekly_trend([], "v", "x", "kg") is None


def test_reference_load_is_the_one_trained_most_weeks() -> None:
    rows = [
        {"metric": "50.0 kg"},
        {"metric": "40.0 kg"},
        {"metric": "40.0 kg"},
        {"metric": "60.0 kg"},
        {"metric": "60.0 kg"},
    ]
    assert reference_load(rows) == "40.0 kg"
    assert reference_load([]) is None


def _results() -> dict[str, list[dict[str, object]]]:
    weeks = [_d(7 * w) for w in range(4)]
    return {
        "patient_summary": [{"rolling4_adherence": 0.5, "days_since_last_session": 9.0}],
        "patient_prescription": [],
        "patient_calendar": [{"time": w, "sessions": 1, "reps": 18} for w in weeks[:2]],
        "patient_adherence_weekly": [
            {
                "time": w,
                "prescribed": 2,
                "attended": a,
                "completed": a,
                "adherence": a / 2,
                "rolling4_adherence": 0.5,
            }
            for w, a in zip(weeks, (2, 2, 0, 0), strict=True)
        ],
        "patient_mcv_reference_load": [
            {"time": w, "metric": "40.0 kg", "mcv_ms": 0.5 + i / 100}
            for i, w in enumerate(weeks[:2])
        ],
        "patient_power_reference_load": [],
        "patient_e1rm_weekly": [
            {
                "time": w,
                "e1rm_kg": 70.0 + i,
                "e1rm_low_kg": 65.0,
                "e1rm_high_kg": 75.0,
                "estimates": 2,
            }
            for i, w in enumerate(weeks[:2])
        ],
        "patient_asymmetry": [
            {"time": w, "asi_pct": a} for w, a in ((weeks[0], 12.0), (weeks[1], -4.0))
        ],
        "patient_velocity_loss": [
            {"time": weeks[0], "velocity_loss_pct": 25.0, "prescribed_max_pct": 20.0},
            {"time": weeks[1], "velocity_loss_pct": 15.0, "prescribed_max_pct": None},
        ],
        "patient_outcomes": [],
        "patient_sessions": [{"time": w} for w in weeks[:2]],
        "patient_alerts": [],
    }


def test_derive_summarises_and_the_html_says_it() -> None:
    results = _results()
    facts = derive("p-1", _d(-1), _d(30), results)
    assert (facts.sessions, facts.prescribed, facts.attended) == (2, 8, 4)
    assert facts.adherence == 0.5
    assert [round(lp.days) for lp in facts.lapses] == [23]
    assert facts.lapses[0].ongoing
    assert facts.e1rm is not None
    assert facts.e1rm.change_pct == pytest.approx(100 / 70)
    assert facts.asi_sessions_outside_band == 1
    assert facts.vl_sets_above_prescription == 1
    charts = dict.fromkeys(
        ("strength", "calendar", "adherence", "asymmetry", "velocity_loss", "outcomes"), b"\x89PNG"
    )
    text = render_html(facts, results, charts)
    assert "no prescription on record" in text
    assert "(ongoing)" in text
    assert 'id="sessions">2<' in text


def test_charts_render_pngs_even_without_data() -> None:
    r = _results()
    pngs = [
        report_charts.calendar(r["patient_calendar"], _d(-1), _d(30)),
        report_charts.adherence([]),
        report_charts.strength([], [], []),
        report_charts.asymmetry([], []),
        report_charts.velocity_loss(r["patient_velocity_loss"]),
        report_charts.outcomes([], _d(-1), _d(30)),
    ]
    assert all(p.startswith(b"\x89PNG") for p in pngs)
