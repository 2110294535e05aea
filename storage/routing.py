"""Pure routing of Kafka messages to rows: which topics the sink reads and how each is
parsed. No I/O; poison input raises ``ContractError`` with a reason."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from edge.contract import (
    KAFKA_ADHERENCE,
    KAFKA_ALERTS,
    KAFKA_DEADLETTER,
    KAFKA_EVENTS,
    KAFKA_MACHINE_STATUS,
    KAFKA_PRESCRIPTIONS,
    KAFKA_REPS,
    KAFKA_SESSIONS,
    KAFKA_SETS,
    KAFKA_STATE,
    KAFKA_TELEMETRY,
    MAX_PAYLOAD_BYTES,
    ContractError,
    decode,
)
from storage.rows import (
    DEAD_LETTER,
    EVENT,
    FRAME,
    TableSpec,
    dead_letter_row,
    event_row,
    frame_row,
    record_row,
    state_row,
)

RECORD_TOPICS: Final = (
    KAFKA_REPS,
    KAFKA_SETS,
    KAFKA_SESSIONS,
    KAFKA_ADHERENCE,
    KAFKA_ALERTS,
    KAFKA_MACHINE_STATUS,
    KAFKA_PRESCRIPTIONS,
)
STATE = "state"


@dataclass(frozen=True, slots=True)
class Parsed:
    kind: str  # a TableSpec kind, or STATE for machine birth/death
    spec: TableSpec | None
    row: tuple[Any, ...]


def _record(payload: Mapping[str, Any]) -> Parsed:
    spec, row = record_row(payload)
    return Parsed(spec.kind, spec, row)


def _fixed(
    spec: TableSpec, fn: Callable[[Mapping[str, Any]], tuple[Any, ...]]
) -> Callable[[Mapping[str, Any]], Parsed]:
    def run(payload: Mapping[str, Any]) -> Parsed:
        return Parsed(spec.kind, spec, fn(payload))

    return run


def _state(payload: Mapping[str, Any]) -> Parsed:
    return Parsed(STATE, None, state_row(payload))


OTHER_KIND = "other_kind"
"""Parsed kind of an event or state message met on the machine topic (which carries a
machine's frames, events and state together): the frames table skips it; the sink
stores those from the topics the stream worker forwards them to."""


def _frame(payload: Mapping[str, Any]) -> Parsed:
    if "t0_ns" not in payload and ("type" in payload or "status" in payload):
        return Parsed(OTHER_KIND, None, ())
    return Parsed(FRAME.kind, FRAME, frame_row(payload))


def topics(
    prefix: str, *, frames: bool, events: bool, state: bool, dead_letters: bool
) -> dict[str, Callable[[Mapping[str, Any]], Parsed]]:
    """Full topic name -> parser for the topics the sink is configured to read."""
    out: dict[str, Callable[[Mapping[str, Any]], Parsed]] = {
        prefix + t: _record for t in RECORD_TOPICS
    }
    if frames:
        out[prefix + KAFKA_TELEMETRY] = _frame
    if events:
        out[prefix + KAFKA_EVENTS] = _fixed(EVENT, event_row)
    if state:
        out[prefix + KAFKA_STATE] = _state
    if dead_letters:
        out[prefix + KAFKA_DEADLETTER] = _fixed(DEAD_LETTER, dead_letter_row)
    return out


def parse(
    parser: Callable[[Mapping[str, Any]], Parsed],
    raw: bytes | None,
    max_bytes: int = MAX_PAYLOAD_BYTES,
) -> Parsed:
    if raw is None:
        raise ContractError("tombstone", "message without a value")
    payload = decode(raw, max_bytes)
    try:
        return parser(payload)
    except ContractError:
        raise
    except (TypeError, ValueError, AttributeError, KeyError) as exc:  # belt and braces
        raise ContractError("bad_record", f"{type(exc).__name__}: {str(exc)[:200]}") from exc


# --- clinic ownership (issue #13: the sink never moves a machine or patient between clinics)


def claims(parsed: Parsed) -> tuple[str | None, str | None, str | None]:
    """(clinic_id, machine_id, patient_id) a parsed row claims; None where it has none."""
    if parsed.spec is None:  # machine birth/death: (machine_id, clinic_id, ...)
        return parsed.row[1], parsed.row[0], None
    names = parsed.spec.names
    row = parsed.row

    def get(name: str) -> str | None:
        return row[names.index(name)] if name in names else None

    return get("clinic_id"), get("machine_id"), get("patient_id")


def foreign(parsed: Parsed, machines: Mapping[str, str], patients: Mapping[str, str]) -> str | None:
    """Why ``parsed`` claims a machine or patient registered to another clinic, else None.
    ``machines`` / ``patients`` map ids to their registered clinic (absent: not yet known,
    the row registers it)."""
    clinic, machine, patient = claims(parsed)
    if clinic is None:
        return None
    if machine is not None and machines.get(machine, clinic) != clinic:
        return f"machine {machine} is registered to clinic {machines[machine]}, not {clinic}"
    if patient is not None and patients.get(patient, clinic) != clinic:
        return f"patient {patient} is registered to clinic {patients[patient]}, not {clinic}"
    return None
