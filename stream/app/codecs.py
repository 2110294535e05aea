"""Bytes in, dicts out: input decoding, output encoding and dead letters.

Input messages are the bridge's contract payloads (``edge.contract``); anything that
fails to parse or validate becomes a dead-letter record and processing continues.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from typing import Any, Final

from edge import contract
from edge.contract import ContractError

INPUT_KINDS: Final = ("telemetry", "event", "state")

OUTPUT_TOPICS: Final[Mapping[str, str]] = {
    "rep": contract.KAFKA_REPS,
    "set": contract.KAFKA_SETS,
    "session": contract.KAFKA_SESSIONS,
    "alert": contract.KAFKA_ALERTS,
    "machine_status": contract.KAFKA_MACHINE_STATUS,
    "adherence": contract.KAFKA_ADHERENCE,
}
"""Record kind → contract topic name (without the deployment's prefix)."""

_KEY_FIELD: Final[Mapping[str, str]] = {"adherence": "patient_id", "alert": "subject_id"}


def _header(headers: Any, name: str) -> bytes | None:
    """The value of Kafka header ``name`` (the first one), if any."""
    for key, value in headers or ():
        if key == name and value is not None:
            return value if isinstance(value, bytes) else str(value).encode()
    return None


def kind_of(headers: Any, payload: Mapping[str, Any]) -> str:
    """A machine message's kind: the bridge's ``kind`` header, else by its fields
    (a frame has ``t0_ns``, an event ``type``, a birth/death ``status``)."""
    header = _header(headers, contract.KIND_HEADER)
    if header is not None:
        kind = header.decode(errors="replace")
        if kind in INPUT_KINDS:
            return kind
        raise ContractError("unknown_kind", f"kind header {kind[:32]!r}")
    if "t0_ns" in payload:
        return "telemetry"
    if "type" in payload:
        return "event"
    if "status" in payload:
        return "state"
    raise ContractError("unknown_kind", "neither a frame, an event nor a state message")


def received_at_ns(headers: Any) -> int | None:
    """The bridge's ``received_at_ns`` header (platform time), if present and valid."""
    value = _header(headers, "received_at_ns")
    try:
        return int(value) if value else None
    except ValueError:
        return None


def decode_machine_input(
    raw: bytes | None, headers: Any, validate: bool = True
) -> tuple[str, dict[str, Any]]:
    """Parse one message of a machine's stream: (kind, payload); ContractError if bad."""
    if raw is None:
        raise ContractError("empty", "message has no value")
    payload = contract.decode(raw)
    kind = kind_of(headers, payload)
    if validate:
        contract.VALIDATORS[kind](payload, None)
    else:
        contract.check_ids(payload, None)
    return kind, payload


def decode_record(raw: bytes | None) -> dict[str, Any]:
    """Parse one stream record (a session, a prescription); raises ContractError."""
    if raw is None:
        raise ContractError("empty", "message has no value")
    return contract.decode(raw)


def record_key(record: Mapping[str, Any]) -> bytes:
    """The Kafka key of an output record: patient for adherence, subject for alerts,
    machine otherwise."""
    value = record[_KEY_FIELD.get(record["kind"], "machine_id")]
    return str(value).encode()


def _plain(o: Any) -> Any:
    if hasattr(o, "tolist"):  # numpy scalars and arrays
        return o.tolist()
    raise TypeError(f"{type(o).__name__} is not JSON serializable")


def encode_record(record: dict[str, Any], now_ns: int | None = None) -> bytes:
    """Stamp ``emitted_at_ns`` and encode (compact JSON; NaN/inf refused with ValueError)."""
    record["emitted_at_ns"] = time.time_ns() if now_ns is None else now_ns
    try:
        return json.dumps(record, separators=(",", ":"), allow_nan=False, default=_plain).encode()
    except TypeError as exc:
        raise ValueError(str(exc)) from exc


def dead_letter(origin: str, raw: bytes | None, error: ContractError) -> bytes:
    return contract.dead_letter(
        "stream", origin, raw or b"", error.reason, error.detail, time.time_ns()
    )
