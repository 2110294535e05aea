"""``sledfleet db``: migrate, status, refresh, maintain, add-clinic, ops-role."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from typing import Any

import psycopg

from edge.settings import ConfigError
from storage import migrate as migrations
from storage import queries, tenants
from storage.db import Flavour, connect, default_dsn, detect_flavour, installed_flavour
from storage.db_errors import SETTING, explain

log = logging.getLogger(__name__)

PASSWORD_ENV = "SLEDFLEET_ROLE_PASSWORD"  # noqa: S105 (a variable name)
"""Password for add-clinic / ops-role; a random one is generated and printed when unset."""


def register(subparsers: Any, name: str, help_text: str) -> None:
    p = subparsers.add_parser(name, help=help_text, description=help_text)
    p.add_argument("--dsn", help="database URL (default: SLEDFLEET_DATABASE_URL)")
    sub = p.add_subparsers(dest="db_command", metavar="ACTION", required=True)

    def action(name: str, help_text: str, func: Any) -> argparse.ArgumentParser:
        a: argparse.ArgumentParser = sub.add_parser(name, help=help_text, description=help_text)
        # accepted after the action too (db status --dsn X); SUPPRESS keeps the parent's value
        a.add_argument("--dsn", default=argparse.SUPPRESS, help="database URL")
        a.set_defaults(func=func)
        return a

    m = action("migrate", "apply pending migrations (safe to run concurrently)", _migrate)
    m.add_argument("--flavour", choices=["timescale", "postgres"], help="force the flavour")
    action("status", "show the flavour and applied/pending migrations", _status)
    action("refresh", "refresh the aggregates now", _refresh)
    action("maintain", "apply retention (plain PostgreSQL)", _maintain)
    a = action("add-clinic", "create a clinic and its read-only database role", _add_clinic)
    a.add_argument("clinic_id")
    action("ops-role", "create/update the operations role", _ops_role)


def _dsn(args: argparse.Namespace) -> str:
    return args.dsn or default_dsn()


def _connect(args: argparse.Namespace) -> psycopg.Connection[Any]:
    """A connection, or a one-line ConfigError naming the DSN setting, cause and fix."""
    dsn = _dsn(args)
    try:
        return connect(dsn, autocommit=True, connect_timeout=10)
    except psycopg.Error as exc:
        raise explain(exc, dsn) from None


def _require_migrated(conn: psycopg.Connection[Any]) -> Flavour:
    flavour = installed_flavour(conn)
    if flavour is None:
        raise ConfigError(SETTING, "the database is not migrated", "run sledfleet db migrate")
    return flavour


def _migrate(args: argparse.Namespace) -> int:
    with _connect(args) as conn:
        try:
            applied = migrations.migrate(conn, args.flavour)
        except migrations.MigrationError as exc:
            print(f"sledfleet db migrate: {exc}", file=sys.stderr)
            return 1
        flavour = installed_flavour(conn)
    print(f"flavour {flavour}: applied {applied or 'nothing (up to date)'}")
    return 0


def _status(args: argparse.Namespace) -> int:
    with _connect(args) as conn:
        st = migrations.status(conn)
        available = detect_flavour(conn)
    print(f"flavour: {st.flavour or 'not migrated'} (available: {available})")
    for version, name, at in st.applied:
        print(f"  applied {version:04d}_{name}  {at}")
    for m in st.pending:
        print(f"  pending {m.version:04d}_{m.name}")
    for v in st.changed:
        print(f"  CHANGED since applied: {v:04d}")
    if st.flavour is not None:
        with _connect(args) as conn:
            for table, rows, size in queries.run(conn, "table_stats"):
                print(f"  {table:20s} ~{rows:>12,} rows {size / 2**20:>10.1f} MiB")
    return 1 if st.changed else 0


def _refresh(args: argparse.Namespace) -> int:
    with _connect(args) as conn:
        flavour = _require_migrated(conn)
        print("refreshed", ", ".join(queries.refresh(conn, flavour)))
    return 0


def _maintain(args: argparse.Namespace) -> int:
    with _connect(args) as conn:
        flavour = _require_migrated(conn)
        print(f"dropped {queries.maintain(conn, flavour)} expired partitions")
    return 0


def _add_clinic(args: argparse.Namespace) -> int:
    try:
        tenants.clinic_role_name(args.clinic_id)
    except ValueError as exc:
        print(f"sledfleet db add-clinic: {exc}", file=sys.stderr)
        return 2
    with _connect(args) as conn:
        given = os.environ.get(PASSWORD_ENV)
        role, password = tenants.add_clinic(conn, args.clinic_id, given)
    print(f"role {role}" + ("" if given else f" password {password}"))
    return 0


def _ops_role(args: argparse.Namespace) -> int:
    with _connect(args) as conn:
        given = os.environ.get(PASSWORD_ENV)
        password = tenants.ensure_ops_role(conn, given)
    print(f"role {tenants.OPS_ROLE}" + ("" if given else f" password {password}"))
    return 0
