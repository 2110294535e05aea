"""Issue #13, M1-M2 and M3 on the real PostgreSQL: one generated password per role, sent
only as a SCRAM verifier (the server log, with every statement logged, never shows it),
re-running is safe, role-name collisions and foreign roles are refused, and free text is
kept out of the ops role's views."""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg.conninfo import make_conninfo

from storage import tenants
from tests.integration.storage_support import REPO, migrated_database

pytestmark = pytest.mark.integration


CREATED: list[str] = []
"""Clinic ids this module made roles for (roles are cluster-wide: dropped at the end)."""


@pytest.fixture(scope="module")
def db(admin_dsn: str) -> Iterator[Any]:
    with migrated_database(admin_dsn) as d:
        with psycopg.connect(admin_dsn, autocommit=True) as conn:
            conn.execute(f"ALTER DATABASE \"{d.name}\" SET log_statement = 'all'")
        yield d
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        for clinic in CREATED:
            role = psycopg.sql.Identifier(tenants.clinic_role_name(clinic))
            conn.execute(psycopg.sql.SQL("DROP ROLE IF EXISTS {}").format(role))


def _new_clinic(stem: str) -> str:
    clinic = f"{stem}{uuid.uuid4().hex[:8]}"
    CREATED.append(clinic)
    return clinic


def _cli(dsn: str, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "edge.cli", "db", "--dsn", dsn, *args],
        input=stdin, capture_output=True, text=True, timeout=60, check=False, cwd=REPO,
    )  # fmt: skip


def _server_log(admin: str) -> Path | None:
    with psycopg.connect(admin) as conn:
        row = conn.execute("SHOW data_directory").fetchone()
    log = Path(row[0]).parent / "server.log" if row else None
    return log if log is not None and log.is_file() else None


def _login(db: Any, role: str, password: str) -> bool:
    try:
        with psycopg.connect(make_conninfo(db.admin, user=role, password=password)):
            return True
    except psycopg.OperationalError:
        return False


def test_generated_passwords_never_reach_the_server_in_clear(db: Any) -> None:
    clinic = _new_clinic("k")
    log = _server_log(db.admin)
    start = log.stat().st_size if log else 0
    first = _cli(db.admin, "add-clinic", clinic)
    assert first.returncode == 0, first.stderr
    password = first.stdout.strip()
    assert len(password) >= 32
    role = tenants.clinic_role_name(clinic)
    assert _login(db, role, password)
    again = _cli(db.admin, "add-clinic", clinic)  # re-run: no failing CREATE, a new password
    assert again.returncode == 0, again.stderr
    second = again.stdout.strip()
    assert second != password
    assert _login(db, role, second)
    assert not _login(db, role, password)
    ops = _cli(db.admin, "ops-role")
    assert ops.returncode == 0, ops.stderr
    ops_password = ops.stdout.strip()
    assert ops_password not in (password, second)  # one password per role
    with psycopg.connect(db.admin) as conn:
        stored = conn.execute(
            "SELECT rolpassword FROM pg_authid WHERE rolname = %s", (role,)
        ).fetchone()
    assert stored is not None
    assert stored[0].startswith("SCRAM-SHA-256$")
    if log is None:
        pytest.skip("server log not found beside the data directory")
    with log.open("rb") as f:
        f.seek(start)
        text = f.read().decode(errors="replace")
    assert "SCRAM-SHA-256$" in text  # every statement was logged, verifiers included
    for secret in (password, second, ops_password):
        assert secret not in text


def test_password_from_stdin(db: Any) -> None:
    clinic = _new_clinic("k")
    password = "stdin-" + uuid.uuid4().hex
    out = _cli(db.admin, "add-clinic", clinic, "--password-stdin", stdin=password + "\n")
    assert out.returncode == 0, out.stderr
    assert password not in out.stdout + out.stderr
    assert _login(db, tenants.clinic_role_name(clinic), password)
    short = _cli(db.admin, "add-clinic", clinic, "--password-stdin", stdin="short\n")
    assert short.returncode != 0


def test_role_name_collisions_and_foreign_roles_are_refused(db: Any) -> None:
    upper = _new_clinic("K")
    role = tenants.clinic_role_name(upper)  # sledfleet_clinic_k..._<hash of the id>
    twin = role.removeprefix(tenants.CLINIC_ROLE_PREFIX)  # a clinic id naming the same role
    assert tenants.clinic_role_name(twin) == role
    assert _cli(db.admin, "add-clinic", upper).returncode == 0
    refused = _cli(db.admin, "add-clinic", twin)
    assert refused.returncode == 2
    assert "already belongs to clinic" in refused.stderr
    foreign = f"f{uuid.uuid4().hex[:8]}"
    with psycopg.connect(db.admin, autocommit=True) as conn:
        name = psycopg.sql.Identifier(tenants.clinic_role_name(foreign))
        conn.execute(psycopg.sql.SQL("CREATE ROLE {}").format(name))
        conn.execute(psycopg.sql.SQL("COMMENT ON ROLE {} IS 'a DBA role'").format(name))
    try:
        out = _cli(db.admin, "add-clinic", foreign)
        assert out.returncode == 2
        assert "refusing to take it over" in out.stderr
    finally:
        with psycopg.connect(db.admin, autocommit=True) as conn:
            conn.execute(psycopg.sql.SQL("DROP ROLE {}").format(name))


def test_ops_views_carry_no_free_text(db: Any) -> None:
    with psycopg.connect(db.owner, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO sledfleet.clinics (clinic_id) VALUES ('cf') ON CONFLICT DO NOTHING"
        )
        conn.execute(
            "INSERT INTO sledfleet.machine_events (ts, event_id, machine_id, clinic_id, ts_ns, "
            "type, seq, session_id, code, detail, payload) VALUES (now(), %s, 'mf', 'cf', 1, "
            "'fault', 0, 's1', 'LC', 'seen by nurse Jane Doe', '{}')",
            (uuid.uuid4(),),
        )
    with psycopg.connect(db.admin, autocommit=True) as conn:
        password = tenants.ensure_ops_role(conn)
        row = conn.execute(
            "SELECT count(*) FROM sledfleet.machine_events WHERE detail IS NOT NULL"
        ).fetchone()
    assert row == (1,)
    with psycopg.connect(make_conninfo(db.admin, user=tenants.OPS_ROLE, password=password)) as c:
        rows = c.execute("SELECT code, detail, session_id FROM v_machine_events").fetchall()
    assert rows == [("LC", None, None)]
