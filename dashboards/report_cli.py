"""``sledfleet report patient|clinic``: printable progress reports (HTML + A4 PDF).

``report patient ID`` writes ``DIR/patient-ID.html`` and ``.pdf``; ``report clinic CLINIC``
writes every patient's report under ``DIR/CLINIC/`` plus ``index.html``. DIR is ``--out``,
else ``SLEDFLEET_REPORT_DIR``, else ``~/sledfleet-reports`` (never inside the source tree).
An unknown patient or clinic, an unreachable database and an unmigrated one each give one
line on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import html
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from edge.contract import ContractError, check_id
from edge.settings import DatabaseSettings, env, load


@dataclass(frozen=True, slots=True)
class ReportSettings:
    out_dir: str = env("SLEDFLEET_REPORT_DIR", "~/sledfleet-reports")
    """Where reports go when --out is not given."""
    chromium: str = env("SLEDFLEET_REPORT_CHROMIUM", "chromium")
    """Headless Chromium used for the A4 PDF (Debian package ``chromium``)."""
    pdf_timeout_s: float = env("SLEDFLEET_REPORT_PDF_TIMEOUT_S", 120.0)


class ReportError(Exception):
    """A user-facing failure: printed as one line, exit code 2."""


def register(subparsers: Any, name: str, help_text: str) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(name, help=help_text)
    sub = parser.add_subparsers(dest="report_command", metavar="KIND", required=True)
    patient = sub.add_parser(
        "patient",
        help="one patient's progress report (HTML + A4 PDF)",
        description="Runs the patient-progress dashboard's queries against the database "
        "(SLEDFLEET_DATABASE_URL, typically the clinic's role) and writes "
        "DIR/patient-<id>.html and .pdf.",
    )
    patient.add_argument("patient_id")
    clinic = sub.add_parser(
        "clinic",
        help="every patient of a clinic, plus an index page",
        description="Writes DIR/<clinic>/patient-<id>.html and .pdf for every patient of "
        "the clinic, and DIR/<clinic>/index.html linking them.",
    )
    clinic.add_argument("clinic_id")
    for p in (patient, clinic):
        p.add_argument(
            "--out", type=Path, default=None,
            help="output directory (default: SLEDFLEET_REPORT_DIR or ~/sledfleet-reports)",
        )  # fmt: skip
        p.add_argument("--weeks", type=int, default=12, help="period length (default 12)")
        p.add_argument(
            "--end", default=None, help="period end, ISO date or datetime (default: now)"
        )
        p.add_argument("--no-pdf", action="store_true", help="write the HTML only")
        p.add_argument("--dsn", default=None, help="overrides SLEDFLEET_DATABASE_URL")
    patient.set_defaults(func=run_patient)
    clinic.set_defaults(func=run_clinic)


def _where(dsn: str) -> str:
    from psycopg.conninfo import conninfo_to_dict

    try:
        d = conninfo_to_dict(dsn)
    except Exception:
        return "the configured database"
    return f"{d.get('host', 'localhost')}:{d.get('port', 5432)}/{d.get('dbname', '')}"


@contextmanager
def _connect(dsn: str) -> Iterator[Any]:
    """A connection, with the failures a user can fix turned into :class:`ReportError`."""
    import psycopg
    from psycopg import errors

    try:
        conn = psycopg.connect(dsn, autocommit=True, connect_timeout=10)
    except psycopg.OperationalError as exc:
        first = (str(exc).strip().splitlines() or ["no reason given"])[0].strip()
        raise ReportError(f"cannot reach the database at {_where(dsn)}: {first}") from None
    try:
        with conn:
            yield conn
    except (errors.UndefinedTable, errors.UndefinedColumn, errors.UndefinedFunction) as exc:
        raise ReportError(
            f"the database at {_where(dsn)} is not migrated ({exc.diag.message_primary}); "
            "run `sledfleet db migrate`"
        ) from None
    except errors.InsufficientPrivilege as exc:
        raise ReportError(
            f"this database role may not read reports: {exc.diag.message_primary}"
        ) from None


def _period(args: argparse.Namespace) -> Any:
    from dashboards import report

    end = None
    if args.end:
        try:
            end = datetime.fromisoformat(args.end)
        except ValueError:
            raise ReportError(f"--end {args.end!r} is not an ISO date or datetime") from None
        if end.tzinfo is None:
            end = end.replace(tzinfo=UTC)
    if args.weeks < 1:
        raise ReportError("--weeks must be at least 1")
    return report.period_ending(end, args.weeks)


def _out_dir(args: argparse.Namespace, settings: ReportSettings) -> Path:
    return (args.out or Path(settings.out_dir)).expanduser()


def _timescaledb(conn: Any) -> bool:
    # as Grafana's datasource setting: expand $__timeGroup for TimescaleDB when present
    row = conn.execute("SELECT count(*) FROM pg_extension WHERE extname = 'timescaledb'").fetchone()
    return bool(row and row[0])


def _render(
    conn: Any, patient_id: str, period: Any, out: Path, pdf: bool, s: ReportSettings
) -> Any:
    from dashboards import report
    from dashboards.report_pdf import to_pdf

    rep = report.build(conn, patient_id, period, timescaledb=_timescaledb(conn))
    path = report.write(rep, out)
    paths = [path]
    if pdf:
        paths.append(to_pdf(path, s.chromium, s.pdf_timeout_s))
    return rep, paths


def run_patient(args: argparse.Namespace) -> int:
    return _guard(_patient, args)


def run_clinic(args: argparse.Namespace) -> int:
    return _guard(_clinic, args)


def _guard(fn: Any, args: argparse.Namespace) -> int:
    from dashboards.report_pdf import PdfError

    try:
        # ids go into SQL parameters and output file names: the contract's id rule first
        for field in ("patient_id", "clinic_id"):
            if getattr(args, field, None) is not None:
                check_id(field, getattr(args, field))
        fn(args)
    except ContractError as exc:
        print(f"sledfleet report: {exc}", file=sys.stderr)
        return 2
    except (ReportError, PdfError) as exc:
        print(f"sledfleet report: {exc}", file=sys.stderr)
        return 2
    return 0


def _patient(args: argparse.Namespace) -> None:
    settings = load(ReportSettings)
    dsn = args.dsn or load(DatabaseSettings).dsn.reveal()
    period = _period(args)
    with _connect(dsn) as conn:
        row = conn.execute(
            "SELECT clinic_id FROM v_patients WHERE patient_id = %s", (args.patient_id,)
        ).fetchone()
        if row is None:
            raise ReportError(
                f"no patient {args.patient_id!r} in {_where(dsn)} (unknown id, or not visible "
                "to this database role); nothing written"
            )
        _, paths = _render(conn, args.patient_id, period, _out_dir(args, settings),
                           not args.no_pdf, settings)  # fmt: skip
    for p in paths:
        print(p)


def _clinic(args: argparse.Namespace) -> None:
    settings = load(ReportSettings)
    dsn = args.dsn or load(DatabaseSettings).dsn.reveal()
    period = _period(args)
    out = _out_dir(args, settings) / args.clinic_id
    with _connect(dsn) as conn:
        if (
            conn.execute(
                "SELECT 1 FROM v_clinics WHERE clinic_id = %s", (args.clinic_id,)
            ).fetchone()
            is None
        ):
            raise ReportError(
                f"no clinic {args.clinic_id!r} in {_where(dsn)} (unknown id, or not visible to "
                "this database role); nothing written"
            )
        paths = write_clinic(conn, args.clinic_id, period, out, not args.no_pdf, settings)
    for p in paths:
        print(p)


def write_clinic(
    conn: Any, clinic_id: str, period: Any, out: Path, pdf: bool, settings: ReportSettings
) -> list[Path]:
    """Every patient's report of ``clinic_id`` in ``out`` plus ``index.html`` (first)."""
    patients = [
        r[0]
        for r in conn.execute(
            "SELECT patient_id FROM v_patients WHERE clinic_id = %s ORDER BY patient_id",
            (clinic_id,),
        ).fetchall()
    ]
    reports = [_render(conn, pid, period, out, pdf, settings) for pid in patients]
    index = out / "index.html"
    out.mkdir(parents=True, exist_ok=True)
    index.write_text(clinic_index(clinic_id, reports), encoding="utf-8")
    return [index, *(p for _, paths in reports for p in paths)]


