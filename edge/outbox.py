"""The durable store-and-forward outbox: one SQLite file (WAL) per machine.

A message is written here *before* it is handed to MQTT and deleted only after its
PUBACK, or, with end-to-end acknowledgement (``edge/acks.py``), only after a bridge said
Kafka holds its seq (``delete_acked``). Writes are batched: one transaction per ``store``
call (the agent stores every frame batch of a pump tick together) and one per ``delete``
batch of acknowledged rows.

Also persisted here, in the same transactions as the rows they describe: the next
telemetry ``seq`` and event ``seq`` (so numbering continues after a restart or a
kill -9), the applied configuration and the drop counters.

Bounded: ``max_rows`` rows and ``max_bytes`` payload bytes. **Policy when full:** the
oldest *telemetry* rows that have not been handed to MQTT yet are deleted until the
outbox is within both bounds again; every dropped frame and its samples are counted
(``dropped_frames``, ``dropped_samples``, persisted, reported in the agent's ``state``
birth as ``outbox_dropped``), and downstream sees the gap in ``seq``. Events are never
dropped: if only events remain, the outbox grows past its bound (events are small and
rare). A new frame is never refused: the newest data is kept, the oldest goes first.

``"replayed"`` is stored as the last key of each payload (``..."replayed":false}``);
``replayed_bytes`` flips it when a row is re-sent from the buffer after a connection
loss or a restart.
"""

from __future__ import annotations

import fcntl
import json
import logging
import sqlite3
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

log = logging.getLogger(__name__)

DEFAULT_MAX_ROWS: Final = 200_000
"""About 28 h of one machine at 100 Hz in 50-sample frames."""
DEFAULT_MAX_BYTES: Final = 512 * 1024 * 1024
SYNCHRONOUS_MODES: Final = frozenset({"OFF", "NORMAL", "FULL"})

_FALSE_TAIL: Final = b'"replayed":false}'
_TRUE_TAIL: Final = b'"replayed":true}'

_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    topic TEXT NOT NULL,
    payload BLOB NOT NULL,
    qos INTEGER NOT NULL,
    retain INTEGER NOT NULL,
    samples INTEGER NOT NULL,
    seq INTEGER
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""
_SEQ_INDEX: Final = "CREATE INDEX IF NOT EXISTS outbox_seq ON outbox(kind, seq)"
"""End-to-end acks name seqs: deleting a range is an index range scan."""


class OutboxInUse(RuntimeError):
    pass


def replayed_bytes(payload: bytes) -> bytes:
    """The payload with its trailing ``"replayed":false`` flipped to true."""
    if payload.endswith(_FALSE_TAIL):
        return payload[: -len(_FALSE_TAIL)] + _TRUE_TAIL
    return payload


@dataclass(frozen=True, slots=True)
class Row:
    id: int
    kind: str
    topic: str
    payload: bytes
    qos: int
    retain: bool
    samples: int


@dataclass(frozen=True, slots=True)
class NewRow:
    kind: str
    topic: str
    payload: bytes
    qos: int = 1
    retain: bool = False
    samples: int = 0
    seq: int | None = None
    """The frame or event seq (what end-to-end acks name); None for other messages."""


@dataclass(frozen=True, slots=True)
class OutboxStats:
    rows: int
    bytes: int
    dropped_frames: int
    dropped_samples: int

    def as_dict(self) -> dict[str, int]:
        return {
            "rows": self.rows,
            "bytes": self.bytes,
            "dropped_frames": self.dropped_frames,
            "dropped_samples": self.dropped_samples,
        }


