"""Every dashboard panel and variable query, expanded as Grafana does, on the real database.

Plain PostgreSQL (the shared server): a fresh migrated database seeded through storage's
write path, queries run as each datasource's role (the clinic role for clinic dashboards,
the operations role for the operations folder) with single, multi and All selections and
several time ranges. TimescaleDB (pglite): the same with ``timescaledb: true`` macros.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
import pytest
from psycopg import sql

from dashboards.builders import BuiltDashboard, build_all
from dashboards.macros import ALL, Context, TimeRange, Variable
from dashboards.queries import Query, run
from dashboards.tenants import Clinic, Tenants, load
from storage.tenants import OPS_ROLE, add_clinic, clinic_role_name, ensure_ops_role, regrant
from tests.integration.dashboard_harness import WIDE, run_dashboard
from tests.integration.dashboards_seed import (
    TIME_ZONE,
    WEEKS,
    SeedFleet,
    seed,
    session_starts,
)
from tests.integration.storage_support import migrated_database

pytestmark = pytest.mark.integration

ALWAYS_EMPTY_OK = {
    "Fault events",
    "Machine alerts",
    "Lapses (no session for over 7 days while a prescription is active)",
    "Effort, fatigue and symptom notes",
}
"""Panels whose wide-range result may legitimately be empty for some selection (only the
seed's report patient lapses and has notes; the panels then show their no-value text)."""


@dataclass(frozen=True)
class Seeded:
    admin: str
    fleet: SeedFleet
    tenants: Tenants
    dashboards: list[BuiltDashboard]


@pytest.fixture(scope="module")
def seeded(admin_dsn: str) -> Iterator[Seeded]:
    tag = uuid.uuid4().hex[:6]
    fleet = SeedFleet(clinics=(f"q{tag}a", f"q{tag}b"))
    base = load()
    tenants = Tenants(
        base.database, tuple(Clinic(c, f"Clinic {c}", 2 + i) for i, c in enumerate(fleet.clinics))
    )
    try:
        with migrated_database(admin_dsn) as db:
            with psycopg.connect(db.owner, autocommit=True) as conn:
                seed(conn, fleet)
            with psycopg.connect(db.admin, autocommit=True) as conn:
                for c in fleet.clinics:
                    add_clinic(conn, c, password=uuid.uuid4().hex)
                if conn.execute(
                    "SELECT 1 FROM pg_roles WHERE rolname = %s", (OPS_ROLE,)
                ).fetchone():
                    regrant(conn)  # shared role: never reset its password under others
                else:
                    ensure_ops_role(conn)
            yield Seeded(db.admin, fleet, tenants, build_all(tenants))
    finally:
        # clinic roles are cluster-wide; their grants went with the dropped database
        with psycopg.connect(admin_dsn, autocommit=True) as conn:
            for c in fleet.clinics:
                conn.execute(
                    sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(clinic_role_name(c)))
                )


@contextmanager
def as_role(admin_dsn: str, role: str, schema: str) -> Iterator[psycopg.Connection[Any]]:
    """A connection that behaves like the datasource's login: the role, with the
    search_path configured for it (SET ROLE alone would not apply role settings)."""
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        row = conn.execute(
            "SELECT s.setconfig FROM pg_db_role_setting s JOIN pg_roles r ON r.oid = s.setrole "
            "WHERE r.rolname = %s AND s.setdatabase = 0",
            (role,),
        ).fetchone()
        paths = [
            c.split("=", 1)[1] for c in (row[0] if row else []) if c.startswith("search_path=")
        ]
        assert paths, f"role {role} has no search_path setting"
        assert schema in paths[0]
        conn.execute(sql.SQL("SET ROLE {}").format(sql.Identifier(role)))
        conn.execute(
            sql.SQL("SELECT set_config('search_path', {}, false)").format(sql.Literal(paths[0]))
        )
        yield conn


def _role_for(s: Seeded, d: BuiltDashboard) -> tuple[str, str]:
    for c in s.tenants.clinics:
        if d.folder_uid == c.folder_uid:
            return clinic_role_name(c.id), "clinic"
    return OPS_ROLE, "ops"


def _dashboard_ids() -> list[int]:
    """Operations (2) and two clinics (3 each), as build_all lays them out."""
    return list(range(2 + 3 * 2))


