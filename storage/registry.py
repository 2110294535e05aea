"""Registry upkeep inside the batch transaction: clinics, machines and patients a batch
mentions, the machines' latest status and birth/death state, and the per clinic/week
adherence summary. SQL constants plus pure helpers that shape their array parameters."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from psycopg import sql

from storage.rows import ADHERENCE, ALL_SPECS, MACHINE_STATUS

_SPECS: Final = {s.kind: s for s in ALL_SPECS}


REGISTER_CLINICS: Final = sql.SQL(
    "INSERT INTO sledfleet.clinics (clinic_id) SELECT unnest(%s::text[]) "
    "ON CONFLICT (clinic_id) DO NOTHING"
)
REGISTER_MACHINES: Final = sql.SQL(
    "INSERT INTO sledfleet.machines (machine_id, clinic_id, last_seen) "
    "SELECT m, c, sledfleet.ns_to_ts(t) "
    "FROM unnest(%s::text[], %s::text[], %s::int8[]) AS u(m, c, t) "
    "ON CONFLICT (machine_id) DO UPDATE SET last_seen = EXCLUDED.last_seen "
    "WHERE machines.clinic_id = EXCLUDED.clinic_id "
    "AND (machines.last_seen IS NULL OR machines.last_seen < EXCLUDED.last_seen)"
)
"""Never moves a machine to another clinic (issue #13): rows claiming another clinic are
dead-lettered by the sink before this runs (``REGISTERED_CLINICS``); a move is the explicit
``sledfleet db move-machine``, which writes an audit row."""
REGISTERED_MACHINES: Final = sql.SQL(
    "SELECT machine_id, clinic_id FROM sledfleet.machines WHERE machine_id = ANY(%s::text[])"
)
REGISTERED_PATIENTS: Final = sql.SQL(
    "SELECT patient_id, clinic_id FROM sledfleet.patients WHERE patient_id = ANY(%s::text[])"
)
REGISTER_PATIENTS: Final = sql.SQL(
    "INSERT INTO sledfleet.patients (patient_id, clinic_id) "
    "SELECT * FROM unnest(%s::text[], %s::text[]) ON CONFLICT (patient_id) DO NOTHING"
)
MACHINE_STATUS_TO_REGISTRY: Final = sql.SQL(
    "UPDATE sledfleet.machines m SET online = s.status = 'online', "
    "status_at = sledfleet.ns_to_ts(s.ts_ns), "
    "agent_version = coalesce(s.agent_version, m.agent_version), "
    "firmware = coalesce(s.firmware, m.firmware), rate_hz = coalesce(s.rate_hz, m.rate_hz), "
    "config_version = coalesce(s.config_version, m.config_version), "
    "clock_offset_ms = coalesce(s.clock_offset_ms, m.clock_offset_ms), frames = s.frames, "
    "frames_missing = s.frames_missing, frames_replayed = s.frames_replayed, "
    "edge_dropped = s.edge_dropped "
    "FROM unnest(%s::text[], %s::int8[], %s::text[], %s::text[], %s::text[], %s::float8[], "
    "%s::int8[], %s::float8[], %s::int8[], %s::int8[], %s::int8[], %s::int8[]) "
    "AS s(machine_id, ts_ns, status, agent_version, firmware, rate_hz, config_version, "
    "clock_offset_ms, frames, frames_missing, frames_replayed, edge_dropped) "
    "WHERE m.machine_id = s.machine_id "
    "AND (m.status_at IS NULL OR m.status_at <= sledfleet.ns_to_ts(s.ts_ns))"
)
STATUS_REGISTRY_COLUMNS: Final = (
    "machine_id",
    "ts_ns",
    "status",
    "agent_version",
    "firmware",
    "rate_hz",
    "config_version",
    "clock_offset_ms",
    "frames",
    "frames_missing",
    "frames_replayed",
    "edge_dropped",
)


def latest_status(rows: Sequence[tuple[Any, ...]]) -> list[list[Any]]:
    """The newest machine_status row per machine, as MACHINE_STATUS_TO_REGISTRY's arrays
    (machines sorted, so concurrent sinks lock registry rows in the same order)."""
    names = MACHINE_STATUS.names
    mi, ti = names.index("machine_id"), names.index("ts_ns")
    newest: dict[str, tuple[Any, ...]] = {}
    for row in rows:
        old = newest.get(row[mi])
        if old is None or row[ti] > old[ti]:
            newest[row[mi]] = row
    ordered = [newest[m] for m in sorted(newest)]
    return columns(ordered, [names.index(c) for c in STATUS_REGISTRY_COLUMNS])


REFRESH_CLINIC_ADHERENCE: Final = sql.SQL(
    "SELECT sledfleet.refresh_clinic_adherence(%s::text[], %s::date[])"
)


def clinic_weeks(rows: Sequence[tuple[Any, ...]]) -> list[list[Any]]:
    """The sorted, distinct (clinic_id, week_start) pairs an adherence batch touches."""
    ci, wi = ADHERENCE.names.index("clinic_id"), ADHERENCE.names.index("week_start")
    pairs = sorted({(r[ci], r[wi]) for r in rows})
    return [[c for c, _ in pairs], [w for _, w in pairs]]


STATE_TO_REGISTRY: Final = sql.SQL(
    "UPDATE sledfleet.machines m SET online = s.online, "
    "status_at = coalesce(sledfleet.ns_to_ts(s.ts_ns), now()), "
    "model = coalesce(s.model, m.model), serial = coalesce(s.serial, m.serial), "
    "agent_version = coalesce(s.agent_version, m.agent_version), "
    "firmware = coalesce(s.firmware, m.firmware) "
    "FROM unnest(%s::text[], %s::bool[], %s::int8[], %s::text[], %s::text[], %s::text[], "
    "%s::text[]) AS s(machine_id, online, ts_ns, model, serial, agent_version, firmware) "
    "WHERE m.machine_id = s.machine_id "
    "AND (m.status_at IS NULL OR s.ts_ns IS NULL OR m.status_at <= sledfleet.ns_to_ts(s.ts_ns))"
)

# which staging column holds the data time that makes a machine "seen"
_SEEN_NS: Final = {
    "rep": "end_ns",
    "set": "end_ns",
    "session": "end_ns",
    "machine_status": "ts_ns",
    "frame": "t0_ns",
    "event": "ts_ns",
}


@dataclass(frozen=True, slots=True)
class Registry:
    clinics: list[str]
    machines: tuple[list[str], list[str], list[int]]
    patients: tuple[list[str], list[str]]


def registry_of(
    batch_rows: Mapping[str, Sequence[tuple[Any, ...]]], states: Sequence[tuple[Any, ...]]
) -> Registry:
    """Clinics, machines (with latest data time) and patients a batch (rows per kind and
    machine states) mentions, sorted so concurrent sinks lock registry rows in one order."""
    clinics: set[str] = set()
    machines: dict[str, tuple[str, int]] = {}
    patients: dict[str, str] = {}
    for kind, rows in batch_rows.items():
        spec = _SPECS[kind]
        names = spec.names
        ci = names.index("clinic_id") if "clinic_id" in names else None
        mi = names.index("machine_id") if "machine_id" in names else None
        pi = names.index("patient_id") if "patient_id" in names else None
        ti = names.index(_SEEN_NS[kind]) if kind in _SEEN_NS else None
        if ci is None:
            continue
        for row in rows:
            clinic = row[ci]
            clinics.add(clinic)
            if mi is not None and ti is not None and row[mi] is not None:
                seen = machines.get(row[mi])
                if seen is None or row[ti] > seen[1]:
                    machines[row[mi]] = (clinic, row[ti])
            if pi is not None and row[pi] is not None:
                patients.setdefault(row[pi], clinic)
    for st in states:
        clinics.add(st[1])
        if st[0] not in machines:
            machines[st[0]] = (st[1], st[3] or 0)
    ms = sorted(machines)
    ps = sorted(patients)
    return Registry(
        sorted(clinics),
        (ms, [machines[m][0] for m in ms], [machines[m][1] for m in ms]),
        (ps, [patients[p] for p in ps]),
    )


def columns(rows: Sequence[tuple[Any, ...]], idx: Sequence[int]) -> list[list[Any]]:
    return [[r[i] for r in rows] for i in idx]


# --- clinic time zones (``sledfleet db add-clinic --tz`` / ``set-clinic-tz``) ------------------
# The registry is the source of truth; the CLI publishes what these return to the
# ``sledfleet.clinics`` topic (stream/clinic_zones.py). The CHECK on clinics.time_zone refuses
# names missing from the server's tz database (pg_timezone_names).
SET_CLINIC_TIME_ZONE: Final = sql.SQL(
    "INSERT INTO sledfleet.clinics (clinic_id, time_zone, time_zone_updated_at) "
    "VALUES (%s, %s, clock_timestamp()) ON CONFLICT (clinic_id) DO UPDATE "
    "SET time_zone = EXCLUDED.time_zone, time_zone_updated_at = EXCLUDED.time_zone_updated_at"
)
CLINIC_ZONES: Final = sql.SQL(
    "SELECT clinic_id, time_zone, "
    "(extract(epoch FROM coalesce(time_zone_updated_at, first_seen)) * 1000000)::int8 * 1000 "
    "FROM sledfleet.clinics WHERE %s::text[] IS NULL OR clinic_id = ANY(%s::text[]) "
    "ORDER BY clinic_id"
)


def set_clinic_time_zone(conn: Any, clinic_id: str, time_zone: str) -> None:
    """Create the clinic if needed and set its zone (psycopg.errors.CheckViolation when the
    server does not know the zone)."""
    with conn.transaction():
        conn.execute(SET_CLINIC_TIME_ZONE, (clinic_id, time_zone))


def clinic_zones(conn: Any, clinic_ids: Sequence[str] | None = None) -> list[tuple[str, str, int]]:
    """(clinic_id, time_zone, updated_at_ns) of the given clinics (all when None)."""
    ids = None if clinic_ids is None else list(clinic_ids)
    rows = conn.execute(CLINIC_ZONES, (ids, ids)).fetchall()
    return [(r[0], r[1], int(r[2])) for r in rows]


MOVE_MACHINE: Final = sql.SQL(
    "WITH old AS (SELECT machine_id, clinic_id FROM sledfleet.machines "
    "WHERE machine_id = %(machine)s FOR UPDATE), "
    "moved AS (UPDATE sledfleet.machines m SET clinic_id = %(clinic)s FROM old "
    "WHERE m.machine_id = old.machine_id AND old.clinic_id <> %(clinic)s "
    "RETURNING m.machine_id, old.clinic_id AS from_clinic) "
    "INSERT INTO sledfleet.machine_moves (machine_id, from_clinic, to_clinic, reason) "
    "SELECT machine_id, from_clinic, %(clinic)s, %(reason)s FROM moved "
    "RETURNING from_clinic"
)
"""``sledfleet db move-machine``: the only way a machine changes clinic, audited."""
