"""``sledfleet outcome add``: clinical outcome tests therapists record beside training.

Timed 25-Foot Walk (s), Five Times Sit-to-Stand (s), 6-Minute Walk (m) and MSWS-12
(transformed score 0-100). Re-entering the same patient, test and date corrects the value
(upsert), so a typo is fixed by entering it again.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from dataclasses import dataclass
from typing import Any, Final

import psycopg

from edge.contract import ContractError, check_id
from storage.db import connect, default_dsn


@dataclass(frozen=True, slots=True)
class OutcomeTest:
    code: str
    name: str
    unit: str
    lo: float
    hi: float


TESTS: Final = {
    t.code: t
    for t in (
        OutcomeTest("t25fw", "Timed 25-Foot Walk", "s", 1.0, 300.0),
        OutcomeTest("5sts", "Five Times Sit-to-Stand", "s", 1.0, 300.0),
        OutcomeTest("6mw", "6-Minute Walk", "m", 0.0, 1000.0),
        OutcomeTest("msws12", "MS Walking Scale-12 (transformed)", "score", 0.0, 100.0),
    )
}
"""Plausible ranges: values outside are typos, refused rather than stored."""


def validate(test: str, value: float, measured_on: dt.date, today: dt.date) -> OutcomeTest:
    spec = TESTS.get(test)
    if spec is None:
        raise ValueError(f"unknown test {test!r}; one of {', '.join(TESTS)}")
    if not spec.lo <= value <= spec.hi:
        raise ValueError(f"{spec.name} must be within {spec.lo:g}..{spec.hi:g} {spec.unit}")
    if measured_on > today:
        raise ValueError("the test date is in the future")
    return spec


def add(
    conn: psycopg.Connection[Any],
    patient_id: str,
    test: str,
    value: float,
    measured_on: dt.date,
    clinic_id: str | None = None,
    note: str | None = None,
) -> str:
    """Store one result; returns the clinic it was filed under."""
    check_id("patient_id", patient_id)
    spec = validate(test, value, measured_on, dt.datetime.now(dt.UTC).date())
    with conn.transaction():
        row = conn.execute(
            "SELECT clinic_id FROM sledfleet.patients WHERE patient_id = %s", (patient_id,)
        ).fetchone()
        if row is None:
            if clinic_id is None:
                raise ValueError(f"unknown patient {patient_id!r}: give --clinic to register")
            check_id("clinic_id", clinic_id)
            conn.execute(
                "INSERT INTO sledfleet.clinics (clinic_id) VALUES (%s) ON CONFLICT DO NOTHING",
                (clinic_id,),
            )
            conn.execute(
                "INSERT INTO sledfleet.patients (patient_id, clinic_id) VALUES (%s, %s)",
                (patient_id, clinic_id),
            )
        elif clinic_id is not None and clinic_id != row[0]:
            raise ValueError(f"patient {patient_id!r} belongs to another clinic")
        clinic = clinic_id or row[0]  # type: ignore[index]
        conn.execute(
            "INSERT INTO sledfleet.outcomes (patient_id, test, measured_on, clinic_id, value,"
            " unit, note) VALUES (%s, %s, %s, %s, %s, %s, %s)"
            " ON CONFLICT (patient_id, test, measured_on) DO UPDATE SET value = EXCLUDED.value,"
            " unit = EXCLUDED.unit, note = EXCLUDED.note, entered_by = current_user,"
            " entered_at = now()",
            (patient_id, test, measured_on, clinic, value, spec.unit, note),
        )
    return str(clinic)


def register(subparsers: Any, name: str, help_text: str) -> None:
    p = subparsers.add_parser(name, help=help_text, description=help_text)
    p.add_argument("--dsn", help="database URL (default: SLEDFLEET_DATABASE_URL)")
    sub = p.add_subparsers(dest="outcome_command", metavar="ACTION", required=True)
    a = sub.add_parser("add", help="record one test result")
    a.add_argument("--patient", required=True, help="pseudonymous patient id")
    a.add_argument("--test", required=True, choices=sorted(TESTS))
    a.add_argument("--value", required=True, type=float, help="s, m or score (see --help)")
    a.add_argument("--date", required=True, type=dt.date.fromisoformat, help="YYYY-MM-DD")
    a.add_argument("--clinic", help="needed only for a patient the database has not seen")
    a.add_argument("--note", help="free text (stored as given)")
    a.set_defaults(func=_add)


def _add(args: argparse.Namespace) -> int:
    try:
        with connect(args.dsn or default_dsn(), autocommit=True) as conn:
            clinic = add(
                conn, args.patient, args.test, args.value, args.date, args.clinic, args.note
            )
    except (ValueError, ContractError) as exc:
        print(f"sledfleet outcome add: {exc}", file=sys.stderr)
        return 2
    spec = TESTS[args.test]
    print(f"{spec.name} {args.value:g} {spec.unit} on {args.date} for {args.patient} ({clinic})")
    return 0
