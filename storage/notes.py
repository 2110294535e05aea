"""``sledfleet note add``: effort, fatigue and symptom notes beside the training.

A note is a contract event of type ``patient_note`` (edge/contract.py): RPE (Borg CR10,
0-10), fatigue (0-10), free-text symptoms and a suspected-relapse flag, taken at check-in
or after a session. A check-in screen on the sled would publish it over MQTT like any other
event (the bridge validates it, the sink stores it in ``machine_events``); the therapist's
command writes the very same event straight to the database through the sink's row code
(:func:`storage.rows.event_row`, which validates it), so it needs no broker and no event
counter of the machine (``seq`` is 0: it is not the machine's event). The report and the
patient dashboard read it from the view ``v_patient_notes``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import getpass
import sys
import uuid
from typing import Any

import psycopg

from edge.contract import SCHEMA_VERSION, ContractError, check_id
from storage.db import connect, default_dsn, detect_flavour
from storage.rows import EVENT, event_row
from storage.writer import Batch, Writer


def note_event(
    patient_id: str,
    clinic_id: str,
    machine_id: str,
    at: dt.datetime,
    *,
    phase: str,
    rpe: float | None = None,
    fatigue: float | None = None,
    symptoms: str | None = None,
    relapse_suspected: bool = False,
    session_id: str | None = None,
    recorded_by: str | None = None,
) -> dict[str, Any]:
    """The ``patient_note`` event payload (validated when turned into a row)."""
    payload: dict[str, Any] = {
        "v": SCHEMA_VERSION,
        "clinic_id": clinic_id,
        "machine_id": machine_id,
        "type": "patient_note",
        "event_id": str(uuid.uuid4()),
        "seq": 0,
        "ts_ns": int(at.timestamp() * 1_000_000) * 1000,
        "session_id": session_id,
        "patient_id": patient_id,
        "phase": phase,
    }
    if relapse_suspected:
        payload["relapse_suspected"] = True
    for key, value in (("rpe", rpe), ("fatigue", fatigue), ("symptoms", symptoms),
                       ("recorded_by", recorded_by)):  # fmt: skip
        if value is not None:
            payload[key] = value
    return payload


def add(conn: psycopg.Connection[Any], payload: dict[str, Any]) -> None:
    """Validate and store one note event (idempotent on its event_id)."""
    batch = Batch()
    batch.add(EVENT, event_row(payload))
    Writer(conn, detect_flavour(conn)).write(batch)


def _where(conn: psycopg.Connection[Any], patient_id: str, machine: str | None) -> tuple[str, str]:
    row = conn.execute(
        "SELECT clinic_id FROM sledfleet.patients WHERE patient_id = %s", (patient_id,)
    ).fetchone()
    if row is None:
        raise ValueError(f"unknown patient {patient_id!r}")
    clinic = str(row[0])
    if machine is None:
        last = conn.execute(
            "SELECT machine_id FROM sledfleet.sessions WHERE patient_id = %s "
            "ORDER BY ts DESC LIMIT 1",
            (patient_id,),
        ).fetchone()
        if last is None:
            raise ValueError("the patient has no session yet: give --machine")
        machine = str(last[0])
    return clinic, machine


def register(subparsers: Any, name: str, help_text: str) -> None:
    p = subparsers.add_parser(name, help=help_text, description=help_text)
    p.add_argument("--dsn", help="database URL (default: SLEDFLEET_DATABASE_URL)")
    sub = p.add_subparsers(dest="note_command", metavar="ACTION", required=True)
    a = sub.add_parser("add", help="record one note (at least one of the values)")
    a.add_argument("--patient", required=True, help="pseudonymous patient id")
    a.add_argument("--rpe", type=float, help="perceived exertion, Borg CR10 (0-10)")
    a.add_argument("--fatigue", type=float, help="fatigue today, 0-10")
    a.add_argument("--symptoms", help="new or worse symptoms, free text")
    a.add_argument(
        "--relapse-suspected", action="store_true", help="flag for clinical review (relapse)"
    )
    a.add_argument("--phase", choices=("check_in", "after_session"), default="after_session")
    a.add_argument("--machine", help="the sled (default: the patient's latest session's)")
    a.add_argument("--session", help="the session the note belongs to, if any")
    a.add_argument("--at", type=dt.datetime.fromisoformat, help="when (default now), ISO")
    a.set_defaults(func=_add)


def _add(args: argparse.Namespace) -> int:
    at = args.at or dt.datetime.now(dt.UTC)
    if at.tzinfo is None:
        at = at.replace(tzinfo=dt.UTC)
    try:
        check_id("patient_id", args.patient)
        with connect(args.dsn or default_dsn(), autocommit=True) as conn:
            clinic, machine = _where(conn, args.patient, args.machine)
            payload = note_event(
                args.patient, clinic, machine, at, phase=args.phase, rpe=args.rpe,
                fatigue=args.fatigue, symptoms=args.symptoms,
                relapse_suspected=args.relapse_suspected, session_id=args.session,
                recorded_by=getpass.getuser(),
            )  # fmt: skip
            add(conn, payload)
    except (ValueError, ContractError) as exc:
        print(f"sledfleet note add: {exc}", file=sys.stderr)
        return 2
    except psycopg.OperationalError as exc:
        print(f"sledfleet note add: cannot reach the database: {str(exc).strip()[-200:]}",
              file=sys.stderr)  # fmt: skip
        return 2
    print(f"note for {args.patient} ({clinic}, {machine}) at {at.isoformat()}")
    return 0
