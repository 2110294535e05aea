"""Versioned SQL migrations for both flavours, safe to run concurrently and repeatedly.

Files ``storage/migrations/NNNN_name.sql`` are applied in order, each in its own
transaction, and recorded in ``sledfleet.schema_version``. A session-level advisory lock
serialises concurrent ``sledfleet db migrate`` runs: the second waits, then finds nothing
to do. One file serves both flavours; :func:`render` keeps the lines between
``-- [timescale]`` / ``-- [postgres]`` and ``-- [end]`` that belong to the flavour.
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import psycopg

from storage.db import Flavour, detect_flavour, installed_flavour

log = logging.getLogger(__name__)

MIGRATIONS_DIR: Final = Path(__file__).parent / "migrations"
MIGRATION_LOCK_KEY: Final = 0x5F1ED_0001
"""pg_advisory_lock key held while migrating (any bigint unique to SledFleet)."""

_FILE_RE: Final = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
_BLOCK_RE: Final = re.compile(r"^\s*--\s*\[(timescale|postgres|end)\]\s*$")


class MigrationError(RuntimeError):
    pass


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    path: Path

    def sql(self, flavour: Flavour) -> str:
        return render(self.path.read_text(encoding="utf-8"), flavour)


def discover(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    found: list[Migration] = []
    for path in sorted(directory.glob("*.sql")):
        m = _FILE_RE.match(path.name)
        if not m:
            raise MigrationError(f"migration file name {path.name!r} is not NNNN_name.sql")
        found.append(Migration(int(m.group(1)), m.group(2), path))
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise MigrationError(f"duplicate migration versions in {directory}")
    return found


def render(text: str, flavour: Flavour) -> str:
    """Keep common lines and the lines of ``flavour``'s blocks; blocks do not nest."""
    out: list[str] = []
    block: str | None = None
    for lineno, line in enumerate(text.splitlines(), 1):
        m = _BLOCK_RE.match(line)
        if m:
            tag = m.group(1)
            if tag == "end":
                if block is None:
                    raise MigrationError(f"line {lineno}: [end] without a block")
                block = None
            else:
                block = tag  # a new block may directly follow another
            continue
        if block is None or block == flavour:
            out.append(line)
    if block is not None:
        raise MigrationError(f"unterminated [{block}] block")
    return "\n".join(out) + "\n"


def checksum(sql_text: str) -> str:
    return hashlib.sha256(sql_text.encode()).hexdigest()


_BOOTSTRAP: Final = """
CREATE SCHEMA IF NOT EXISTS sledfleet;
CREATE TABLE IF NOT EXISTS sledfleet.schema_version (
    version     integer PRIMARY KEY,
    name        text NOT NULL,
    flavour     text NOT NULL,
    checksum    text NOT NULL,
    applied_at  timestamptz NOT NULL DEFAULT now()
);
"""


@dataclass(frozen=True, slots=True)
class Status:
    flavour: Flavour | None
    applied: list[tuple[int, str, str]]  # version, name, applied_at (ISO)
    pending: list[Migration]
    changed: list[int]  # applied versions whose file changed since


def applied_versions(conn: psycopg.Connection[Any]) -> dict[int, tuple[str, str, str]]:
    if installed_flavour(conn) is None and not _has_version_table(conn):
        return {}
    rows = conn.execute(
        "SELECT version, name, checksum, applied_at::text FROM sledfleet.schema_version"
    ).fetchall()
    return {r[0]: (r[1], r[2], r[3]) for r in rows}


def _has_version_table(conn: psycopg.Connection[Any]) -> bool:
    row = conn.execute("SELECT to_regclass('sledfleet.schema_version') IS NOT NULL").fetchone()
    return bool(row and row[0])


def status(conn: psycopg.Connection[Any]) -> Status:
    flavour = installed_flavour(conn)
    applied = applied_versions(conn)
    migrations = discover()
    render_as: Flavour = flavour or detect_flavour(conn)
    pending = [m for m in migrations if m.version not in applied]
    changed = [
        m.version
        for m in migrations
        if m.version in applied and applied[m.version][1] != checksum(m.sql(render_as))
    ]
    return Status(
        flavour,
        [(v, applied[v][0], applied[v][2]) for v in sorted(applied)],
        pending,
        changed,
    )


def migrate(conn: psycopg.Connection[Any], flavour: Flavour | None = None) -> list[int]:
    """Apply pending migrations; returns the versions applied (empty when up to date).

    ``conn`` must be in autocommit mode: each migration runs in its own transaction
    while the session-level advisory lock is held across all of them.
    """
    if not conn.autocommit:
        raise MigrationError("migrate() needs an autocommit connection")
    conn.execute("SELECT pg_advisory_lock(%s)", (MIGRATION_LOCK_KEY,))
    try:
        current = installed_flavour(conn)
        chosen = flavour or current or detect_flavour(conn)
        if current is not None and current != chosen:
            raise MigrationError(f"schema was migrated as {current}, refusing {chosen}")
        if chosen == "timescale":
            conn.execute("CREATE EXTENSION IF NOT EXISTS timescaledb")
        conn.execute(_BOOTSTRAP)
        done = applied_versions(conn)
        applied: list[int] = []
        for m in discover():
            if m.version in done:
                continue
            text = m.sql(chosen)
            log.info("applying migration %04d_%s (%s)", m.version, m.name, chosen)
            with conn.transaction():
                conn.execute(text)
                conn.execute(
                    "INSERT INTO sledfleet.schema_version (version, name, flavour, checksum)"
                    " VALUES (%s, %s, %s, %s)",
                    (m.version, m.name, chosen, checksum(text)),
                )
            applied.append(m.version)
        if applied:
            from storage import tenants

            tenants.regrant(conn)
        return applied
    finally:
        conn.execute("SELECT pg_advisory_unlock(%s)", (MIGRATION_LOCK_KEY,))
