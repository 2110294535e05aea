"""The SledFleet wire contract, version 1: the one module every stage imports.

MQTT topics, Kafka topic names, payload fields, units, physical ranges and the
validation every consumer applies. Stdlib only, so the edge agent installs
with paho-mqtt alone. The JSON Schema files in ``edge/schemas/`` describe the
same payloads for other languages; ``tests/unit/edge/test_schemas.py`` keeps
the two in agreement. See ``docs/contract.md`` for the prose version.

Validation is hand-written (not jsonschema) because the bridge runs it on every
message at thousands of frames per second.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import json
import math
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from types import ModuleType
from typing import Any, Final, Literal, Protocol

_orjson: ModuleType | None
try:  # optional (bridge/stream extras): the plain edge agent needs only the stdlib
    import orjson as _orjson
except ImportError:  # pragma: no cover - depends on the install
    _orjson = None

SCHEMA_VERSION: Final = 1
SUPPORTED_VERSIONS: Final = frozenset({1})
TOPIC_ROOT: Final = "sledfleet/v1"

MessageKind = Literal["telemetry", "event", "state", "config"]
MESSAGE_KINDS: Final[tuple[MessageKind, ...]] = ("telemetry", "event", "state", "config")
EventType = Literal[
    "session_started", "session_ended", "load_changed", "calibrated", "fault", "patient_note"
]
EVENT_TYPES: Final[frozenset[str]] = frozenset(
    {"session_started", "session_ended", "load_changed", "calibrated", "fault", "patient_note"}
)
PATIENT_NOTE_FIELDS: Final[frozenset[str]] = frozenset(
    {"v", "clinic_id", "machine_id", "type", "event_id", "seq", "ts_ns", "session_id",
     "replayed", "patient_id", "phase", "rpe", "fatigue", "symptoms", "relapse_suspected",
     "recorded_by"}
)  # fmt: skip
"""Every field a ``patient_note`` event may carry; any other is refused (``EVENT_FIELDS``)."""
NOTE_PHASES: Final[frozenset[str]] = frozenset({"check_in", "after_session"})
RPE_RANGE: Final = (0.0, 10.0)  # Borg CR10
FATIGUE_RANGE: Final = (0.0, 10.0)  # 0-10 numeric rating scale
MAX_NOTE_CHARS: Final = 512

# --- Kafka topics (written by the bridge / stream / prescribe, read downstream) -----------
KAFKA_TELEMETRY: Final = "sledfleet.telemetry"
KAFKA_EVENTS: Final = "sledfleet.events"
KAFKA_STATE: Final = "sledfleet.state"
KAFKA_PRESCRIPTIONS: Final = "sledfleet.prescriptions"
KAFKA_REPS: Final = "sledfleet.reps"
KAFKA_SETS: Final = "sledfleet.sets"
KAFKA_SESSIONS: Final = "sledfleet.sessions"
KAFKA_ADHERENCE: Final = "sledfleet.adherence"
KAFKA_ALERTS: Final = "sledfleet.alerts"
KAFKA_MACHINE_STATUS: Final = "sledfleet.machine-status"
KAFKA_DEADLETTER: Final = "sledfleet.deadletter"
KAFKA_CLINICS: Final = "sledfleet.clinics"
"""Compacted, one partition: clinic_id → {v, clinic_id, time_zone, updated_at_ns}
(``sledfleet db add-clinic|set-clinic-tz`` write it, the stream worker reads it whole)."""
KAFKA_BY_KIND: Final[Mapping[str, str]] = {
    "telemetry": KAFKA_TELEMETRY,
    "event": KAFKA_TELEMETRY,
    "state": KAFKA_TELEMETRY,
}
"""Where the bridge writes each MQTT message kind: all of a machine's messages go to one
topic, keyed by machine, so one partition carries them in the order the bridge received
them (a Kafka header ``kind`` names each message's kind). The stream worker forwards
validated events and state messages to ``KAFKA_EVENTS`` and ``KAFKA_STATE``."""
KIND_HEADER: Final = "kind"

# --- Limits (physical ranges and sizes) ---------------------------------------------------
MAX_PAYLOAD_BYTES: Final = 64 * 1024
MAX_DEAD_LETTER_BYTES: Final = 16 * 1024 * 1024
"""A dead letter carries its original payload whole (base64): a 10 MB payload fits."""
MIN_FRAME_SAMPLES: Final = 10
MAX_FRAME_SAMPLES: Final = 100
RATE_HZ_RANGE: Final = (10.0, 1000.0)
POSITION_MM_RANGE: Final = (-50.0, 1500.0)  # small negative allowed: zero offset drift
FORCE_N_RANGE: Final = (-500.0, 10_000.0)  # per foot plate; negative = load-cell offset
LOAD_KG_RANGE: Final = (0.0, 500.0)
# 2015-01-01 .. 2100-01-01 in epoch ns: anything outside is a broken device clock
TS_NS_RANGE: Final = (1_420_070_400 * 10**9, 4_102_444_800 * 10**9)

ID_PATTERN: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
"""Clinic, machine, patient, session and prescription ids: short, ASCII, no MQTT wildcards,
no slashes, no whitespace, no SQL or HTML metacharacters."""


class ContractError(ValueError):
    """A payload breaks the contract. ``reason`` is a stable machine-readable code."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


# --- Topics ------------------------------------------------------------------------------


def mqtt_topic(clinic_id: str, machine_id: str, kind: MessageKind) -> str:
    """The MQTT topic ``sledfleet/v1/{clinic_id}/{machine_id}/{kind}``."""
    check_id("clinic_id", clinic_id)
    check_id("machine_id", machine_id)
    return f"{TOPIC_ROOT}/{clinic_id}/{machine_id}/{kind}"


def mqtt_subscription(kind: MessageKind, clinic_id: str = "+") -> str:
    """A subscription filter for one kind, across machines of one clinic or all clinics."""
    return f"{TOPIC_ROOT}/{clinic_id}/+/{kind}"


@dataclass(frozen=True, slots=True)
class TopicParts:
    clinic_id: str
    machine_id: str
    kind: MessageKind


def parse_topic(topic: str) -> TopicParts:
    parts = topic.split("/")
    if len(parts) != 5 or f"{parts[0]}/{parts[1]}" != TOPIC_ROOT:
        raise ContractError("bad_topic", f"not under {TOPIC_ROOT}/<clinic>/<machine>/<kind>")
    clinic_id, machine_id, kind = parts[2], parts[3], parts[4]
    if kind not in MESSAGE_KINDS:
        raise ContractError("bad_topic", f"unknown message kind {kind[:32]!r}")
    check_id("clinic_id", clinic_id)
    check_id("machine_id", machine_id)
    return TopicParts(clinic_id, machine_id, kind)


# --- End-to-end acknowledgement (platform -> agent; docs/contract.md) ---------------------

ACK_KIND: Final = "ack"
"""``sledfleet/v1/{clinic}/{machine}/ack``: a bridge tells the machine's agent which of its
seqs Kafka holds (acks=all). Not a MESSAGE_KIND: the bridge never forwards it."""
ACK_STREAMS: Final = ("frames", "events")
"""Ack payload fields: ranges of telemetry seqs and of event seqs (separate counters)."""
MAX_ACK_RANGES: Final = 4096
"""Ranges per stream in one ack message at most (the bridge splits larger sets)."""
_SEQ_MAX: Final = 2**63 - 1


def ack_topic(clinic_id: str, machine_id: str) -> str:
    """The MQTT topic of a machine's end-to-end acknowledgements."""
    check_id("clinic_id", clinic_id)
    check_id("machine_id", machine_id)
    return f"{TOPIC_ROOT}/{clinic_id}/{machine_id}/{ACK_KIND}"


SeqRange = tuple[int, int]


def ack_payload(
    clinic_id: str,
    machine_id: str,
    bridge_id: str,
    frames: list[SeqRange],
    events: list[SeqRange],
    ts_ns: int,
) -> dict[str, Any]:
    """``{v, clinic_id, machine_id, bridge_id, ts_ns, frames, events}``; ranges inclusive."""
    return {
        "v": SCHEMA_VERSION,
        "clinic_id": clinic_id,
        "machine_id": machine_id,
        "bridge_id": bridge_id,
        "ts_ns": ts_ns,
        "frames": [[lo, hi] for lo, hi in frames],
        "events": [[lo, hi] for lo, hi in events],
    }


def validate_ack(
    payload: Mapping[str, Any], clinic_id: str, machine_id: str
) -> dict[str, list[SeqRange]]:
    """The acknowledged seq ranges per stream of an ack message for this machine.

    Raises ContractError: wrong version or ids, a range that is not ``[lo, hi]`` with
    integers 0 <= lo <= hi, more than MAX_ACK_RANGES ranges."""
    if not isinstance(payload, Mapping):
        raise ContractError("not_an_object", "an ack is a JSON object")
    check_version(payload)
    if payload.get("clinic_id") != clinic_id or payload.get("machine_id") != machine_id:
        raise ContractError("topic_mismatch", "ack ids differ from this machine's")
    out: dict[str, list[SeqRange]] = {}
    for stream in ACK_STREAMS:
        ranges = payload.get(stream, [])
        if not isinstance(ranges, list) or len(ranges) > MAX_ACK_RANGES:
            raise ContractError("bad_field", f"{stream} must be a list of <= {MAX_ACK_RANGES}")
        checked: list[SeqRange] = []
        for r in ranges:
            if (
                not isinstance(r, list)
                or len(r) != 2
                or any(type(x) is not int for x in r)
                or not 0 <= r[0] <= r[1] <= _SEQ_MAX
            ):
                raise ContractError("bad_field", f"{stream}: {str(r)[:40]} is not [lo, hi]")
            checked.append((r[0], r[1]))
        out[stream] = checked
    return out


# --- Encoding ------------------------------------------------------------------------------


def encode(payload: Mapping[str, Any]) -> bytes:
    """Compact JSON; NaN and infinity are refused, never written."""
    return json.dumps(payload, separators=(",", ":"), allow_nan=False).encode()


def _reject_constant(name: str) -> Any:
    raise ContractError("non_finite", f"JSON constant {name} is not allowed")


_INT64_FLOAT_LIMIT: Final = 9.2e18
"""orjson turns integers beyond 64 bits into floats: any float this large in magnitude
sends the payload down the ``json`` path, which keeps such integers as ints."""


def _maybe_huge_int(obj: Any) -> bool:
    """True if orjson's result holds a float that may have been an integer it converted."""
    stack = [obj]
    limit = _INT64_FLOAT_LIMIT
    while stack:
        node = stack.pop()
        items = node.values() if type(node) is dict else node
        if type(node) is list:
            try:  # number arrays (the bulk of a frame): two C-speed passes
                if -limit < min(node) and max(node) < limit:
                    continue
            except (TypeError, ValueError):  # None, strings, nesting, empty: item by item
                pass
        for value in items:
            kind = type(value)
            if kind is float:
                if not -limit < value < limit:
                    return True
            elif kind is dict or kind is list:
                stack.append(value)
    return False


def decode(raw: bytes, max_bytes: int = MAX_PAYLOAD_BYTES) -> dict[str, Any]:
    """Parse a payload; any failure is a ContractError with a reason code.

    With orjson installed, an object orjson parses is returned as is (about 5x faster
    than ``json`` on a frame). orjson is stricter than ``json`` (it refuses NaN/Infinity,
    invalid UTF-8, lone surrogates, numbers beyond the float range), and everything it
    refuses goes through ``decode_stdlib``; so do payloads with a float that could be an
    integer beyond 64 bits (orjson makes those floats, ``json`` ints). So every
    verdict, reason and parsed value is the same with or without it (``tests/unit/edge``
    compares both)."""
    if len(raw) > max_bytes:
        raise ContractError("too_large", f"{len(raw)} bytes > {max_bytes}")
    obj = _fast_loads(raw)
    if type(obj) is dict:
        return obj
    return decode_stdlib(raw, max_bytes)


_NOT_PARSED: Final = object()


def _fast_loads(raw: bytes | str) -> Any:
    """orjson's parse of an object or array when it equals ``json.loads``'s, else
    ``_NOT_PARSED`` (no orjson, refused by it, a possible huge integer, a scalar)."""
    if _orjson is None:
        return _NOT_PARSED
    try:
        obj = _orjson.loads(raw)
    except ValueError:  # orjson.JSONDecodeError: the json path decides
        return _NOT_PARSED
    if type(obj) not in (dict, list) or _maybe_huge_int(obj):
        return _NOT_PARSED
    return obj


def loads(raw: bytes | str) -> Any:
    """``json.loads`` with orjson's speed where it gives the same values (see ``decode``);
    for internal JSON such as the stream's state (no size limit, no ContractError)."""
    obj = _fast_loads(raw)
    return json.loads(raw) if obj is _NOT_PARSED else obj


def decode_stdlib(raw: bytes, max_bytes: int = MAX_PAYLOAD_BYTES) -> dict[str, Any]:
    """``decode`` with the standard library's ``json`` only (the reference behaviour)."""
    if len(raw) > max_bytes:
        raise ContractError("too_large", f"{len(raw)} bytes > {max_bytes}")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ContractError("not_utf8", str(exc)[:120]) from exc
    try:
        obj = json.loads(text, parse_constant=_reject_constant)
    except ContractError:
        raise
    except json.JSONDecodeError as exc:
        raise ContractError("malformed_json", str(exc)[:120]) from exc
    except (ValueError, RecursionError) as exc:  # 4,300+ digit integers, absurd nesting
        raise ContractError("unprocessable", f"{type(exc).__name__}: {str(exc)[:100]}") from exc
    if not isinstance(obj, dict):
        raise ContractError("not_an_object", type(obj).__name__)
    return obj


# --- Field checks ---------------------------------------------------------------------------


def check_id(field: str, value: object) -> str:
    if not isinstance(value, str) or not ID_PATTERN.match(value):
        raise ContractError("bad_id", f"{field} must match {ID_PATTERN.pattern}")
    return value


def _int(payload: Mapping[str, Any], field: str, lo: int, hi: int) -> int:
    value = payload.get(field)
    if not isinstance(value, int) or isinstance(value, bool):
        raise ContractError("bad_field", f"{field} must be an integer")
    if not lo <= value <= hi:
        raise ContractError("out_of_range", f"{field}={value} outside [{lo}, {hi}]")
    return value


def _number(payload: Mapping[str, Any], field: str, rng: tuple[float, float]) -> float:
    value = payload.get(field)
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise ContractError("bad_field", f"{field} must be a number")
    if not math.isfinite(value):
        raise ContractError("non_finite", f"{field} is not finite")
    if not rng[0] <= value <= rng[1]:
        raise ContractError("out_of_range", f"{field}={value} outside {list(rng)}")
    return float(value)


_PLAIN_NUMBERS: Final = frozenset({int, float})


def _series(payload: Mapping[str, Any], field: str, rng: tuple[float, float]) -> list[float]:
    values = payload.get(field)
    if not isinstance(values, list):
        raise ContractError("bad_field", f"{field} must be an array")
    if not MIN_FRAME_SAMPLES <= len(values) <= MAX_FRAME_SAMPLES:
        raise ContractError(
            "bad_length",
            f"{field} has {len(values)} samples, allowed {MIN_FRAME_SAMPLES}..{MAX_FRAME_SAMPLES}",
        )
    lo, hi = rng
    # Fast path (the bridge validates thousands of frames a second): only plain numbers, a
    # finite sum (no NaN or infinity) and min/max in range means every value passes the loop.
    if (
        _PLAIN_NUMBERS.issuperset(map(type, values))
        and math.isfinite(sum(values))
        and lo <= min(values)
        and max(values) <= hi
    ):
        return values
    for i, v in enumerate(values):
        # None marks a sensor dropout for that sample; the stream marks it, never interpolates
        if v is None:
            continue
        if not isinstance(v, int | float) or isinstance(v, bool):
            raise ContractError("bad_field", f"{field}[{i}] must be a number or null")
        if not math.isfinite(v):
            raise ContractError("non_finite", f"{field}[{i}] is not finite")
        if not lo <= v <= hi:
            raise ContractError("out_of_range", f"{field}[{i}]={v} outside {list(rng)}")
    return values


def _optional_id(payload: Mapping[str, Any], field: str) -> str | None:
    value = payload.get(field)
    return None if value is None else check_id(field, value)


def check_version(payload: Mapping[str, Any]) -> None:
    v = payload.get("v")
    if v not in SUPPORTED_VERSIONS or isinstance(v, bool):
        raise ContractError("unknown_version", f"schema version {str(v)[:16]!r} not supported")


def check_ids(payload: Mapping[str, Any], topic: TopicParts | None) -> None:
    clinic_id = check_id("clinic_id", payload.get("clinic_id"))
    machine_id = check_id("machine_id", payload.get("machine_id"))
    if topic is not None and (topic.clinic_id, topic.machine_id) != (clinic_id, machine_id):
        raise ContractError("topic_mismatch", "clinic_id/machine_id differ from the MQTT topic")


# --- Allowed fields (issue #13: unknown fields are refused, personal data never passes) ----
# A field not listed here is refused with reason ``unknown_field`` (never stripped: the
# device is misconfigured and the dead letter says so); a field whose name says it holds a
# name, birth date or contact detail is refused with reason ``personal_data``. Patients are
# pseudonymous ids; names and birth dates stay in the clinic's own records.

TELEMETRY_FIELDS: Final = frozenset(
    {"v", "clinic_id", "machine_id", "seq", "session_id", "t0_ns", "rate_hz", "load_kg",
     "position_mm", "force_left_n", "force_right_n", "replayed"}
)  # fmt: skip
EVENT_COMMON_FIELDS: Final = frozenset(
    {"v", "clinic_id", "machine_id", "type", "event_id", "seq", "ts_ns", "session_id",
     "replayed"}
)  # fmt: skip
EVENT_FIELDS: Final[Mapping[str, frozenset[str]]] = {
    "session_started": frozenset({"patient_id", "prescription_id", "setup"}),
    "session_ended": frozenset(),
    "load_changed": frozenset({"load_kg"}),
    "calibrated": frozenset({"usable_rom_mm", "zero_offsets"}),
    "fault": frozenset({"code", "detail"}),
    "patient_note": PATIENT_NOTE_FIELDS - EVENT_COMMON_FIELDS,
}
"""Fields an event of each type may carry besides ``EVENT_COMMON_FIELDS``. Every type in
``EVENT_TYPES`` needs an entry (tests/unit/edge/test_contract_strict.py checks)."""
SETUP_FIELDS: Final = frozenset({"seat_position", "footplate_position"})
CALIBRATION_FIELDS: Final = frozenset({"usable_rom_mm", "zero_offsets"})
"""What a config's ``calibration`` (echoed in the state) may hold, as a ``calibrated`` event."""
STATE_FIELDS: Final = frozenset(
    {"v", "clinic_id", "machine_id", "status", "ts_ns", "rate_hz", "agent_version",
     "firmware", "frame_samples", "calibration", "config_version", "config_error",
     "clock_offset_ms", "next_seq", "outbox", "outbox_dropped", "framing", "model", "serial"}
)  # fmt: skip
"""A state message's fields (``model`` and ``serial`` name the machine, stored by the sink)."""
STATE_NESTED_FIELDS: Final[Mapping[str, frozenset[str]]] = {
    "outbox": frozenset({"rows", "bytes", "dropped_frames", "dropped_samples"}),
    "framing": frozenset(
        ("runt_samples", "filled_samples", "out_of_range_values", "clock_jumps", "rejected_events")
    ),
    "calibration": CALIBRATION_FIELDS,
}
"""The diagnostics objects of a state message and their fields (null allowed)."""
CONFIG_FIELDS: Final = frozenset(
    {"v", "clinic_id", "machine_id", "config_version", "rate_hz", "frame_samples",
     "calibration"}
)  # fmt: skip
PERSONAL_DATA_PATTERN: Final = re.compile(
    r"(^|_)(name|names|surname|firstname|lastname|dob|birth|birthdate|birthday|born|"
    r"email|e_mail|phone|mobile|address|ssn|nhs|insurance)(_|$)",
    re.IGNORECASE,
)
"""Field names that announce personal data (``patient_name``, ``date_of_birth``, ``dob``,
``email``...). Checked before the allowed list so the reason is ``personal_data``."""
MAX_FREE_TEXT_CHARS: Final = 512
"""Longest free text (a fault's ``detail``); the database keeps it out of ops views."""


def check_fields(payload: Mapping[str, Any], allowed: frozenset[str], where: str) -> None:
    """Refuse personal-data fields (``personal_data``) and unlisted ones (``unknown_field``)."""
    if allowed.issuperset(payload):
        return
    extra = sorted(str(k)[:64] for k in payload if k not in allowed)
    personal = [k for k in extra if PERSONAL_DATA_PATTERN.search(k)]
    if personal:
        raise ContractError("personal_data", f"{where} carries personal-data fields {personal}")
    raise ContractError("unknown_field", f"{where} has fields outside the contract: {extra[:8]}")


# --- Per-kind validation ---------------------------------------------------------------------


class Validator(Protocol):
    def __call__(self, payload: Mapping[str, Any], topic: TopicParts | None = None) -> None: ...


def _total(fn: Validator) -> Validator:
    """Hostile input (huge integers, odd types) becomes a ContractError, never a crash."""

    @functools.wraps(fn)
    def checked(payload: Mapping[str, Any], topic: TopicParts | None = None) -> None:
        try:
            fn(payload, topic)
        except ContractError:
            raise
        except (OverflowError, ValueError, TypeError, RecursionError) as exc:
            raise ContractError("unprocessable", f"{type(exc).__name__}: {str(exc)[:100]}") from exc

    return checked


_U32: Final = 2**32 - 1
_I63: Final = 2**63 - 1


@_total
def validate_telemetry(payload: Mapping[str, Any], topic: TopicParts | None = None) -> None:
    """A telemetry frame: version, ids, seq, clock, rate, equal-length series in range."""
    check_version(payload)
    check_fields(payload, TELEMETRY_FIELDS, "telemetry")
    check_ids(payload, topic)
    _int(payload, "seq", 0, _I63)
    _optional_id(payload, "session_id")
    _int(payload, "t0_ns", *TS_NS_RANGE)
    _number(payload, "rate_hz", RATE_HZ_RANGE)
    _number(payload, "load_kg", LOAD_KG_RANGE)
    pos = _series(payload, "position_mm", POSITION_MM_RANGE)
    left = _series(payload, "force_left_n", FORCE_N_RANGE)
    right = _series(payload, "force_right_n", FORCE_N_RANGE)
    if not len(pos) == len(left) == len(right):
        raise ContractError(
            "unequal_lengths", f"position {len(pos)}, left {len(left)}, right {len(right)}"
        )
    if not isinstance(payload.get("replayed"), bool):
        raise ContractError("bad_field", "replayed must be a boolean")


@_total
def validate_event(payload: Mapping[str, Any], topic: TopicParts | None = None) -> None:
    check_version(payload)
    check_ids(payload, topic)
    etype = payload.get("type")
    if etype not in EVENT_TYPES:
        raise ContractError("unknown_event_type", f"type {str(etype)[:32]!r}")
    check_fields(payload, EVENT_COMMON_FIELDS | EVENT_FIELDS.get(etype, frozenset()), etype)
    event_id = payload.get("event_id")
    if not isinstance(event_id, str) or len(event_id) != 36:
        raise ContractError("bad_field", "event_id must be a UUID")
    try:
        uuid.UUID(event_id)
    except ValueError as exc:
        raise ContractError("bad_field", "event_id must be a UUID") from exc
    _int(payload, "seq", 0, _I63)
    _int(payload, "ts_ns", *TS_NS_RANGE)
    _optional_id(payload, "session_id")
    if etype == "session_started":
        check_id("patient_id", payload.get("patient_id"))
        check_id("session_id", payload.get("session_id"))
        _optional_id(payload, "prescription_id")
        setup = payload.get("setup", {})
        if not isinstance(setup, dict):
            raise ContractError("bad_field", "setup must be an object")
        check_fields(setup, SETUP_FIELDS, "setup")
        for key in ("seat_position", "footplate_position"):
            if key in setup and setup[key] is not None:
                _number(setup, key, (0.0, 100.0))
    elif etype == "session_ended":
        check_id("session_id", payload.get("session_id"))
    elif etype == "load_changed":
        _number(payload, "load_kg", LOAD_KG_RANGE)
    elif etype == "calibrated":
        _number(payload, "usable_rom_mm", (50.0, POSITION_MM_RANGE[1]))
    elif etype == "fault":
        code = payload.get("code")
        if not isinstance(code, str) or not 1 <= len(code) <= 64:
            raise ContractError("bad_field", "fault code must be a short string")
        detail = payload.get("detail", "")
        if not isinstance(detail, str) or len(detail) > MAX_FREE_TEXT_CHARS:
            raise ContractError(
                "bad_field", f"fault detail must be a string of <= {MAX_FREE_TEXT_CHARS} chars"
            )
    elif etype == "patient_note":
        _patient_note(payload)


def _patient_note(payload: Mapping[str, Any]) -> None:
    """Effort (RPE, Borg CR10), fatigue (0-10), symptoms and a suspected-relapse flag, at
    check-in or after a session; at least one of them."""
    check_id("patient_id", payload.get("patient_id"))
    if payload.get("phase") not in NOTE_PHASES:
        raise ContractError("bad_field", "phase must be check_in or after_session")
    for key, rng in (("rpe", RPE_RANGE), ("fatigue", FATIGUE_RANGE)):
        if payload.get(key) is not None:
            _number(payload, key, rng)
    for key in ("symptoms", "recorded_by"):
        text = payload.get(key)
        if text is not None and (not isinstance(text, str) or len(text) > MAX_NOTE_CHARS):
            raise ContractError("bad_field", f"{key} must be a string of <= {MAX_NOTE_CHARS} chars")
    relapse = payload.get("relapse_suspected")
    if relapse is not None and not isinstance(relapse, bool):
        raise ContractError("bad_field", "relapse_suspected must be a boolean")
    if all(
        payload.get(k) in (None, "", False)
        for k in ("rpe", "fatigue", "symptoms", "relapse_suspected")
    ):
        raise ContractError(
            "bad_field", "patient_note needs rpe, fatigue, symptoms or relapse_suspected"
        )


def _check_nested(payload: Mapping[str, Any], where: str) -> None:
    """Each diagnostics object (``outbox``, ``framing``, ``calibration``) is null or an
    object of its listed fields only (``unknown_field`` / ``personal_data``)."""
    for key, allowed in STATE_NESTED_FIELDS.items():
        value = payload.get(key)
        if value is None:
            continue
        if not isinstance(value, Mapping):
            raise ContractError("bad_field", f"{where}.{key} must be an object or null")
        check_fields(value, allowed, f"{where}.{key}")


@_total
def validate_state(payload: Mapping[str, Any], topic: TopicParts | None = None) -> None:
    check_version(payload)
    check_ids(payload, topic)
    check_fields(payload, STATE_FIELDS, "state")
    _check_nested(payload, "state")
    error = payload.get("config_error")
    if error is not None and (not isinstance(error, str) or len(error) > MAX_FREE_TEXT_CHARS):
        raise ContractError(
            "bad_field", f"config_error must be a string of <= {MAX_FREE_TEXT_CHARS} chars"
        )
    status = payload.get("status")
    if status not in ("online", "offline"):
        raise ContractError("bad_field", "status must be online or offline")
    if status == "online":
        _int(payload, "ts_ns", *TS_NS_RANGE)
        _number(payload, "rate_hz", RATE_HZ_RANGE)


@_total
def validate_config(payload: Mapping[str, Any], topic: TopicParts | None = None) -> None:
    check_version(payload)
    check_ids(payload, topic)
    check_fields(payload, CONFIG_FIELDS, "config")
    _check_nested({"calibration": payload.get("calibration")}, "config")
    _int(payload, "config_version", 0, _U32)
    if "rate_hz" in payload:
        _number(payload, "rate_hz", RATE_HZ_RANGE)
    if "frame_samples" in payload:
        _int(payload, "frame_samples", MIN_FRAME_SAMPLES, MAX_FRAME_SAMPLES)


VALIDATORS: Final = {
    "telemetry": validate_telemetry,
    "event": validate_event,
    "state": validate_state,
    "config": validate_config,
}


def validate_message(topic: str, raw: bytes) -> tuple[TopicParts, dict[str, Any]]:
    """Parse and validate one MQTT message; raises ContractError with a reason code."""
    parts = parse_topic(topic)
    payload = decode(raw)
    VALIDATORS[parts.kind](payload, parts)
    return parts, payload


# --- Dead letters ------------------------------------------------------------------------------

DeadLetterSource = Literal["bridge", "stream", "sink"]


def dead_letter(
    source: DeadLetterSource,
    origin: str,
    raw: bytes,
    reason: str,
    detail: str,
    received_at_ns: int,
) -> bytes:
    """The dead-letter record every stage writes to ``sledfleet.deadletter``.

    ``origin`` is where the bad input came from (an MQTT or Kafka topic); the original
    bytes travel base64-encoded and whole, with their size and SHA-256.
    """
    return encode(
        {
            "v": SCHEMA_VERSION,
            "source": source,
            "origin": origin[:512],
            "reason": reason,
            "detail": detail[:1000],
            "received_at_ns": received_at_ns,
            "payload_size": len(raw),
            "payload_sha256": hashlib.sha256(raw).hexdigest(),
            "payload_b64": base64.b64encode(raw).decode("ascii"),
        }
    )
