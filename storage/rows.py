"""Pure conversion of decoded Kafka payloads into database rows (no I/O).

Each ``TableSpec`` names the staging columns of one kind, their binary COPY types and a
check per field. :func:`to_row` validates a payload against its spec and returns the row
tuple, or raises ``ContractError`` with a stable reason: a poison record goes to the
dead-letter topic instead of failing the batch. Time columns of the target tables are
derived in SQL from the ``*_ns`` columns (``sledfleet.ns_to_ts``).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from psycopg.types.json import Jsonb

from edge.contract import (
    SUPPORTED_VERSIONS,
    ContractError,
    validate_event,
    validate_telemetry,
)
from storage.checks import (
    BIG,
    BOOL,
    DATE,
    FLOAT,
    ID,
    INT,
    ISO_WEEK,
    NS,
    OPT_BOOL,
    OPT_FLOAT,
    OPT_ID,
    OPT_TEXT,
    TEXT,
    TIME_ZONE,
    VERSION,
    Check,
    enum,
    optional,
)
from stream.records import NATURAL_KEYS, RECORD_VERSION


@dataclass(frozen=True, slots=True)
class Column:
    name: str
    pgtype: str  # binary COPY type of the staging column
    check: Check
    default: Any = ...  # ``...`` = required field; anything else = value when absent


@dataclass(frozen=True, slots=True)
class TableSpec:
    kind: str
    table: str
    columns: tuple[Column, ...]
    times: tuple[tuple[str, str], ...]  # (target time column, source *_ns column)
    conflict: tuple[str, ...]  # unique index of the target (natural key + time column)
    version_column: str | None = "emitted_at_ns"  # newer emission wins; None = compare rows
    update: bool = True  # False: first write wins (immutable facts: frames, events)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    def dedup_key(self, row: Sequence[Any]) -> tuple[Any, ...]:
        idx = _key_index(self)
        return tuple(row[i] for i in idx)


def _key_index(spec: TableSpec) -> tuple[int, ...]:
    names = spec.names
    src = dict(spec.times)
    return tuple(names.index(src.get(c, c)) for c in spec.conflict)


def C(name: str, pgtype: str, check: Check, default: Any = ...) -> Column:
    return Column(name, pgtype, check, default)


REP: Final = TableSpec(
    "rep",
    "reps",
    (
        C("machine_id", "text", ID),
        C("session_id", "text", ID),
        C("set_no", "int4", INT),
        C("rep_no", "int4", INT),
        C("clinic_id", "text", ID),
        C("patient_id", "text", OPT_ID),
        C("valid", "bool", BOOL),
        C("start_ns", "int8", NS),
        C("top_ns", "int8", NS),
        C("end_ns", "int8", NS),
        C("load_kg", "float8", FLOAT),
        C("rom_mm", "float8", FLOAT),
        C("concentric_s", "float8", FLOAT),
        C("eccentric_s", "float8", FLOAT),
        C("tut_s", "float8", FLOAT),
        C("mcv_ms", "float8", FLOAT),
        C("mpv_ms", "float8", FLOAT),
        C("pv_ms", "float8", FLOAT),
        C("time_to_pv_s", "float8", FLOAT),
        C("pv_position_pct", "float8", FLOAT),
        C("mean_force_n", "float8", FLOAT),
        C("peak_force_n", "float8", FLOAT),
        C("mean_power_w", "float8", FLOAT),
        C("peak_power_w", "float8", FLOAT),
        C("work_j", "float8", FLOAT),
        C("asi_pct", "float8", OPT_FLOAT),
        C("weaker_side", "text", optional(enum("left", "right"))),
        C("sign_changes", "int4", INT),
        C("jerk_score", "float8", FLOAT),
        C("dropout_samples", "int4", INT),
        C("replayed", "bool", BOOL),
        C("emitted_at_ns", "int8", BIG),
    ),
    (("ts", "start_ns"),),
    ("machine_id", "session_id", "set_no", "rep_no", "ts"),
)

SET: Final = TableSpec(
    "set",
    "sets",
    (
        C("machine_id", "text", ID),
        C("session_id", "text", ID),
        C("set_no", "int4", INT),
        C("clinic_id", "text", ID),
        C("patient_id", "text", OPT_ID),
        C("start_ns", "int8", NS),
        C("end_ns", "int8", NS),
        C("load_kg", "float8", FLOAT),
        C("reps", "int4", INT),
        C("partial_reps", "int4", INT),
        C("best_mcv_ms", "float8", OPT_FLOAT),
        C("last_mcv_ms", "float8", OPT_FLOAT),
        C("mean_mcv_ms", "float8", OPT_FLOAT),
        C("velocity_loss_pct", "float8", OPT_FLOAT),
        C("mean_power_w", "float8", OPT_FLOAT),
        C("peak_power_w", "float8", OPT_FLOAT),
        C("work_j", "float8", FLOAT),
        C("tut_s", "float8", FLOAT),
        C("mean_asi_pct", "float8", OPT_FLOAT),
        C("emitted_at_ns", "int8", BIG),
    ),
    (("ts", "start_ns"),),
    ("machine_id", "session_id", "set_no", "ts"),
)

SESSION: Final = TableSpec(
    "session",
    "sessions",
    (
        C("session_id", "text", ID),
        C("clinic_id", "text", ID),
        C("machine_id", "text", ID),
        C("patient_id", "text", OPT_ID),
        C("prescription_id", "text", OPT_ID),
        C("start_ns", "int8", NS),
        C("end_ns", "int8", NS),
        C("end_reason", "text", enum("checkout", "idle_timeout")),
        C("sets", "int4", INT),
        C("reps", "int4", INT),
        C("partial_reps", "int4", INT),
        C("volume_load_kg", "float8", FLOAT),
        C("work_j", "float8", FLOAT),
        C("mean_asi_pct", "float8", OPT_FLOAT),
        C("mean_mcv_ms", "float8", OPT_FLOAT),
        C("max_velocity_loss_pct", "float8", OPT_FLOAT),
        C("duration_s", "float8", FLOAT),
        C("density_j_per_min", "float8", FLOAT),
        C("max_load_kg", "float8", FLOAT),
        C("seat_position", "float8", OPT_FLOAT),
        C("footplate_position", "float8", OPT_FLOAT),
        C("completed_as_prescribed", "bool", OPT_BOOL),
        C("lv_intercept_ms", "float8", OPT_FLOAT),
        C("lv_slope_ms_per_kg", "float8", OPT_FLOAT),
        C("e1rm_kg", "float8", OPT_FLOAT),
        C("emitted_at_ns", "int8", BIG),
    ),
    (("ts", "start_ns"), ("end_ts", "end_ns")),
    ("session_id", "ts"),
)

ADHERENCE: Final = TableSpec(
    "adherence",
    "adherence_weekly",
    (
        C("patient_id", "text", ID),
        C("iso_week", "text", ISO_WEEK),
        C("week_start", "date", DATE),
        C("clinic_id", "text", ID),
        C("prescription_id", "text", OPT_ID),
        C("prescribed", "int4", INT),
        C("attended", "int4", INT),
        C("completed", "int4", INT),
        C("adherence", "float8", OPT_FLOAT),
        C("compliance", "float8", OPT_FLOAT),
        C("relative_compliance", "float8", OPT_FLOAT),
        C("rolling4_prescribed", "int4", INT),
        C("rolling4_attended", "int4", INT),
        C("rolling4_completed", "int4", INT),
        C("rolling4_adherence", "float8", OPT_FLOAT),
        C("rolling4_compliance", "float8", OPT_FLOAT),
        C("emitted_at_ns", "int8", BIG),
        # the clinic zone the week was counted in (records before it existed: UTC)
        C("time_zone", "text", TIME_ZONE, "UTC"),
    ),
    (),
    ("patient_id", "iso_week"),
)

ALERT_RULES: Final = (
    "lapse",
    "dropout_risk",
    "low_adherence",
    "asymmetry",
    "unusual_fatigue",
    "performance_drop",
    "machine_offline",
    "sensor_fault",
    "frame_gap",
    "clock_skew",
)

ALERT: Final = TableSpec(
    "alert",
    "alerts",
    (
        C("rule", "text", enum(*ALERT_RULES)),
        C("subject_id", "text", ID),
        C("window_start_ns", "int8", NS),
        C("ts_ns", "int8", NS),
        C("clinic_id", "text", ID),
        C("patient_id", "text", OPT_ID),
        C("machine_id", "text", OPT_ID),
        C("severity", "text", enum("info", "warning", "critical")),
        C("value", "float8", OPT_FLOAT),
        C("threshold", "float8", OPT_FLOAT),
        C("message", "text", TEXT),
        C("emitted_at_ns", "int8", BIG),
        C("historical", "bool", BOOL, False),
    ),
    (("window_start", "window_start_ns"), ("ts", "ts_ns")),
    ("rule", "subject_id", "window_start_ns"),
)

MACHINE_STATUS: Final = TableSpec(
    "machine_status",
    "machine_status",
    (
        C("machine_id", "text", ID),
        C("ts_ns", "int8", NS),
        C("clinic_id", "text", ID),
        C("status", "text", enum("online", "offline")),
        C("agent_version", "text", OPT_TEXT),
        C("firmware", "text", OPT_TEXT),
        C("rate_hz", "float8", OPT_FLOAT),
        C("config_version", "int8", optional(VERSION)),
        C("clock_offset_ms", "float8", OPT_FLOAT),
        C("frames", "int8", BIG),
        C("frames_replayed", "int8", BIG),
        C("frames_duplicate", "int8", BIG),
        C("frames_missing", "int8", BIG),
        C("edge_dropped", "int8", BIG),
        C("last_seq", "int8", optional(BIG)),
        C("emitted_at_ns", "int8", BIG),
    ),
    (("ts", "ts_ns"),),
    ("machine_id", "ts_ns", "ts"),
)

PRESCRIPTION: Final = TableSpec(
    "prescription",
    "prescriptions",
    (
        C("prescription_id", "text", ID),
        C("patient_id", "text", ID),
        C("clinic_id", "text", ID),
        C("sessions_per_week", "int4", INT),
        C("sets", "int4", INT),
        C("reps", "int4", INT),
        C("load_kg", "float8", FLOAT),
        C("max_velocity_loss_pct", "float8", FLOAT),
        C("start_date", "date", DATE),
        C("end_date", "date", optional(DATE)),
        C("seat_position", "float8", OPT_FLOAT, None),
        C("footplate_position", "float8", OPT_FLOAT, None),
    ),
    (),
    ("prescription_id",),
    version_column=None,
)

# --- inputs that are not stream records (validated by the wire contract) -----------------
FRAME: Final = TableSpec(
    "frame",
    "frames",
    (
        C("machine_id", "text", ID),
        C("seq", "int8", BIG),
        C("clinic_id", "text", ID),
        C("session_id", "text", OPT_ID),
        C("t0_ns", "int8", NS),
        C("rate_hz", "float8", FLOAT),
        C("load_kg", "float8", FLOAT),
        C("replayed", "bool", BOOL),
        C("position_mm", "float4[]", lambda _f, v: v),
        C("force_left_n", "float4[]", lambda _f, v: v),
        C("force_right_n", "float4[]", lambda _f, v: v),
    ),
    (("ts", "t0_ns"),),
    ("machine_id", "seq", "ts"),
    version_column=None,
    update=False,
)

EVENT: Final = TableSpec(
    "event",
    "machine_events",
    (
        C("event_id", "uuid", lambda _f, v: uuid.UUID(v)),
        C("machine_id", "text", ID),
        C("clinic_id", "text", ID),
        C("ts_ns", "int8", NS),
        C("type", "text", TEXT),
        C("seq", "int8", BIG),
        C("session_id", "text", OPT_ID, None),
        C("patient_id", "text", OPT_ID, None),
        C("code", "text", OPT_TEXT, None),
        C("detail", "text", OPT_TEXT, None),
        C("payload", "jsonb", lambda _f, v: v),
    ),
    (("ts", "ts_ns"),),
    ("event_id", "ts"),
    version_column=None,
    update=False,
)

DEAD_LETTER: Final = TableSpec(
    "dead_letter",
    "dead_letters",
    (
        C("payload_sha256", "text", TEXT),
        C("origin", "text", TEXT),
        C("received_at_ns", "int8", NS),
        C("source", "text", TEXT),
        C("reason", "text", TEXT),
        C("detail", "text", TEXT),
        C("payload_size", "int4", INT),
    ),
    (("received_at", "received_at_ns"),),
    ("payload_sha256", "origin", "received_at"),
    version_column=None,
    update=False,
)

RECORD_SPECS: Final[Mapping[str, TableSpec]] = {
    s.kind: s for s in (REP, SET, SESSION, ADHERENCE, ALERT, MACHINE_STATUS, PRESCRIPTION)
}
ALL_SPECS: Final[tuple[TableSpec, ...]] = (*RECORD_SPECS.values(), FRAME, EVENT, DEAD_LETTER)
STATE_FIELDS: Final = ("model", "serial", "agent_version", "firmware")

assert all(  # the conflict targets are the contract's natural keys (+ the time column)
    set(NATURAL_KEYS[k]) <= set(s.conflict) | {src for _, src in s.times}
    for k, s in RECORD_SPECS.items()
)


_MISSING: Final = object()
_PLANS: dict[str, tuple[tuple[str, Check, Any], ...]] = {}


def _fill(spec: TableSpec, payload: Mapping[str, Any]) -> tuple[Any, ...]:
    plan = _PLANS.get(spec.kind)
    if plan is None:
        plan = _PLANS[spec.kind] = tuple(
            (c.name, c.check, _MISSING if c.default is ... else c.default) for c in spec.columns
        )
    get = payload.get
    out = []
    for name, check, default in plan:
        value = get(name, _MISSING)
        if value is _MISSING:
            if default is _MISSING:
                raise ContractError("missing_field", f"{spec.kind}.{name} is missing")
            value = default
        out.append(check(name, value))
    return tuple(out)


def record_row(payload: Mapping[str, Any]) -> tuple[TableSpec, tuple[Any, ...]]:
    """A stream→storage record (stream/records.py) as (spec, staging row)."""
    v = payload.get("v")
    if v != RECORD_VERSION or isinstance(v, bool):
        raise ContractError("unknown_version", f"record version {str(v)[:16]!r} not supported")
    kind = payload.get("kind")
    spec = RECORD_SPECS.get(kind) if isinstance(kind, str) else None
    if spec is None:
        raise ContractError("unknown_kind", f"record kind {str(kind)[:32]!r}")
    return spec, _fill(spec, payload)


def frame_row(payload: Mapping[str, Any]) -> tuple[Any, ...]:
    validate_telemetry(payload)
    return _fill(FRAME, payload)


def event_row(payload: Mapping[str, Any]) -> tuple[Any, ...]:
    """The event's row; its ``payload`` column is the whole event as a JSON object.

    The value is wrapped in :class:`Jsonb` (the object, not its text): binary COPY into a
    ``jsonb`` column encodes a ``str`` once more, which stored a JSON string holding the
    object (migration 0015 unwraps such rows); the wrapper is right for COPY and INSERT."""
    validate_event(payload)
    return _fill(EVENT, {**payload, "payload": Jsonb(dict(payload))})


def dead_letter_row(payload: Mapping[str, Any]) -> tuple[Any, ...]:
    if payload.get("v") not in SUPPORTED_VERSIONS:
        raise ContractError("unknown_version", "dead-letter version not supported")
    return _fill(DEAD_LETTER, payload)


def state_row(payload: Mapping[str, Any]) -> tuple[Any, ...]:
    """(machine_id, clinic_id, online, ts_ns | None, model, serial, agent_version, firmware)."""
    if payload.get("v") not in SUPPORTED_VERSIONS:
        raise ContractError("unknown_version", "state version not supported")
    machine_id = ID("machine_id", payload.get("machine_id"))
    clinic_id = ID("clinic_id", payload.get("clinic_id"))
    status = enum("online", "offline")("status", payload.get("status"))
    ts_ns = optional(NS)("ts_ns", payload.get("ts_ns"))
    extra = tuple(OPT_TEXT(f, payload.get(f)) for f in STATE_FIELDS)
    return (machine_id, clinic_id, status == "online", ts_ns, *extra)


def dedup(spec: TableSpec, rows: Iterable[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """One row per conflict key (ON CONFLICT cannot touch a row twice); the newest emission
    wins, or the last one seen when the spec has no version column."""
    idx = _key_index(spec)
    ver = spec.names.index(spec.version_column) if spec.version_column else None
    best: dict[tuple[Any, ...], tuple[Any, ...]] = {}
    for row in rows:
        key = tuple(row[i] for i in idx)
        old = best.get(key)
        if old is None or ver is None or row[ver] >= old[ver]:
            if old is not None and not spec.update:
                continue  # immutable facts: first write wins, like the database
            best[key] = row
    return list(best.values())
