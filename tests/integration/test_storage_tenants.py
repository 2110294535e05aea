"""Tenant isolation on the real PostgreSQL: clinic roles, the operations role, hostile ids."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from psycopg import errors

from storage import queries, tenants
from storage.outcomes import add as add_outcome
from storage.rows import record_row
from storage.synth import Fleet, records
from storage.writer import Batch, Writer
from tests.integration.storage_support import REPO, dsn_for, migrated_database, short_id

pytestmark = pytest.mark.integration

PASSWORD = "s3cret-test"


@pytest.fixture(scope="module")
def seeded(admin_dsn: str) -> Iterator[tuple[Any, Fleet, dict[str, str]]]:
    """Two clinics with unique ids (roles are cluster-wide), seeded and refreshed."""
    tag = short_id()
    fleet = Fleet(clinics=2, machines_per_clinic=1, patients_per_clinic=2, weeks=2)
    with migrated_database(admin_dsn) as db:
        ids = {fleet.clinic_id(c): f"{fleet.clinic_id(c)}x{tag}" for c in range(2)}
        batch = Batch()
        for original in records(fleet):
            spec, row = record_row({**original, "clinic_id": ids[original["clinic_id"]]})
            batch.add(spec, row)
        with psycopg.connect(db.owner, autocommit=True) as conn:
            Writer(conn, "postgres").write(batch)
            queries.refresh(conn, "postgres")
            add_outcome(conn, "c1-p1", "t25fw", 7.1, fleet.start)
        roles = {}
        with psycopg.connect(db.admin, autocommit=True) as admin:
            for clinic in ids.values():
                roles[clinic], _ = tenants.add_clinic(admin, clinic, PASSWORD)
            tenants.ensure_ops_role(admin, PASSWORD)
        try:
            yield db, fleet, ids
        finally:
            with psycopg.connect(db.admin, autocommit=True) as admin:
                for role in roles.values():
                    admin.execute(f'DROP OWNED BY "{role}"')
                    admin.execute(f'DROP ROLE IF EXISTS "{role}"')
                admin.execute("DROP OWNED BY sledfleet_ops")


def role_conn(db: Any, role: str) -> psycopg.Connection[Any]:
    return psycopg.connect(dsn_for(db.admin, user=role, password=PASSWORD), autocommit=True)


VIEWS_WITH_PATIENTS = [
    "v_patient_daily",
    "v_patient_weekly",
    "v_sessions",
    "v_sets",
    "v_patients",
    "v_patient_adherence",
    "v_prescriptions",
    "v_patient_load_weekly",
    "v_outcomes",
]


def test_clinic_role_sees_only_its_own_rows(seeded: Any) -> None:
    db, _fleet, ids = seeded
    mine, other = ids["c1"], ids["c2"]
    with role_conn(db, tenants.clinic_role_name(mine)) as conn:
        for view in [
            *VIEWS_WITH_PATIENTS,
            "v_clinic_daily",
            "v_fleet_machines",
            "v_machine_hourly",
            "v_machine_status",
        ]:
            clinics = {r[0] for r in conn.execute(f"SELECT DISTINCT clinic_id FROM {view}")}
            if view != "v_outcomes":
                assert clinics == {mine}, view
        # another clinic's patient: no rows, whatever the filter says
        assert conn.execute(
            "SELECT count(*) FROM v_sessions WHERE patient_id = 'c2-p1'"
        ).fetchone() == (0,)
        assert conn.execute(
            "SELECT count(*) FROM v_patient_daily WHERE clinic_id = %s", (other,)
        ).fetchone() == (0,)
        assert conn.execute("SELECT count(*) FROM v_outcomes").fetchone() == (1,)


@pytest.mark.parametrize(
    "table",
    [
        "sledfleet.reps",
        "sledfleet.sessions",
        "sledfleet.v_sessions",
        "sledfleet.agg_patient_15m",
        "sledfleet.clinic_roles",
        "ops.v_clinic_daily",
    ],
)
def test_clinic_role_cannot_read_base_tables(seeded: Any, table: str) -> None:
    db, _fleet, ids = seeded
    with (
        role_conn(db, tenants.clinic_role_name(ids["c1"])) as conn,
        pytest.raises(errors.InsufficientPrivilege),
    ):
        conn.execute(f"SELECT * FROM {table} LIMIT 1")


def test_clinic_role_cannot_leak_rows_through_a_function(seeded: Any) -> None:
    """security_barrier: a leaky predicate is evaluated after the view's clinic filter."""
    db, _fleet, ids = seeded
    with role_conn(db, tenants.clinic_role_name(ids["c1"])) as conn:
        conn.execute(
            "CREATE FUNCTION pg_temp.leak(text) RETURNS boolean LANGUAGE plpgsql COST 0.0000001"
            " AS $$ BEGIN RAISE NOTICE 'saw %', $1; RETURN true; END $$"
        )
        seen: list[str] = []
        conn.add_notice_handler(lambda d: seen.append(d.message_primary or ""))
        conn.execute("SELECT * FROM v_sessions WHERE pg_temp.leak(patient_id)").fetchall()
        assert seen
        assert all("c1-" in s for s in seen), seen


def test_ops_role_sees_fleet_aggregates_but_no_patient_rows(seeded: Any) -> None:
    db, _fleet, _ids = seeded
    with role_conn(db, tenants.OPS_ROLE) as conn:
        assert conn.execute("SELECT count(DISTINCT clinic_id) FROM v_clinic_daily").fetchone() == (
            2,
        )
        assert conn.execute("SELECT count(*) FROM v_fleet_machines").fetchone() == (2,)
        cols = conn.execute(
            "SELECT table_name, column_name FROM information_schema.columns "
            "WHERE table_schema = 'ops'"
        ).fetchall()
        assert cols
        assert not [c for c in cols if c[1] in ("patient_id", "subject_id")]
        for view in VIEWS_WITH_PATIENTS:
            with pytest.raises(errors.UndefinedTable):
                conn.execute(f"SELECT * FROM {view}")
        with pytest.raises(errors.InsufficientPrivilege):
            conn.execute("SELECT * FROM sledfleet.reps")
        with pytest.raises(errors.InsufficientPrivilege):
            conn.execute("SELECT * FROM clinic.v_sessions")


@pytest.mark.parametrize(
    "hostile", ['x"; DROP ROLE postgres; --', "c1' OR '1'='1", "a b", "../etc", "-rm", "\u00e9"]
)
def test_hostile_clinic_ids_are_rejected_by_the_cli(seeded: Any, hostile: str) -> None:
    db, _fleet, _ids = seeded
    out = subprocess.run(
        [sys.executable, "-m", "edge.cli", "db", "--dsn", db.admin, "add-clinic", "--", hostile],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert out.returncode == 2
    assert "bad_id" in out.stderr
    with psycopg.connect(db.admin) as conn:
        assert conn.execute(
            "SELECT count(*) FROM pg_roles WHERE rolname LIKE %s", ("%" + hostile[:4] + "%",)
        ).fetchone() == (0,)
