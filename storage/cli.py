"""``sledfleet db``: migrate, status, refresh, maintain, add-clinic, set-clinic-tz,
publish-clinics, ops-role.

A clinic's IANA time zone lives in ``sledfleet.clinics.time_zone`` (default UTC); the
commands that set it write the database, then publish it to Kafka's ``sledfleet.clinics``
topic (SLEDFLEET_KAFKA_*), which the stream workers read for the clinic's calendar."""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Any

import psycopg
from kafka.errors import KafkaError

from edge.contract import ContractError, check_id
from edge.settings import ConfigError, KafkaSettings, load
from storage import migrate as migrations
from storage import queries, registry, tenants
from storage.db import Flavour, connect, default_dsn, detect_flavour, installed_flavour
from storage.db_errors import SETTING, explain
from storage.registry import MOVE_MACHINE
from stream import clinic_zones
from stream.zones import check_zone

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
    a.add_argument(
        "--tz",
        dest="time_zone",
        default=None,
        help="IANA time zone, e.g. Europe/Berlin (a new clinic gets UTC without it)",
    )
    a.add_argument("--password-stdin", action="store_true", help=_STDIN_HELP)
    z = action(
        "set-clinic-tz",
        "set a clinic's IANA time zone and publish it to the stream",
        _set_clinic_tz,
    )
    z.add_argument("clinic_id")
    z.add_argument("time_zone", help="IANA time zone, e.g. Australia/Sydney")
    action("publish-clinics", "re-publish every clinic's time zone to Kafka", _publish_clinics)
    o = action("ops-role", "create/update the operations role", _ops_role)
    o.add_argument("--password-stdin", action="store_true", help=_STDIN_HELP)
    mv = action(
        "move-machine",
        "move a machine to another clinic (audited; the sink never does it on its own)",
        _move_machine,
    )
    mv.add_argument("machine_id")
    mv.add_argument("clinic_id", help="the clinic it belongs to from now on (must exist)")
    mv.add_argument("--reason", required=True, help="why (kept in sledfleet.machine_moves)")


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
        if args.time_zone is not None:
            check_zone(args.time_zone)
    except ValueError as exc:
        print(f"sledfleet db add-clinic: {exc}", file=sys.stderr)
        return 2
    given = _stdin_password(args)
    try:
        with _connect(args) as conn:
            role, password = tenants.add_clinic(conn, args.clinic_id, given)
            print(f"role {role} ready for clinic {args.clinic_id}", file=sys.stderr)
            if given is None:
                print(password)  # shown once, on stdout only
            return _zone_and_publish(conn, "add-clinic", args.clinic_id, args.time_zone)
    except tenants.RoleError as exc:
        print(f"sledfleet db add-clinic: {exc}", file=sys.stderr)
        return 2


def _set_clinic_tz(args: argparse.Namespace) -> int:
    try:
        check_id("clinic_id", args.clinic_id)
        check_zone(args.time_zone)
    except ValueError as exc:
        print(f"sledfleet db set-clinic-tz: {exc}", file=sys.stderr)
        return 2
    with _connect(args) as conn:
        return _zone_and_publish(conn, "set-clinic-tz", args.clinic_id, args.time_zone)


def _zone_and_publish(conn: Any, command: str, clinic_id: str, time_zone: str | None) -> int:
    """Set the zone (when given) in the registry, then publish the clinic's zone."""
    if time_zone is not None:
        try:
            registry.set_clinic_time_zone(conn, clinic_id, time_zone)
        except psycopg.errors.CheckViolation:
            print(
                f"sledfleet db {command}: the database does not know time zone {time_zone!r}",
                file=sys.stderr,
            )
            return 2
    return _publish(command, registry.clinic_zones(conn, [clinic_id]))


def _publish(command: str, zones: list[tuple[str, str, int]]) -> int:
    try:
        n = clinic_zones.publish(
            [clinic_zones.build(c, tz, at) for c, tz, at in zones], load(KafkaSettings)
        )
    except KafkaError as exc:  # the registry is already right: re-run to publish
        print(f"sledfleet db {command}: publishing to Kafka failed: {exc!r}", file=sys.stderr)
        return 1
    for clinic_id, time_zone, _at in zones:
        print(f"clinic {clinic_id} time zone {time_zone}", file=sys.stderr)
    print(f"published {n} clinic time zone(s)", file=sys.stderr)
    return 0


def _publish_clinics(args: argparse.Namespace) -> int:
    with _connect(args) as conn:
        zones = registry.clinic_zones(conn)
    return _publish("publish-clinics", zones)


def _ops_role(args: argparse.Namespace) -> int:
    given = _stdin_password(args)
    try:
        with _connect(args) as conn:
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
    with _connect(args) as conn, conn.transaction():
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
