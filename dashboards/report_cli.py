"""``sledfleet report patient <id> --out DIR``: the printable patient progress report."""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from edge.contract import ContractError, check_id
from edge.settings import DatabaseSettings, load


def register(subparsers: Any, name: str, help_text: str) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(name, help=help_text)
    sub = parser.add_subparsers(dest="report_command", metavar="KIND", required=True)
    patient = sub.add_parser(
        "patient",
        help="one patient's progress as a self-contained HTML file with PNG charts",
        description="Runs the patient-progress dashboard's queries against the database "
        "(SLEDFLEET_DATABASE_URL, typically the clinic's role) and writes "
        "DIR/patient-<id>.html.",
    )
    patient.add_argument("patient_id")
    patient.add_argument("--out", type=Path, default=Path("."), help="output directory")
    patient.add_argument("--weeks", type=int, default=12, help="period length (default 12)")
    patient.add_argument(
        "--end", default=None, help="period end, ISO date or datetime (default: now, UTC)"
    )
    patient.add_argument("--dsn", default=None, help="overrides SLEDFLEET_DATABASE_URL")
    patient.set_defaults(func=run_patient)


def run_patient(args: argparse.Namespace) -> int:
    try:  # the id goes into SQL parameters and the output file name (issue #13)
        check_id("patient_id", args.patient_id)
    except ContractError as exc:
        print(f"sledfleet report: {exc}", file=sys.stderr)
        return 2
    import psycopg

    from dashboards import report

    end = None
    if args.end:
        end = datetime.fromisoformat(args.end)
        if end.tzinfo is None:
            end = end.replace(tzinfo=UTC)
    dsn = args.dsn or load(DatabaseSettings).dsn.reveal()
    period = report.period_ending(end, args.weeks)
    with psycopg.connect(dsn, autocommit=True) as conn:
        # as Grafana's datasource setting: expand $__timeGroup for TimescaleDB when present
        row = conn.execute(
            "SELECT count(*) FROM pg_extension WHERE extname = 'timescaledb'"
        ).fetchone()
        timescaledb = bool(row and row[0])
        rep = report.build(conn, args.patient_id, period, timescaledb=timescaledb)
    if rep.facts.sessions == 0 and not rep.results["patient_prescription"]:
        print(
            f"sledfleet report: no data for patient {args.patient_id!r} in this period "
            "(unknown id, or not visible to this database role)"
        )
    path = report.write(rep, args.out)
    print(path)
    return 0
