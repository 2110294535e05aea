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
from psycopg import sql

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


GENERATED_PASSWORD_BYTES: Final = 24
"""Random bytes of a generated role password (32 URL-safe characters); one per role."""
ROLE_COMMENT_PREFIX: Final = "sledfleet role for "
"""COMMENT ON ROLE marks a role this module made and what for (``clinic <id>``, ``ops``):
a role of that name made for anything else is never taken over."""


class RoleError(ValueError):
    """A role cannot be created or updated as asked (name collision, foreign role)."""


def generate_password() -> str:
    return secrets.token_urlsafe(GENERATED_PASSWORD_BYTES)


def scram_verifier(conn: psycopg.Connection[Any], role: str, password: str) -> str:
    """The SCRAM-SHA-256 verifier of ``password``, computed by libpq on this side
    (PQencryptPasswordConn): statements carry it, never the password."""
    hashed = conn.pgconn.encrypt_password(password.encode(), role.encode(), b"scram-sha-256")
    return hashed.decode("ascii")


def _create_login_role(
    conn: psycopg.Connection[Any], role: str, password: str, purpose: str
) -> None:
    """Create ``role`` or set its password: looked up in pg_roles first (a failing CREATE
    would be logged by the server with its text), and only a SCRAM verifier is sent."""
    ident = sql.Identifier(role)
    verifier = sql.Literal(scram_verifier(conn, role, password))
    comment = ROLE_COMMENT_PREFIX + purpose
    with conn.transaction():
        row = conn.execute(
            "SELECT shobj_description(oid, 'pg_authid') FROM pg_roles WHERE rolname = %s",
            (role,),
        ).fetchone()
        if row is None:
            conn.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(ident, verifier))
            conn.execute(sql.SQL("COMMENT ON ROLE {} IS {}").format(ident, sql.Literal(comment)))
            log.info("created role %s", role)
            return
        if row[0] is None and role.startswith((CLINIC_ROLE_PREFIX, OPS_ROLE)):
            # made before roles carried a comment: adopt it, from now on it is marked
            conn.execute(sql.SQL("COMMENT ON ROLE {} IS {}").format(ident, sql.Literal(comment)))
            log.warning(
                "role %s had no SledFleet comment; marked as the role for %s", role, purpose
            )
        elif row[0] != comment:
            raise RoleError(
                f"role {role} exists and is not SledFleet's role for {purpose} "
                f"({row[0] or 'no comment'}): refusing to take it over"
            )
        conn.execute(sql.SQL("ALTER ROLE {} LOGIN PASSWORD {}").format(ident, verifier))
        log.info("new password for role %s", role)


def add_clinic(
    conn: psycopg.Connection[Any], clinic_id: str, password: str | None = None
) -> tuple[str, str]:
    """Create (or update) the clinic and its role; returns (role name, password)."""
    role = clinic_role_name(clinic_id)
    mapped = conn.execute(
        "SELECT clinic_id FROM sledfleet.clinic_roles WHERE role_name = %s", (role,)
    ).fetchone()
    if mapped is not None and mapped[0] != clinic_id:
        raise RoleError(f"clinic {clinic_id}: role {role} already belongs to clinic {mapped[0]}")
    password = password or generate_password()
    _create_login_role(conn, role, password, f"clinic {clinic_id}")
    ident = sql.Identifier(role)
    with conn.transaction():
        conn.execute(
            "INSERT INTO sledfleet.clinics (clinic_id) VALUES (%s) ON CONFLICT DO NOTHING",
            (clinic_id,),
        )
        inserted = conn.execute(
            "INSERT INTO sledfleet.clinic_roles (role_name, clinic_id) VALUES (%s, %s) "
            "ON CONFLICT (role_name) DO NOTHING RETURNING clinic_id",
            (role, clinic_id),
        ).fetchone()
        if inserted is None and mapped is None:  # a concurrent add-clinic took the name
            raise RoleError(f"clinic {clinic_id}: role {role} was just taken by another clinic")
        conn.execute(sql.SQL("ALTER ROLE {} SET search_path = clinic, public").format(ident))
        _grant_schema(conn, "clinic", role)
    return role, password


def ensure_ops_role(conn: psycopg.Connection[Any], password: str | None = None) -> str:
    """Create or update ``sledfleet_ops`` and grant it schema ``ops``; returns the password."""
    password = password or generate_password()
    _create_login_role(conn, OPS_ROLE, password, "ops")
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
