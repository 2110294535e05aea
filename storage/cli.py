"""``sledfleet db``: migrate, status, refresh, maintain, add-clinic, set-clinic-tz,
publish-clinics, ops-role.

A clinic's IANA time zone lives in ``sledfleet.clinics.time_zone`` (default UTC); the
commands that set it write the database, then publish it to Kafka's ``sledfleet.clinics``
topic (SLEDFLEET_KAFKA_*), which the stream workers read for the clinic's calendar."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from typing import Any

import psycopg
from kafka.errors import KafkaError

from edge.contract import check_id
from edge.settings import KafkaSettings, load
from storage import migrate as migrations
from storage import queries, registry, tenants
from storage.db import connect, default_dsn, detect_flavour, installed_flavour
from stream import clinic_zones
from stream.zones import check_zone

log = logging.getLogger(__name__)

PASSWORD_ENV = "SLEDFLEET_ROLE_PASSWORD"  # noqa: S105 (a variable name)
"""Password for add-clinic / ops-role; a random one is generated and printed when unset."""


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
    a.add_argument(
        "--tz",
        dest="time_zone",
        default=None,
        help="IANA time zone, e.g. Europe/Berlin (a new clinic gets UTC without it)",
    )
    a.set_defaults(func=_add_clinic)
    z = sub.add_parser(
        "set-clinic-tz", help="set a clinic's IANA time zone and publish it to the stream"
    )
    z.add_argument("clinic_id")
    z.add_argument("time_zone", help="IANA time zone, e.g. Australia/Sydney")
    z.set_defaults(func=_set_clinic_tz)
    sub.add_parser(
        "publish-clinics", help="re-publish every clinic's time zone to Kafka"
    ).set_defaults(func=_publish_clinics)
    sub.add_parser("ops-role", help="create/update the operations role").set_defaults(
        func=_ops_role
    )


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
        if args.time_zone is not None:
            check_zone(args.time_zone)
    except ValueError as exc:
        print(f"sledfleet db add-clinic: {exc}", file=sys.stderr)
        return 2
    with connect(_dsn(args), autocommit=True) as conn:
        given = os.environ.get(PASSWORD_ENV)
        role, password = tenants.add_clinic(conn, args.clinic_id, given)
        print(f"role {role}" + ("" if given else f" password {password}"))
        return _zone_and_publish(conn, "add-clinic", args.clinic_id, args.time_zone)


def _set_clinic_tz(args: argparse.Namespace) -> int:
    try:
        check_id("clinic_id", args.clinic_id)
        check_zone(args.time_zone)
    except ValueError as exc:
        print(f"sledfleet db set-clinic-tz: {exc}", file=sys.stderr)
        return 2
    with connect(_dsn(args), autocommit=True) as conn:
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
        print(f"clinic {clinic_id} time zone {time_zone}")
    print(f"published {n} clinic time zone(s)")
    return 0


def _publish_clinics(args: argparse.Namespace) -> int:
    with connect(_dsn(args), autocommit=True) as conn:
        zones = registry.clinic_zones(conn)
    return _publish("publish-clinics", zones)


def _ops_role(args: argparse.Namespace) -> int:
    with connect(_dsn(args), autocommit=True) as conn:
        given = os.environ.get(PASSWORD_ENV)
        password = tenants.ensure_ops_role(conn, given)
    print(f"role {tenants.OPS_ROLE}" + ("" if given else f" password {password}"))
    return 0
