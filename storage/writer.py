"""The sink's database write path: one transaction per batch, idempotent by natural keys.

Per kind, optimistically: binary COPY straight into the target table inside a savepoint
(new rows, the normal case, cost no more than a bare COPY). If any row already exists the
COPY fails with a unique violation, the savepoint is rolled back and the rows take the
idempotent path: COPY into a temporary staging table, then ``INSERT ... SELECT ... ON
CONFLICT (natural key + time) DO UPDATE`` guarded so a redelivered record (same
``emitted_at_ns``) changes nothing and a re-emitted one (newer) wins. Clinics, machines and
patients seen in the batch are registered in the same transaction. The ``insert`` mode
stages with executemany instead of COPY (pglite cannot take COPY FROM STDIN).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Literal

import psycopg
from psycopg import errors, sql

from storage.db import Flavour
from storage.registry import (
    MACHINE_STATUS_TO_REGISTRY,
    REFRESH_CLINIC_ADHERENCE,
    REGISTER_CLINICS,
    REGISTER_MACHINES,
    REGISTER_PATIENTS,
    STATE_TO_REGISTRY,
    clinic_weeks,
    columns,
    latest_status,
    registry_of,
)
from storage.rows import (
    ADHERENCE,
    ALL_SPECS,
    MACHINE_STATUS,
    STATE_FIELDS,
    TableSpec,
    dedup,
)

log = logging.getLogger(__name__)

WriteMode = Literal["copy", "insert"]
PARTITION_UNITS: Final = {"reps": "year", "machine_status": "year", "frames": "day"}
"""Plain PostgreSQL partition unit per partitioned table (mirrors sledfleet.partitioning)."""
NS_PER_S: Final = 1_000_000_000
INSERT_ROWS_PER_STATEMENT: Final = 500
"""Rows per multi-row INSERT in ``insert`` mode (bounded by PostgreSQL's 65535 parameters)."""


EPOCH: Final = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
DAY_NS: Final = 86_400 * NS_PER_S


def ns_to_datetime(ns: int, _epoch: dt.datetime = EPOCH) -> dt.datetime:
    """Same value as SQL ``sledfleet.ns_to_ts`` (microseconds, truncated)."""
    return _epoch + dt.timedelta(microseconds=ns // 1000)


@dataclass
class Batch:
    """Rows to write, grouped by spec, plus machine state updates (birth/death)."""

    rows: dict[str, list[tuple[Any, ...]]] = field(default_factory=lambda: defaultdict(list))
    states: list[tuple[Any, ...]] = field(default_factory=list)

    def add(self, spec: TableSpec, row: tuple[Any, ...]) -> None:
        self.rows[spec.kind].append(row)

    def __len__(self) -> int:
        return sum(len(r) for r in self.rows.values()) + len(self.states)


_SPECS: Final = {s.kind: s for s in ALL_SPECS}


def _stage_name(spec: TableSpec) -> sql.Identifier:
    return sql.Identifier(f"stage_{spec.kind}")


def stage_ddl(spec: TableSpec) -> sql.Composed:
    cols = sql.SQL(", ").join(
        sql.SQL("{} {}").format(sql.Identifier(c.name), sql.SQL(c.pgtype)) for c in spec.columns
    )
    return sql.SQL("CREATE TEMP TABLE IF NOT EXISTS {} ({}) ON COMMIT DELETE ROWS").format(
        _stage_name(spec), cols
    )


def upsert_sql(spec: TableSpec) -> sql.Composed:
    """INSERT ... SELECT from the staging table with the spec's conflict handling."""
    target = sql.Identifier("sledfleet", spec.table)
    names = [sql.Identifier(n) for n in spec.names]
    time_cols = [sql.Identifier(t) for t, _ in spec.times]
    time_exprs = [
        sql.SQL("sledfleet.ns_to_ts({})").format(sql.Identifier(src)) for _, src in spec.times
    ]
    conflict = sql.SQL(", ").join(sql.Identifier(c) for c in spec.conflict)
    insert = sql.SQL("INSERT INTO {} ({}) SELECT {} FROM {} ON CONFLICT ({}) ").format(
        target,
        sql.SQL(", ").join(names + time_cols),
        sql.SQL(", ").join(names + time_exprs),
        _stage_name(spec),
        conflict,
    )
    if not spec.update:
        return insert + sql.SQL("DO NOTHING")
    updatable = [n for n in (*spec.names, *(t for t, _ in spec.times)) if n not in spec.conflict]
    sets = sql.SQL(", ").join(
        sql.SQL("{0} = EXCLUDED.{0}").format(sql.Identifier(n)) for n in updatable
    )
    if spec.version_column:
        guard = sql.SQL("{t}.{v} < EXCLUDED.{v}").format(
            t=target, v=sql.Identifier(spec.version_column)
        )
    else:
        guard = sql.SQL("({}) IS DISTINCT FROM ({})").format(
            sql.SQL(", ").join(
                sql.SQL("{}.{}").format(target, sql.Identifier(n)) for n in updatable
            ),
            sql.SQL(", ").join(sql.SQL("EXCLUDED.{}").format(sql.Identifier(n)) for n in updatable),
        )
    return insert + sql.SQL("DO UPDATE SET {} WHERE {}").format(sets, guard)


def _periods(unit: str, lo_ns: int, hi_ns: int) -> set[tuple[int, ...]]:
    """The partition periods (years or days) spanned by [lo_ns, hi_ns]."""
    lo, hi = ns_to_datetime(lo_ns), ns_to_datetime(hi_ns)
    if unit == "year":
        return {(y,) for y in range(lo.year, hi.year + 1)}
    days = (hi.date() - lo.date()).days
    return {
        (d.year, d.month, d.day)
        for d in (lo.date() + dt.timedelta(days=k) for k in range(days + 1))
    }


class Writer:
    """Writes batches on one autocommit connection (the caller owns reconnects)."""

    def __init__(
        self, conn: psycopg.Connection[Any], flavour: Flavour, mode: WriteMode = "copy"
    ) -> None:
        if not conn.autocommit:
            raise ValueError("Writer needs an autocommit connection")
        self.conn = conn
        self.flavour = flavour
        self.mode = mode
        self._partitions: set[tuple[str, tuple[int, ...]]] = set()
        self._staged: set[str] = set()
        self._upserts = {s.kind: upsert_sql(s) for s in ALL_SPECS}
        self.optimistic = mode == "copy"
        self.fallbacks = 0  # batches (per kind) that met existing rows: replays, re-emissions

    def ensure_partitions(self, batch: Batch) -> None:
        """Plain PostgreSQL: create missing range partitions before the batch transaction
        (CREATE TABLE ... PARTITION OF locks the parent; never inside the batch)."""
        if self.flavour != "postgres":
            return
        for spec in ALL_SPECS:
            rows = batch.rows.get(spec.kind)
            unit = PARTITION_UNITS.get(spec.table)
            if not rows or unit is None:
                continue
            i = spec.names.index(spec.times[0][1])
            lo = min(r[i] for r in rows)
            hi = max(r[i] for r in rows)
            periods = _periods(unit, lo, hi)
            if all((spec.table, p) in self._partitions for p in periods):
                continue
            self.conn.execute(
                "SELECT sledfleet.ensure_partitions(%s, sledfleet.ns_to_ts(%s), "
                "sledfleet.ns_to_ts(%s))",
                (spec.table, lo, hi),
            )
            self._partitions.update((spec.table, p) for p in periods)

    def write(self, batch: Batch) -> dict[str, int]:
        """Write one batch atomically; returns rows staged per kind (after dedup)."""
        self.ensure_partitions(batch)
        counts: dict[str, int] = {}
        reg = registry_of(batch.rows, batch.states)
        with self.conn.transaction(), self.conn.cursor() as cur:
            if reg.clinics:
                cur.execute(REGISTER_CLINICS, (reg.clinics,))
            if reg.machines[0]:
                cur.execute(REGISTER_MACHINES, reg.machines)
            if reg.patients[0]:
                cur.execute(REGISTER_PATIENTS, reg.patients)
            for spec in ALL_SPECS:
                rows = batch.rows.get(spec.kind)
                if not rows:
                    continue
                unique = dedup(spec, rows)
                if not (self.optimistic and self._copy_new(cur, spec, unique)):
                    self._stage(cur, spec, unique)
                    cur.execute(self._upserts[spec.kind])
                counts[spec.kind] = len(unique)
                if spec is MACHINE_STATUS:
                    cur.execute(MACHINE_STATUS_TO_REGISTRY, latest_status(unique))
                elif spec is ADHERENCE:
                    cur.execute(REFRESH_CLINIC_ADHERENCE, clinic_weeks(unique))
            if batch.states:
                cur.execute(STATE_TO_REGISTRY, columns(batch.states, (0, 2, 3, 4, 5, 6, 7)))
        return counts

    def _copy_new(
        self, cur: psycopg.Cursor[Any], spec: TableSpec, rows: Sequence[tuple[Any, ...]]
    ) -> bool:
        """COPY rows into the target in a savepoint; False if some already existed."""
        src = [spec.names.index(s) for _, s in spec.times]
        names = [*spec.names, *(t for t, _ in spec.times)]
        stmt = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT BINARY)").format(
            sql.Identifier("sledfleet", spec.table),
            sql.SQL(", ").join(sql.Identifier(n) for n in names),
        )
        types = [c.pgtype for c in spec.columns] + ["timestamptz"] * len(src)
        try:
            with self.conn.transaction(), cur.copy(stmt) as copy:
                copy.set_types(types)
                for row in rows:
                    copy.write_row((*row, *(ns_to_datetime(row[i]) for i in src)))
        except errors.UniqueViolation:
            self.fallbacks += 1
            return False
        return True

    def _stage(
        self, cur: psycopg.Cursor[Any], spec: TableSpec, rows: Sequence[tuple[Any, ...]]
    ) -> None:
        if spec.kind not in self._staged:
            cur.execute(stage_ddl(spec))
            self._staged.add(spec.kind)
        table = _stage_name(spec)
        cols = sql.SQL(", ").join(sql.Identifier(n) for n in spec.names)
        if self.mode == "copy":
            stmt = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT BINARY)").format(table, cols)
            with cur.copy(stmt) as copy:
                copy.set_types([c.pgtype for c in spec.columns])
                for row in rows:
                    copy.write_row(row)
        else:  # multi-row INSERT ... VALUES: no COPY, no pipeline (pglite takes neither)
            per_row = sql.SQL("({})").format(
                sql.SQL(", ").join(sql.Placeholder() * len(spec.columns))
            )
            step = max(1, min(INSERT_ROWS_PER_STATEMENT, 65535 // len(spec.columns)))
            for k in range(0, len(rows), step):
                chunk = rows[k : k + step]
                stmt = sql.SQL("INSERT INTO {} ({}) VALUES {}").format(
                    table, cols, sql.SQL(", ").join([per_row] * len(chunk))
                )
                cur.execute(stmt, [v for row in chunk for v in row])

    def forget_connection_state(self) -> None:
        """After a reconnect: temp staging tables are gone, partitions may have changed."""
        self._staged.clear()
        self._partitions.clear()


assert len(STATE_FIELDS) == 4  # STATE_TO_REGISTRY's model, serial, agent_version, firmware