@pytest.mark.parametrize("index", _dashboard_ids())
def test_every_panel_query_runs_as_grafana_would(seeded: Seeded, index: int) -> None:
    d = seeded.dashboards[index]
    role, schema = _role_for(seeded, d)
    now = datetime.now(UTC)
    with as_role(seeded.admin, role, schema) as conn:
        results = run_dashboard(conn, d.model, now, timescaledb=False)
    assert results
    for (panel, mode, label), result in results.items():
        if label == WIDE and panel not in ALWAYS_EMPTY_OK:
            assert result.rows, f"{d.path}: {panel!r} empty for {mode} selection over {label}"
        if label == "future" and result.query.format == "time_series":
            assert not result.rows, f"{panel!r} returned rows for a future range"


def test_all_dashboards_are_covered(seeded: Seeded) -> None:
    assert len(seeded.dashboards) == len(_dashboard_ids())


def test_a_clinic_datasource_sees_no_other_clinics_patient(seeded: Seeded) -> None:
    a, b = seeded.fleet.clinics
    other_patient = seeded.fleet.patient_id(b, 0)
    now = datetime.now(UTC)
    ctx = Context(TimeRange(seeded.fleet.start_datetime, now), [Variable("patient", other_patient)])
    with as_role(seeded.admin, clinic_role_name(a), "clinic") as conn:
        for name in (
            "patient_sessions",
            "patient_calendar",
            "patient_adherence_weekly",
            "patient_outcomes",
            "patient_mcv_reference_load",
        ):
            assert run(conn, name, ctx).rows == [], name
    with as_role(seeded.admin, clinic_role_name(b), "clinic") as conn:
        assert run(conn, "patient_sessions", ctx).rows


def test_operations_role_cannot_run_patient_panels(seeded: Seeded) -> None:
    now = datetime.now(UTC)
    ctx = Context(
        TimeRange(seeded.fleet.start_datetime, now),
        [Variable("patient", seeded.fleet.report_patient)],
    )
    with as_role(seeded.admin, OPS_ROLE, "ops") as conn, pytest.raises(psycopg.Error):
        run(conn, "patient_sessions", ctx)


# --- TimescaleDB tier ---------------------------------------------------------------


@pytest.mark.timescale
def test_every_panel_query_runs_on_timescaledb(timescale_dsn: str) -> None:
    """Same queries with Grafana's ``timescaledb: true`` expansion (time_bucket) on the
    TimescaleDB schema: hypertables and continuous aggregates behind the same views. pglite
    has one shared session: unique clinic ids isolate this test's rows."""
    from storage.migrate import migrate

    tag = uuid.uuid4().hex[:6]
    fleet = SeedFleet(clinics=(f"t{tag}a", f"t{tag}b"))
    tenants = Tenants(
        load().database, tuple(Clinic(c, c, 2 + i) for i, c in enumerate(fleet.clinics))
    )
    with psycopg.connect(timescale_dsn, autocommit=True, prepare_threshold=None) as conn:
        conn.execute("DISCARD ALL")  # the one shared session may carry another test's settings
        conn.execute("SET search_path = sledfleet, public")
        migrate(conn, "timescale")
        seed(conn, fleet, flavour="timescale", mode="insert")
        conn.execute("SET search_path = sledfleet, public")  # the owner's default
        now = datetime.now(UTC)
        checked = 0
        for d in build_all(tenants):
            results = run_dashboard(
                conn,
                d.model,
                now,
                timescaledb=True,
                modes=("all",),
                only={"clinic": fleet.clinics},
            )
            for (panel, _mode, label), result in results.items():
                checked += 1
                if label == WIDE and panel not in ALWAYS_EMPTY_OK:
                    assert result.rows, f"{d.path}: {panel!r} empty on TimescaleDB"
        assert checked > 100
        _time_group_probe(conn, now)


def _time_group_probe(conn: psycopg.Connection[Any], now: datetime) -> None:
    """$__timeGroupAlias expands to time_bucket() with timescaledb: true and to epoch
    arithmetic otherwise; on TimescaleDB both must give the same hourly buckets."""
    text = (
        "SELECT $__timeGroupAlias(start_time, '1h'), count(*) AS sessions FROM v_sessions "
        "WHERE $__timeFilter(start_time) GROUP BY 1 ORDER BY 1"
    )
    query = Query(
        "time_group_probe", text, "time_series", (("time", "timegroup"), ("sessions", "num"))
    )
    tr = TimeRange(now - timedelta(weeks=13), now)
    bucketed = run(conn, query, Context(tr, timescaledb=True))
    epoch = run(conn, query, Context(tr, timescaledb=False))
    assert "time_bucket('3600.000s',start_time)" in bucketed.sql
    assert bucketed.rows
    assert [(r[0].timestamp(), r[1]) for r in bucketed.rows] == [
        (float(r[0]), r[1]) for r in epoch.rows
    ]


