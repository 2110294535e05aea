"""``sledfleet prescribe``: publish a patient's prescription to the compacted topic.

The record is a ``stream.records.Prescription`` keyed by patient_id on
``<prefix>sledfleet.prescriptions``; the topic keeps the latest prescription per
patient, and the stream's adherence agent and the sink both read it.
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import sys
from typing import Any

from edge import contract
from edge.settings import KafkaSettings, load
from stream.records import RECORD_VERSION, Prescription

log = logging.getLogger(__name__)

MAX_SESSIONS_PER_WEEK = 14
MAX_SETS = 20
MAX_REPS = 50


def build_prescription(
    *,
    patient_id: str,
    clinic_id: str,
    sessions_per_week: int,
    sets: int,
    reps: int,
    load_kg: float,
    max_velocity_loss_pct: float,
    start_date: str,
    end_date: str | None = None,
    prescription_id: str | None = None,
    seat_position: float | None = None,
    footplate_position: float | None = None,
) -> Prescription:
    """Validate the arguments and build the record; raises ValueError on bad input."""
    contract.check_id("patient_id", patient_id)
    contract.check_id("clinic_id", clinic_id)
    start = dt.date.fromisoformat(start_date)
    end = dt.date.fromisoformat(end_date) if end_date else None
    if end is not None and end < start:
        raise ValueError(f"end date {end} before start date {start}")
    if not 1 <= sessions_per_week <= MAX_SESSIONS_PER_WEEK:
        raise ValueError(f"sessions per week must be 1..{MAX_SESSIONS_PER_WEEK}")
    if not 1 <= sets <= MAX_SETS:
        raise ValueError(f"sets must be 1..{MAX_SETS}")
    if not 1 <= reps <= MAX_REPS:
        raise ValueError(f"reps must be 1..{MAX_REPS}")
    lo, hi = contract.LOAD_KG_RANGE
    if not lo <= load_kg <= hi:
        raise ValueError(f"load must be {lo}..{hi} kg")
    if not 0.0 < max_velocity_loss_pct <= 100.0:
        raise ValueError("max velocity loss must be in (0, 100] %")
    for name, pos in (("seat position", seat_position), ("footplate position", footplate_position)):
        if pos is not None and not 0.0 <= pos <= 100.0:
            raise ValueError(f"{name} must be 0..100")
    pid = prescription_id or f"rx-{patient_id}-{start.isoformat()}"
    contract.check_id("prescription_id", pid)
    record: Prescription = {
        "v": RECORD_VERSION,
        "kind": "prescription",
        "prescription_id": pid,
        "patient_id": patient_id,
        "clinic_id": clinic_id,
        "sessions_per_week": sessions_per_week,
        "sets": sets,
        "reps": reps,
        "load_kg": float(load_kg),
        "max_velocity_loss_pct": float(max_velocity_loss_pct),
        "start_date": start.isoformat(),
        "end_date": end.isoformat() if end else None,
    }
    if seat_position is not None:
        record["seat_position"] = float(seat_position)
    if footplate_position is not None:
        record["footplate_position"] = float(footplate_position)
    return record


def publish(record: Prescription, kafka: KafkaSettings, timeout_s: float = 30.0) -> None:
    """Send ``record`` keyed by patient_id and wait for the broker's acknowledgement."""
    from kafka import KafkaProducer

    producer = KafkaProducer(
        bootstrap_servers=kafka.servers,
        acks="all",
        client_id="sledfleet-prescribe",
        **kafka.kafka_python_auth(),
    )
    try:
        topic = kafka.topic_prefix + contract.KAFKA_PRESCRIPTIONS
        future = producer.send(
            topic, key=record["patient_id"].encode(), value=contract.encode(record)
        )
        meta = future.get(timeout=timeout_s)
        log.info(
            "prescription %s -> %s[%d]@%d",
            record["prescription_id"],
            topic,
            meta.partition,
            meta.offset,
        )
    finally:
        producer.close(timeout=timeout_s)


DESCRIPTION = (
    "Publish a patient's prescription to the compacted prescriptions topic, keyed by "
    "patient id. The topic keeps the latest prescription per patient; the stream worker's "
    "adherence agent and the sink both read it."
)


def register(subparsers: Any, name: str, help_text: str) -> None:
    p = subparsers.add_parser(name, help=help_text, description=DESCRIPTION)
    p.add_argument("--patient", required=True, help="patient id")
    p.add_argument("--clinic", required=True, help="clinic id")
    p.add_argument("--sessions-per-week", type=int, required=True)
    p.add_argument("--sets", type=int, required=True, help="sets per session")
    p.add_argument("--reps", type=int, required=True, help="reps per set")
    p.add_argument("--load", type=float, required=True, help="load in kg")
    p.add_argument(
        "--max-vl", type=float, required=True, help="maximum velocity loss per set, percent"
    )
    p.add_argument("--start", required=True, help="first day, ISO date (YYYY-MM-DD)")
    p.add_argument("--end", default=None, help="last day, ISO date (open-ended if omitted)")
    p.add_argument(
        "--id",
        dest="prescription_id",
        default=None,
        help="prescription id (default rx-<patient>-<start>)",
    )
    p.add_argument("--seat", type=float, default=None, help="seat position 0..100")
    p.add_argument("--footplate", type=float, default=None, help="footplate position 0..100")
    p.add_argument("--dry-run", action="store_true", help="print the record, do not publish")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    try:
        record = build_prescription(
            patient_id=args.patient,
            clinic_id=args.clinic,
            sessions_per_week=args.sessions_per_week,
            sets=args.sets,
            reps=args.reps,
            load_kg=args.load,
            max_velocity_loss_pct=args.max_vl,
            start_date=args.start,
            end_date=args.end,
            prescription_id=args.prescription_id,
            seat_position=args.seat,
            footplate_position=args.footplate,
        )
    except ValueError as exc:
        print(f"sledfleet prescribe: {exc}", file=sys.stderr)
        return 2
    if args.dry_run:
        print(contract.encode(record).decode())
        return 0
    publish(record, load(KafkaSettings))
    print(contract.encode(record).decode())
    return 0
