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

import psycopg
import pytest
from psycopg import sql

from dashboards.builders import BuiltDashboard, build_all
from dashboards.macros import Context, TimeRange, Variable
from dashboards.queries import Query, run
from dashboards.tenants import Clinic, Tenants, load
from storage.tenants import OPS_ROLE, add_clinic, clinic_role_name, ensure_ops_role, regrant
from tests.integration.dashboard_harness import WIDE, run_dashboard
from tests.integration.dashboards_seed import SeedFleet, seed
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
    tenants = Tenants(base.database, tuple(Clinic(c, f"Clinic {c}") for c in fleet.clinics))
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
    tenants = Tenants(load().database, tuple(Clinic(c, c) for c in fleet.clinics))
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