# --- one definition of "completed as prescribed" -------------------------------------


def _expected_completed(fleet: SeedFleet, c: str, p: int, week: int) -> int:
    """The seed's truth: a week's second session breaks the prescription's 20 % velocity
    loss limit (OVER_LIMIT_VL), so only the first one is completed as prescribed."""
    return min(len(session_starts(fleet, c, p, week)), 1)


def test_clinic_and_patient_views_count_completed_the_same_way(seeded: Seeded) -> None:
    """Velocity loss breaks the limit in half the seeded sessions, which the stream's own
    dose count (adherence_weekly) calls completed. The patient view, the clinic view and
    the clinic dashboard panels all count them as not completed, and agree per week, per
    day and per patient."""
    fleet = seeded.fleet
    c = fleet.clinics[0]
    patients = [fleet.patient_id(c, p) for p in range(fleet.patients_per_clinic)]
    now = datetime.now(UTC)
    with psycopg.connect(seeded.admin, autocommit=True) as conn:
        stream_dose = dict(
            conn.execute(
                "SELECT week_start, avg(compliance) FROM sledfleet.adherence_weekly "
                "WHERE clinic_id = %s GROUP BY 1",
                (c,),
            ).fetchall()
        )
    with as_role(seeded.admin, clinic_role_name(c), "clinic") as conn:
        patient_rows = conn.execute(
            "SELECT patient_id, week_start, prescribed, attended, completed, compliance "
            "FROM v_patient_adherence WHERE clinic_id = %s ORDER BY 1, 2",
            (c,),
        ).fetchall()
        clinic_rows = dict(
            conn.execute(
                "SELECT week_start, mean_compliance FROM v_clinic_adherence WHERE clinic_id = %s",
                (c,),
            ).fetchall()
        )
        by_week: dict[Any, list[float]] = {}
        for pid, week_start, prescribed, _attended, completed, compliance in patient_rows:
            p, week = patients.index(pid), (week_start - fleet.start).days // 7
            assert completed == _expected_completed(fleet, c, p, week), (pid, week_start)
            assert compliance == pytest.approx(completed / prescribed)
            by_week.setdefault(week_start, []).append(compliance)
        assert set(clinic_rows) == set(by_week)
        differs = 0
        for week_start, values in by_week.items():
            mean = sum(values) / len(values)
            assert clinic_rows[week_start] == pytest.approx(mean), week_start
            differs += stream_dose[week_start] != pytest.approx(mean)
        assert differs >= 8, "the seed must exercise the velocity-loss limit"

        # the dashboards: clinic panels against the patient panels, as Grafana runs them
        span = TimeRange(fleet.start_datetime - timedelta(days=1), now)  # local midnights
        zone = ZoneInfo(TIME_ZONE)
        clinic_var = Variable("clinic", [c], multi=True, include_all=True, options=[c])
        patient_var = Variable("patient", [ALL], multi=True, include_all=True, options=patients)
        daily = run(conn, "clinic_sessions_daily", Context(span, [clinic_var]))
        clinic_daily = {
            t.astimezone(zone).date(): n
            for t, n in zip(daily.column("time"), daily.column("completed_sessions"), strict=True)
            if n
        }
        per_patient_daily: dict[Any, int] = {}
        table = run(conn, "clinic_patients_week", Context(span, [clinic_var, patient_var]))
        week_compliance = dict(
            zip(table.column("patient_id"), table.column("compliance"), strict=True)
        )
        for pid in patients:
            ctx = Context(span, [Variable("patient", pid)])
            cal = run(conn, "patient_calendar", ctx)
            for t, n in zip(cal.column("time"), cal.column("as_prescribed"), strict=True):
                if n:
                    day = t.astimezone(zone).date()
                    per_patient_daily[day] = per_patient_daily.get(day, 0) + n
            summary = run(conn, "patient_summary", ctx).dicts()[0]
            assert week_compliance[pid] == pytest.approx(summary["week_compliance"]), pid
        assert clinic_daily == per_patient_daily
        assert sum(per_patient_daily.values()) == sum(
            _expected_completed(fleet, c, p, w) for p in range(len(patients)) for w in range(WEEKS)
        )
