"""The shared query files parse, declare their result and use only storage's views."""

from __future__ import annotations

import re

import pytest

from dashboards import queries, thresholds

VIEW_RE = re.compile(r"\b(?:FROM|JOIN)\s+([a-z_][a-z0-9_.]*)", re.IGNORECASE)


def test_all_queries_parse_with_format_and_columns() -> None:
    qs = queries.all_queries()
    assert len(qs) >= 30
    for q in qs.values():
        assert q.format in ("time_series", "table")
        assert q.columns
        if q.format == "time_series":
            assert q.column_names[0] == "time"
        assert not q.sql.startswith("--")


def test_queries_read_only_unqualified_dashboard_views() -> None:
    """Each datasource's role picks schema clinic/ops/sledfleet via its search_path."""
    for q in queries.all_queries().values():
        for rel in VIEW_RE.findall(q.sql):
            if rel.upper() in ("LATERAL",) or rel.startswith("("):
                continue
            assert rel.startswith("v_"), f"{q.name} reads {rel}"
            assert "." not in rel, f"{q.name} reads {rel}"


def test_constants_are_substituted() -> None:
    q = queries.get("patient_e1rm_weekly")
    assert "{{" not in q.sql
    assert repr(float(thresholds.E1RM_MIN_REL_UNCERTAINTY)) in q.sql


def test_parse_rejects_bad_headers() -> None:
    with pytest.raises(ValueError, match="format"):
        queries.parse("x", "-- columns: a:num\nSELECT 1")
    with pytest.raises(ValueError, match="kind"):
        queries.parse("x", "-- format: table\n-- columns: a:float\nSELECT 1")
    with pytest.raises(ValueError, match="constant"):
        queries.parse("x", "-- format: table\n-- columns: a:num\nSELECT {{NOPE}}")
    with pytest.raises(KeyError):
        queries.get("no_such_query")


def test_variables_are_found_but_macros_are_not() -> None:
    q = queries.get("clinic_patients_week")
    assert q.variables == {"clinic", "patient"}


def test_patient_queries_put_booleans_into_words() -> None:
    """A therapist reads 'yes' or 'no: <reason>', never a raw true/false cell."""
    for name, q in queries.all_queries().items():
        if name.startswith("patient_"):
            assert "bool" not in {kind for _, kind in q.columns}, name