class Outbox:
    """One machine's outbox. Not thread-safe: the agent serialises access."""

    def __init__(
        self,
        path: str | Path,
        max_rows: int = DEFAULT_MAX_ROWS,
        max_bytes: int = DEFAULT_MAX_BYTES,
        synchronous: str = "FULL",
    ) -> None:
        if synchronous not in SYNCHRONOUS_MODES:
            raise ValueError(f"synchronous must be one of {sorted(SYNCHRONOUS_MODES)}")
        if max_rows < 1 or max_bytes < 1:
            raise ValueError("outbox bounds must be positive")
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # one agent per outbox: a second one would reuse seqs and fight over the client id
        self._lock_file = open(self.path.with_name(self.path.name + ".lock"), "w")  # noqa: SIM115
        try:
            fcntl.flock(self._lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            self._lock_file.close()
            raise OutboxInUse(f"{self.path} is used by another running agent") from exc
        self.max_rows = max_rows
        self.max_bytes = max_bytes
        self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(f"PRAGMA synchronous={synchronous}")
        self._db.executescript(_SCHEMA)
        self._add_seq_column()
        self._rows, self._bytes = self._db.execute(
            "SELECT count(*), coalesce(sum(length(payload)), 0) FROM outbox"
        ).fetchone()
        self._meta: dict[str, Any] = {
            k: json.loads(v) for k, v in self._db.execute("SELECT key, value FROM meta")
        }

    def _add_seq_column(self) -> None:
        """Outboxes written before end-to-end acks lack ``seq``: add it from the payloads."""
        columns = {r[1] for r in self._db.execute("PRAGMA table_info(outbox)")}
        if "seq" not in columns:
            with self._tx():
                self._db.execute("ALTER TABLE outbox ADD COLUMN seq INTEGER")
                self._db.execute(
                    "UPDATE outbox SET seq = json_extract(payload, '$.seq') "
                    "WHERE kind IN ('telemetry', 'event')"
                )
        self._db.execute(_SEQ_INDEX)

    # --- persisted metadata ------------------------------------------------------------------

    def meta(self, key: str, default: Any = None) -> Any:
        return self._meta.get(key, default)

    def set_meta(self, **values: Any) -> None:
        with self._tx():
            self._put_meta(values)

    def _put_meta(self, values: dict[str, Any]) -> None:
        self._db.executemany(
            "INSERT INTO meta(key, value) VALUES (?, ?) "
            "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            [(k, json.dumps(v)) for k, v in values.items()],
        )
        self._meta.update(values)

    # --- rows ----------------------------------------------------------------------------------

    def store(
        self,
        rows: Iterable[NewRow],
        protect_upto: int = 0,
        protect: Collection[int] = (),
        **meta: Any,
    ) -> int:
        """Insert rows (and meta such as the next seq) in one transaction; enforce the bound.

        ``protect_upto``: rows with ids up to this one are in flight and never dropped;
        ``protect``: these rows neither (end-to-end mode: only the rows in MQTT's hands, so
        rows waiting for their ack can make room, counted as dropped like any other).
        Returns the number of frames dropped to make room.
        """
        batch = [(r.kind, r.topic, r.payload, r.qos, int(r.retain), r.samples, r.seq) for r in rows]
        with self._tx():
            self._db.executemany(
                "INSERT INTO outbox(kind, topic, payload, qos, retain, samples, seq) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                batch,
            )
            self._rows += len(batch)
            self._bytes += sum(len(r[2]) for r in batch)
            dropped = self._enforce_bounds(protect_upto, protect)
            if meta:
                self._put_meta(meta)
        return dropped

    def _enforce_bounds(self, protect_upto: int, protect: Collection[int] = ()) -> int:
        if self._rows <= self.max_rows and self._bytes <= self.max_bytes:
            return 0
        excess_rows = self._rows - self.max_rows
        excess_bytes = self._bytes - self.max_bytes
        victims: list[int] = []
        freed_bytes = samples = 0
        cur = self._db.execute(
            "SELECT id, length(payload), samples FROM outbox "
            "WHERE kind = 'telemetry' AND id > ? ORDER BY id",
            (protect_upto,),
        )
        for row_id, size, n in cur:
            if len(victims) >= excess_rows and freed_bytes >= excess_bytes:
                break
            if row_id in protect:
                continue
            victims.append(row_id)
            freed_bytes += size
            samples += n
        cur.close()
        if not victims:
            return 0
        self._db.executemany("DELETE FROM outbox WHERE id = ?", [(i,) for i in victims])
        self._rows -= len(victims)
        self._bytes -= freed_bytes
        frames = int(self._meta.get("dropped_frames", 0)) + len(victims)
        total_samples = int(self._meta.get("dropped_samples", 0)) + samples
        self._put_meta({"dropped_frames": frames, "dropped_samples": total_samples})
        log.warning(
            "outbox %s full: dropped %s oldest frames (%s samples); %s dropped in total",
            self.path.name,
            len(victims),
            samples,
            frames,
        )
        return len(victims)

    def delete(self, ids: Iterable[int]) -> None:
        """Delete acknowledged rows, one transaction."""
        keys = [(i,) for i in ids]
        if not keys:
            return
        with self._tx():
            for (i,) in keys:
                size = self._db.execute(
                    "DELETE FROM outbox WHERE id = ? RETURNING length(payload)", (i,)
                ).fetchone()
                if size is not None:
                    self._rows -= 1
                    self._bytes -= size[0]

    def delete_acked(
        self, acked: Iterable[tuple[str, list[tuple[int, int]]]], upto_id: int
    ) -> tuple[int, int]:
        """Delete rows of ``kind`` whose seq lies in one of the inclusive ranges, among rows
        with id <= ``upto_id`` (those handed to MQTT: an ack cannot name a row never sent).
        One transaction; returns the rows deleted and the highest id deleted (0: none)."""
        deleted = top = 0
        with self._tx():
            for kind, ranges in acked:
                for lo, hi in ranges:
                    cur = self._db.execute(
                        "DELETE FROM outbox WHERE kind = ? AND seq BETWEEN ? AND ? AND id <= ? "
                        "RETURNING id, length(payload)",
                        (kind, lo, hi, upto_id),
                    )
                    for row_id, size in cur:
                        deleted += 1
                        top = max(top, row_id)
                        self._bytes -= size
            self._rows -= deleted
        return deleted, top

    def min_id(self) -> int | None:
        row = self._db.execute("SELECT min(id) FROM outbox").fetchone()
        return None if row[0] is None else int(row[0])

    def after(self, row_id: int, limit: int) -> list[Row]:
        """Up to ``limit`` rows with id greater than ``row_id``, oldest first."""
        cur = self._db.execute(
            "SELECT id, kind, topic, payload, qos, retain, samples FROM outbox "
            "WHERE id > ? ORDER BY id LIMIT ?",
            (row_id, limit),
        )
        return [Row(i, k, t, bytes(p), q, bool(r), n) for i, k, t, p, q, r, n in cur]

    def by_ids(self, ids: Iterable[int]) -> list[Row]:
        out = []
        for i in sorted(ids):
            r = self._db.execute(
                "SELECT id, kind, topic, payload, qos, retain, samples FROM outbox WHERE id = ?",
                (i,),
            ).fetchone()
            if r is not None:
                out.append(Row(r[0], r[1], r[2], bytes(r[3]), r[4], bool(r[5]), r[6]))
        return out

    @property
    def rows(self) -> int:
        return int(self._rows)

    def max_id(self) -> int:
        row = self._db.execute("SELECT coalesce(max(id), 0) FROM outbox").fetchone()
        return int(row[0])

    def stats(self) -> OutboxStats:
        return OutboxStats(
            self._rows,
            self._bytes,
            int(self._meta.get("dropped_frames", 0)),
            int(self._meta.get("dropped_samples", 0)),
        )

    def close(self) -> None:
        self._db.close()
        self._lock_file.close()  # releases the lock (so does the process dying)

    def _tx(self) -> _Transaction:
        return _Transaction(self._db)


class _Transaction:
    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def __enter__(self) -> None:
        self._db.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        self._db.execute("COMMIT" if exc_type is None else "ROLLBACK")
