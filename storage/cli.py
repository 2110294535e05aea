"""``sledfleet db``: migrate, status, refresh, maintain, add-clinic, ops-role."""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Any

from edge.contract import ContractError, check_id
from storage import migrate as migrations
from storage import queries, tenants
from storage.db import connect, default_dsn, detect_flavour, installed_flavour
from storage.registry import MOVE_MACHINE

log = logging.getLogger(__name__)

MIN_ROLE_PASSWORD_CHARS = 16
"""A role password given on stdin must be at least this long."""

_STDIN_HELP = (
    "read the role's password from stdin; otherwise a new one is generated and printed "
    "once on stdout. Either way the server receives only its SCRAM-SHA-256 verifier."
)


def register(subparsers: Any, name: str, help_text: str) -> None:
    p = subparsers.add_parser(name, help=help_text, description=help_text)
    p.add_argument("--dsn", help="database URL (default: SLEDFLEET_DATABASE_URL)")
    sub = p.add_subparsers(dest="db_command", metavar="ACTION", required=True)
    m = sub.add_parser("migrate", help="apply pending migrations (safe to run concurrently)")
    m.add_argument("--flavour", choices=["timescale", "postgres"], help="force the flavour")
    m.set_defaults(func=_migrate)
    sub.add_parser("status", help="show the flavour and applied/pending migrations").set_defaults(
        func=_status
    )
    sub.add_parser("refresh", help="refresh the aggregates now").set_defaults(func=_refresh)
    sub.add_parser("maintain", help="apply retention (plain PostgreSQL)").set_defaults(
        func=_maintain
    )
    a = sub.add_parser("add-clinic", help="create a clinic and its read-only database role")
    a.add_argument("clinic_id")
    a.add_argument("--password-stdin", action="store_true", help=_STDIN_HELP)
    a.set_defaults(func=_add_clinic)
    o = sub.add_parser("ops-role", help="create/update the operations role")
    o.add_argument("--password-stdin", action="store_true", help=_STDIN_HELP)
    o.set_defaults(func=_ops_role)
    mv = sub.add_parser(
        "move-machine",
        help="move a machine to another clinic (audited; the sink never does it on its own)",
    )
    mv.add_argument("machine_id")
    mv.add_argument("clinic_id", help="the clinic it belongs to from now on (must exist)")
    mv.add_argument("--reason", required=True, help="why (kept in sledfleet.machine_moves)")
    mv.set_defaults(func=_move_machine)


def _dsn(args: argparse.Namespace) -> str:
    return args.dsn or default_dsn()


def _migrate(args: argparse.Namespace) -> int:
    with connect(_dsn(args), autocommit=True) as conn:
        try:
            applied = migrations.migrate(conn, args.flavour)
        except migrations.MigrationError as exc:
            print(f"sledfleet db migrate: {exc}", file=sys.stderr)
            return 1
        flavour = installed_flavour(conn)
    print(f"flavour {flavour}: applied {applied or 'nothing (up to date)'}")
    return 0


def _status(args: argparse.Namespace) -> int:
    with connect(_dsn(args), autocommit=True) as conn:
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
        with connect(_dsn(args), autocommit=True) as conn:
            for table, rows, size in queries.run(conn, "table_stats"):
                print(f"  {table:20s} ~{rows:>12,} rows {size / 2**20:>10.1f} MiB")
    return 1 if st.changed else 0


def _refresh(args: argparse.Namespace) -> int:
    with connect(_dsn(args), autocommit=True) as conn:
        flavour = installed_flavour(conn)
        if flavour is None:
            print("not migrated", file=sys.stderr)
            return 1
        print("refreshed", ", ".join(queries.refresh(conn, flavour)))
    return 0


def _maintain(args: argparse.Namespace) -> int:
    with connect(_dsn(args), autocommit=True) as conn:
        flavour = installed_flavour(conn)
        if flavour is None:
            print("not migrated", file=sys.stderr)
            return 1
        print(f"dropped {queries.maintain(conn, flavour)} expired partitions")
    return 0


def _add_clinic(args: argparse.Namespace) -> int:
    try:
        tenants.clinic_role_name(args.clinic_id)
    except ValueError as exc:
        print(f"sledfleet db add-clinic: {exc}", file=sys.stderr)
        return 2
    given = _stdin_password(args)
    try:
        with connect(_dsn(args), autocommit=True) as conn:
            role, password = tenants.add_clinic(conn, args.clinic_id, given)
    except tenants.RoleError as exc:
        print(f"sledfleet db add-clinic: {exc}", file=sys.stderr)
        return 2
    print(f"role {role} ready for clinic {args.clinic_id}", file=sys.stderr)
    if given is None:
        print(password)  # shown once, on stdout only
    return 0


def _ops_role(args: argparse.Namespace) -> int:
    given = _stdin_password(args)
    try:
        with connect(_dsn(args), autocommit=True) as conn:
            password = tenants.ensure_ops_role(conn, given)
    except tenants.RoleError as exc:
        print(f"sledfleet db ops-role: {exc}", file=sys.stderr)
        return 2
    print(f"role {tenants.OPS_ROLE} ready", file=sys.stderr)
    if given is None:
        print(password)
    return 0


def _stdin_password(args: argparse.Namespace) -> str | None:
    if not args.password_stdin:
        return None
    password = sys.stdin.readline().rstrip("\n")
    if len(password) < MIN_ROLE_PASSWORD_CHARS:
        raise SystemExit(f"password too short (at least {MIN_ROLE_PASSWORD_CHARS} characters)")
    return password


def _move_machine(args: argparse.Namespace) -> int:
    try:
        check_id("machine_id", args.machine_id)
        check_id("clinic_id", args.clinic_id)
    except ContractError as exc:
        print(f"sledfleet db move-machine: {exc}", file=sys.stderr)
        return 2
    reason = args.reason.strip()
    if not 1 <= len(reason) <= 500:
        print("sledfleet db move-machine: --reason must be 1 to 500 characters", file=sys.stderr)
        return 2
    moved = None
    with connect(_dsn(args), autocommit=True) as conn, conn.transaction():
        row = conn.execute(
            "SELECT m.clinic_id, c.clinic_id FROM sledfleet.machines m "
            "LEFT JOIN sledfleet.clinics c ON c.clinic_id = %s WHERE m.machine_id = %s",
            (args.clinic_id, args.machine_id),
        ).fetchone()
        problem = (
            f"no machine {args.machine_id}"
            if row is None
            else f"no clinic {args.clinic_id} (sledfleet db add-clinic first)"
            if row[1] is None
            else f"machine {args.machine_id} is already in clinic {args.clinic_id}"
            if row[0] == args.clinic_id
            else None
        )
        if problem is None:
            params = {"machine": args.machine_id, "clinic": args.clinic_id, "reason": reason}
            moved = conn.execute(MOVE_MACHINE, params).fetchone()
            if moved is None:
                problem = f"machine {args.machine_id} changed concurrently; nothing moved"
    if problem is not None or moved is None:
        print(f"sledfleet db move-machine: {problem}", file=sys.stderr)
        return 1
    print(f"machine {args.machine_id} moved from clinic {moved[0]} to {args.clinic_id}")
    return 0