def clinic_index(clinic_id: str, reports: list[tuple[Any, list[Path]]]) -> str:
    from dashboards.report_html import CSS, Clock

    rows = []
    for rep, paths in reports:
        f = rep.facts
        clock = Clock(f.time_zone)
        links = " · ".join(
            f'<a href="{html.escape(p.name)}">{p.suffix[1:].upper()}</a>' for p in paths
        )
        ongoing = next((lp for lp in f.lapses if lp.ongoing), None)
        rows.append(
            f"<tr><td>{html.escape(f.patient_id)}</td><td class=num>{f.sessions}</td>"
            f"<td class=num>{'–' if f.adherence is None else f'{f.adherence:.0%}'}</td>"
            f"<td class=num>{'–' if f.compliance is None else f'{f.compliance:.0%}'}</td>"
            f"<td>{clock.dt(f.last_session)}</td>"
            f"<td>{f'{ongoing.days:.0f} days' if ongoing else 'none'}</td>"
            f"<td class=num>{f.open_alerts}</td><td>{links}</td></tr>"
        )
    tz = reports[0][0].facts.time_zone if reports else "UTC"
    body = "".join(rows) or "<tr><td colspan=8>this clinic has no patient yet</td></tr>"
    return (
        "<!DOCTYPE html><html lang=en><head><meta charset=utf-8>"
        f"<title>SledFleet reports {html.escape(clinic_id)}</title><style>{CSS}</style></head>"
        f"<body><h1>Progress reports: clinic {html.escape(clinic_id)}</h1>"
        f'<p class="meta">{len(reports)} patients · times in {html.escape(tz)} · generated '
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC</p>"
        '<table id="patients"><tr><th>patient</th><th>sessions</th><th>adherence</th>'
        "<th>compliance</th><th>last session</th><th>ongoing lapse</th><th>open alerts</th>"
        f"<th>report</th></tr>{body}</table></body></html>"
    )
