"""Per-clinic database roles and the operations role (tenant isolation without RLS).

A clinic role ``sledfleet_clinic_<clinic id, sanitised>`` can log in (its clinic's Grafana
datasource), has ``search_path = clinic, public`` (public: TimescaleDB's time_bucket for Grafana's
$__timeGroup; none of our tables live there) and may only SELECT the security_barrier views of
schema ``clinic``, which keep rows of the clinics mapped to ``current_user`` in
``sledfleet.clinic_roles``. ``sledfleet_ops`` has ``search_path = ops, public`` and reads fleet-wide
views without patient ids. Roles are cluster-wide; grants are per database.

Clinic ids must match the wire contract's ID_PATTERN; role names are quoted with
``psycopg.sql.Identifier`` anyway.
"""

from __future__ import annotations

import hashlib
import logging
import re
import secrets
from typing import Any, Final

import psycopg
from psycopg import errors, sql

from edge.contract import check_id

log = logging.getLogger(__name__)

CLINIC_ROLE_PREFIX: Final = "sledfleet_clinic_"
OPS_ROLE: Final = "sledfleet_ops"
MAX_IDENTIFIER: Final = 63  # PostgreSQL NAMEDATALEN - 1
_SAFE: Final = re.compile(r"[^a-z0-9_]")


def clinic_role_name(clinic_id: str) -> str:
    """``sledfleet_clinic_<id>`` lower-cased with other characters as ``_``; when that loses
    information (case, ``.``/``-``) or is too long, a short hash of the id keeps it unique."""
    check_id("clinic_id", clinic_id)
    safe = _SAFE.sub("_", clinic_id.lower())
    name = CLINIC_ROLE_PREFIX + safe
    if safe != clinic_id or len(name) > MAX_IDENTIFIER:
        digest = hashlib.sha256(clinic_id.encode()).hexdigest()[:8]
        name = (
            f"{CLINIC_ROLE_PREFIX}{safe[: MAX_IDENTIFIER - len(CLINIC_ROLE_PREFIX) - 9]}_{digest}"
        )
    return name


def _create_login_role(conn: psycopg.Connection[Any], role: str, password: str) -> None:
    ident = sql.Identifier(role)
    try:
        with conn.transaction():
            conn.execute(
                sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(ident, sql.Literal(password))
            )
        log.info("created role %s", role)
    except errors.DuplicateObject:
        with conn.transaction():
            conn.execute(
                sql.SQL("ALTER ROLE {} LOGIN PASSWORD {}").format(ident, sql.Literal(password))
            )


def add_clinic(
    conn: psycopg.Connection[Any], clinic_id: str, password: str | None = None
) -> tuple[str, str]:
    """Create (or update) the clinic and its role; returns (role name, password)."""
    role = clinic_role_name(clinic_id)
    password = password or secrets.token_urlsafe(18)
    _create_login_role(conn, role, password)
    ident = sql.Identifier(role)
    with conn.transaction():
        conn.execute(
            "INSERT INTO sledfleet.clinics (clinic_id) VALUES (%s) ON CONFLICT DO NOTHING",
            (clinic_id,),
        )
        conn.execute(
            "INSERT INTO sledfleet.clinic_roles (role_name, clinic_id) VALUES (%s, %s) "
            "ON CONFLICT (role_name) DO UPDATE SET clinic_id = EXCLUDED.clinic_id",
            (role, clinic_id),
        )
        conn.execute(sql.SQL("ALTER ROLE {} SET search_path = clinic, public").format(ident))
        _grant_schema(conn, "clinic", role)
    return role, password


def ensure_ops_role(conn: psycopg.Connection[Any], password: str | None = None) -> str:
    """Create or update ``sledfleet_ops`` and grant it schema ``ops``; returns the password."""
    password = password or secrets.token_urlsafe(18)
    _create_login_role(conn, OPS_ROLE, password)
    with conn.transaction():
        conn.execute(
            sql.SQL("ALTER ROLE {} SET search_path = ops, public").format(sql.Identifier(OPS_ROLE))
        )
        _grant_schema(conn, "ops", OPS_ROLE)
    return password


def _grant_schema(conn: psycopg.Connection[Any], schema: str, role: str) -> None:
    s, r = sql.Identifier(schema), sql.Identifier(role)
    conn.execute(sql.SQL("GRANT USAGE ON SCHEMA {} TO {}").format(s, r))
    conn.execute(sql.SQL("GRANT SELECT ON ALL TABLES IN SCHEMA {} TO {}").format(s, r))


def regrant(conn: psycopg.Connection[Any]) -> None:
    """Re-grant every known role after a migration added views to ``clinic`` or ``ops``."""
    roles = [r[0] for r in conn.execute("SELECT role_name FROM sledfleet.clinic_roles").fetchall()]
    with conn.transaction():
        for role in roles:
            if _role_exists(conn, role):
                _grant_schema(conn, "clinic", role)
        if _role_exists(conn, OPS_ROLE):
            _grant_schema(conn, "ops", OPS_ROLE)


def _role_exists(conn: psycopg.Connection[Any], role: str) -> bool:
    return conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone() is not None
