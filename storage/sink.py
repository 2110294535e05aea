"""``sledfleet sink``: the stream's output topics into the database, exactly once in effect.

Loop: poll up to ``max_records`` or ``max_wait_ms``; parse every message (poison → the
dead-letter topic with ``edge.contract.dead_letter("sink", ...)``); write the batch in ONE
database transaction (storage/writer.py, idempotent upserts); flush dead letters; only then
commit the Kafka offsets. A crash anywhere before the offset commit replays the batch,
which the natural-key upserts absorb.

A database outage (connection errors) stops consumption: the batch in hand is retried with
exponential backoff on a fresh connection, no new messages are polled, offsets stay
uncommitted, and consumption resumes where it stopped. Rows the database rejects
(DataError/IntegrityError) are isolated by bisecting the batch and dead-lettered.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import psycopg
from psycopg import errors

from edge.contract import (
    KAFKA_DEADLETTER,
    MAX_DEAD_LETTER_BYTES,
    MAX_PAYLOAD_BYTES,
    ContractError,
    dead_letter,
)
from edge.settings import KafkaSettings, env, load
from storage import queries
from storage.db import Flavour, connect, installed_flavour
from storage.metrics import Metrics, serve
from storage.registry import REGISTERED_MACHINES, REGISTERED_PATIENTS
from storage.routing import OTHER_KIND, STATE, Parsed, claims, foreign, parse, topics
from storage.writer import Batch, WriteMode, Writer
from stream.app.watchdog import RebalanceWatch

log = logging.getLogger(__name__)

NS_PER_S: Final = 1_000_000_000
REFRESH_LOCK_KEY: Final = 0x5F1ED_0002
"""Advisory lock so only one of several sinks refreshes the materialized views."""
REFRESH_DUTY_FACTOR: Final = 10.0
"""Plain PostgreSQL: wait at least this many times the last refresh's duration."""


@dataclass(frozen=True, slots=True)
class SinkSettings:
    group_id: str = env("SLEDFLEET_SINK_GROUP", "sledfleet-sink")
    max_records: int = env("SLEDFLEET_SINK_MAX_RECORDS", 5000)
    """Largest batch (one database transaction)."""
    max_wait_ms: int = env("SLEDFLEET_SINK_MAX_WAIT_MS", 500)
    """Longest a partial batch waits for more records before it is written."""
    metrics_port: int = env("SLEDFLEET_SINK_METRICS_PORT", 9102)
    """/metrics and /health; 0 disables the endpoint."""
    metrics_host: str = env("SLEDFLEET_SINK_METRICS_HOST", "127.0.0.1")
    """Address the metrics endpoint listens on: loopback by default; a deployment whose
    Prometheus scrapes from another host sets its own address (compose: 0.0.0.0)."""
    frames: bool = env("SLEDFLEET_SINK_FRAMES", False)
    """Also store raw telemetry frames (short retention)."""
    frames_max_age_s: int = env("SLEDFLEET_SINK_FRAMES_MAX_AGE_S", 7 * 86400)
    """Frames older than this are skipped (they would be dropped by retention anyway)."""
    events: bool = env("SLEDFLEET_SINK_EVENTS", True)
    state: bool = env("SLEDFLEET_SINK_STATE", True)
    dead_letters: bool = env("SLEDFLEET_SINK_DEAD_LETTERS", True)
    """Store a summary of every dead letter (all stages) for the data-quality panels."""
    write_mode: str = env("SLEDFLEET_SINK_WRITE_MODE", "copy")
    """copy (binary COPY into staging) or insert (executemany; for pglite)."""
    refresh_s: float = env("SLEDFLEET_SINK_REFRESH_S", 60.0)
    """Plain PostgreSQL: refresh the materialized views this often (0 = never)."""
    maintain_s: float = env("SLEDFLEET_SINK_MAINTAIN_S", 3600.0)
    """Plain PostgreSQL: drop expired partitions this often (0 = never)."""
    backoff_min_s: float = env("SLEDFLEET_SINK_BACKOFF_MIN_S", 0.5)
    backoff_max_s: float = env("SLEDFLEET_SINK_BACKOFF_MAX_S", 10.0)
    session_timeout_ms: int = env("SLEDFLEET_SINK_SESSION_TIMEOUT_MS", 10000)
    max_poll_interval_ms: int = env("SLEDFLEET_SINK_MAX_POLL_INTERVAL_MS", 600000)
    assignment_stuck_s: float = env("SLEDFLEET_SINK_ASSIGNMENT_STUCK_S", 120.0)
    """How long the consumer may hold no partition at all before it is closed and created
    again (0 = never). kafka-python can hang in a rebalance for good: seen at start-up on a
    loaded machine, the group leader logged its assignment and never synced, so the sink
    read nothing for 9 minutes. A sink that legitimately holds nothing (more sinks than
    partitions) rejoins this often."""


@dataclass(frozen=True, slots=True)
class Item:
    topic: str
    parsed: Parsed


class Sink:
    def __init__(
        self,
        dsn: str,
        settings: SinkSettings | None = None,
        kafka: KafkaSettings | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        self.dsn = dsn
        self.settings = settings or load(SinkSettings)
        self.kafka = kafka or load(KafkaSettings)
        self.metrics = metrics or Metrics()
        s = self.settings
        self.parsers = topics(
            self.kafka.topic_prefix,
            frames=s.frames,
            events=s.events,
            state=s.state,
            dead_letters=s.dead_letters,
        )
        self.dead_topic = self.kafka.topic_prefix + KAFKA_DEADLETTER
        self._writer: Writer | None = None
        self._flavour: Flavour | None = None
        self._pending_dead: list[Any] = []

    # --- database ------------------------------------------------------------------------
    def _connect(self) -> Writer:
        if self._writer is not None and not self._writer.conn.closed:
            return self._writer
        conn = connect(self.dsn, autocommit=True)
        flavour = installed_flavour(conn)
        if flavour is None:
            conn.close()
            raise RuntimeError("database not migrated: run `sledfleet db migrate` first")
        self._flavour = flavour
        self._writer = Writer(conn, flavour, _mode(self.settings.write_mode))
        return self._writer

    def _drop_connection(self) -> None:
        if self._writer is not None:
            with contextlib.suppress(psycopg.Error):
                self._writer.conn.close()
        self._writer = None

    def write_items(self, items: Sequence[Item], producer: Any, stop: threading.Event) -> None:
        """Write until the database has the batch (retrying outages) or ``stop`` is set;
        rows the database rejects are bisected out and dead-lettered."""
        delay = self.settings.backoff_min_s
        owned: Sequence[Item] | None = None
        while True:
            try:
                if owned is None:
                    owned = self._own_clinic_only(items, producer)
                self._write_isolating(owned, producer)
                if not self.metrics.healthy:
                    log.info("database is back; resuming consumption")
                self.metrics.healthy, self.metrics.status = True, "ok"
                return
            except (psycopg.OperationalError, psycopg.InterfaceError) as exc:
                self.metrics.inc("db_errors_total")
                self.metrics.healthy, self.metrics.status = False, "db_unavailable"
                log.warning(
                    "database unavailable (%s); consumption paused, retry in %.1f s",
                    str(exc).strip()[:200],
                    delay,
                )
                self._drop_connection()
                if stop.wait(delay):
                    raise InterruptedError("stopped while the database was unavailable") from exc
                delay = min(delay * 2, self.settings.backoff_max_s)

    def _own_clinic_only(self, items: Sequence[Item], producer: Any) -> list[Item]:
        """Drop (dead-letter, reason ``clinic_mismatch``) rows claiming a machine or patient
        the registry holds for another clinic: the sink never moves either between clinics."""
        found = [claims(it.parsed) for it in items]
        machines = sorted({m for _, m, _ in found if m is not None})
        patients = sorted({p for _, _, p in found if p is not None})
        conn = self._connect().conn
        with conn.cursor() as cur:
            cur.execute(REGISTERED_MACHINES, (machines,))
            machine_clinic = dict(cur.fetchall())
            cur.execute(REGISTERED_PATIENTS, (patients,))
            patient_clinic = dict(cur.fetchall())
        kept: list[Item] = []
        for it, (clinic, machine, patient) in zip(items, found, strict=True):
            why = foreign(it.parsed, machine_clinic, patient_clinic)
            if why is None:
                kept.append(it)
                if clinic is not None:  # a new id belongs to the first clinic claiming it
                    if machine is not None:
                        machine_clinic.setdefault(machine, clinic)
                    if patient is not None:
                        patient_clinic.setdefault(patient, clinic)
            else:
                self._dead(producer, it.topic, repr(it.parsed.row).encode(), "clinic_mismatch", why)
        return kept

    def _write_isolating(self, items: Sequence[Item], producer: Any) -> None:
        writer = self._connect()
        batch = Batch()
        for it in items:
            if it.parsed.spec is None:
                batch.states.append(it.parsed.row)
            else:
                batch.add(it.parsed.spec, it.parsed.row)
        t0 = time.perf_counter()
        try:
            counts = writer.write(batch)
        except (errors.DataError, errors.IntegrityError) as exc:
            if len(items) == 1:
                self._dead(
                    producer,
                    items[0].topic,
                    repr(items[0].parsed.row).encode(),
                    "db_rejected",
                    str(exc).strip(),
                )
                return
            mid = len(items) // 2
            self._write_isolating(items[:mid], producer)
            self._write_isolating(items[mid:], producer)
            return
        self.metrics.inc("batch_seconds_sum", time.perf_counter() - t0)
        self.metrics.inc("batches_total")
        for kind, n in counts.items():
            self.metrics.inc("rows_written_total", n, kind=kind)

    # --- dead letters ---------------------------------------------------------------------
    def _dead(self, producer: Any, origin: str, raw: bytes, reason: str, detail: str) -> None:
        log.info("dead letter from %s: %s (%s)", origin, reason, detail[:200])
        value = dead_letter("sink", origin, raw, reason, detail, time.time_ns())
        self._pending_dead.append(producer.send(self.dead_topic, key=origin.encode(), value=value))
        self.metrics.inc("dead_letters_total", reason=reason)

    def _flush_dead(self, producer: Any) -> None:
        if self._pending_dead:
            producer.flush()
            for fut in self._pending_dead:
                fut.get(timeout=30)  # raise if Kafka did not take it: offsets stay uncommitted
            self._pending_dead.clear()

    # --- one poll → parsed items ------------------------------------------------------------
    def collect(self, records: Mapping[Any, Sequence[Any]], producer: Any) -> list[Item]:
        items: list[Item] = []
        now_ns = time.time_ns()
        oldest_frame = now_ns - self.settings.frames_max_age_s * NS_PER_S
        for tp, msgs in records.items():
            parser = self.parsers.get(tp.topic)
            for msg in msgs:
                self.metrics.inc("records_in_total", topic=tp.topic)
                if msg.value is None:
                    self.metrics.inc("tombstones_total", topic=tp.topic)
                    continue
                try:
                    if parser is None:
                        raise ContractError("unknown_topic", tp.topic[:200])
                    dead_topic = tp.topic == self.dead_topic
                    limit = MAX_DEAD_LETTER_BYTES if dead_topic else MAX_PAYLOAD_BYTES
                    parsed = parse(parser, msg.value, limit)
                except ContractError as exc:
                    if tp.topic == self.dead_topic:
                        # never dead-letter a dead letter (that would loop): count and skip
                        log.warning("unreadable dead letter skipped: %s", exc)
                        self.metrics.inc("dead_letters_unreadable_total")
                        continue
                    self._dead(producer, tp.topic, msg.value, exc.reason, exc.detail)
                    continue
                if parsed.kind == OTHER_KIND:
                    self.metrics.inc("machine_topic_other_kinds_total")
                    continue
                if parsed.kind == "frame" and parsed.row[4] < oldest_frame:
                    self.metrics.inc("frames_expired_total")
                    continue
                items.append(Item(tp.topic, parsed))
        return items

    # --- main loop ------------------------------------------------------------------------
    def run(self, stop: threading.Event, consumer: Any = None, producer: Any = None) -> None:
        consumer = consumer or self._consumer()
        producer = producer or self._producer()
        self._connect_with_retry(stop)
        maint = threading.Thread(
            target=self._maintenance, args=(stop,), name="sink-maint", daemon=True
        )
        maint.start()
        self.metrics.status = "ok"
        log.info("sink consuming %d topics as group %s", len(self.parsers), self.settings.group_id)
        # a consumer holding no partition at all is taken to be in a rebalance
        unassigned = RebalanceWatch(self.settings.assignment_stuck_s)
        try:
            while not stop.is_set():
                records = self._poll_batch(consumer, stop)
                stuck = unassigned.observe(not consumer.assignment(), time.monotonic())
                if stuck is not None:
                    log.error(
                        "no partition assigned for %.0f s (a rebalance that never completed): "
                        "closing the Kafka consumer and joining again "
                        "(SLEDFLEET_SINK_ASSIGNMENT_STUCK_S)",
                        stuck,
                    )
                    self.metrics.inc("consumer_rejoins_total")
                    consumer.close(autocommit=False)
                    consumer = self._consumer()
                    continue
                if not records:
                    continue
                items = self.collect(records, producer)
                if items:
                    self.write_items(items, producer, stop)
                self._flush_dead(producer)
                self._commit(consumer)
        except InterruptedError:
            log.info("stopped with an unwritten batch; it is replayed on the next start")
        finally:
            consumer.close(autocommit=False)
            producer.close(timeout=10)
            self._drop_connection()

    def _poll_batch(self, consumer: Any, stop: threading.Event) -> dict[Any, list[Any]]:
        s = self.settings
        deadline = time.monotonic() + s.max_wait_ms / 1000
        out: dict[Any, list[Any]] = {}
        n = 0
        while n < s.max_records and not stop.is_set():
            left = deadline - time.monotonic()
            if left <= 0 and n:
                break
            got = consumer.poll(timeout_ms=max(int(left * 1000), 50), max_records=s.max_records - n)
            for tp, msgs in got.items():
                out.setdefault(tp, []).extend(msgs)
                n += len(msgs)
            if left <= 0:
                break
        return out

    def _commit(self, consumer: Any) -> None:
        from kafka.errors import CommitFailedError

        try:
            consumer.commit()
            self.metrics.set("last_commit_unix", time.time())
            self.metrics.record_lag(consumer)  # this thread owns the consumer
        except CommitFailedError as exc:  # rebalanced meanwhile: the batch is replayed, harmlessly
            log.warning("offset commit failed (%s); records will be redelivered", exc)
            self.metrics.inc("commit_failures_total")

    def _connect_with_retry(self, stop: threading.Event) -> None:
        delay = self.settings.backoff_min_s
        while not stop.is_set():
            try:
                self._connect()
                return
            except psycopg.OperationalError as exc:
                self.metrics.healthy, self.metrics.status = False, "db_unavailable"
                log.warning(
                    "cannot connect to the database (%s); retry in %.1f s",
                    str(exc).strip()[:200],
                    delay,
                )
                stop.wait(delay)
                delay = min(delay * 2, self.settings.backoff_max_s)

    def _maintenance(self, stop: threading.Event) -> None:
        """Plain PostgreSQL: refresh materialized views and apply retention periodically, on
        a separate connection, one sink at a time (advisory lock). A full refresh costs more
        as history grows, so the pause after one is at least REFRESH_DUTY_FACTOR times its
        duration: refreshing never takes more than ~1/REFRESH_DUTY_FACTOR of a core."""
        s = self.settings
        if self._flavour != "postgres" or s.refresh_s <= 0:
            return
        last_maint = 0.0
        pause = s.refresh_s
        while not stop.wait(pause):
            try:
                with connect(self.dsn, autocommit=True) as conn:
                    got = conn.execute("SELECT pg_try_advisory_lock(%s)", (REFRESH_LOCK_KEY,))
                    row = got.fetchone()
                    if not row or not row[0]:
                        continue
                    t0 = time.monotonic()
                    queries.refresh(conn, "postgres")
                    took = time.monotonic() - t0
                    pause = max(s.refresh_s, REFRESH_DUTY_FACTOR * took)
                    self.metrics.inc("refreshes_total")
                    self.metrics.set("refresh_seconds", took)
                    if s.maintain_s > 0 and time.monotonic() - last_maint > s.maintain_s:
                        queries.maintain(conn, "postgres")
                        last_maint = time.monotonic()
            except psycopg.Error as exc:
                log.warning("aggregate refresh failed: %s", str(exc).strip()[:200])

    def _consumer(self) -> Any:
        from kafka import KafkaConsumer

        s = self.settings
        return KafkaConsumer(
            *self.parsers,
            bootstrap_servers=self.kafka.bootstrap,
            group_id=s.group_id,
            client_id=f"{s.group_id}-sink",
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_poll_records=s.max_records,
            session_timeout_ms=s.session_timeout_ms,
            heartbeat_interval_ms=max(s.session_timeout_ms // 4, 500),
            max_poll_interval_ms=s.max_poll_interval_ms,
            fetch_max_bytes=64 * 1024 * 1024,
            max_partition_fetch_bytes=8 * 1024 * 1024,
            **self.kafka.kafka_python_auth(),
        )

    def _producer(self) -> Any:
        from kafka import KafkaProducer

        return KafkaProducer(
            bootstrap_servers=self.kafka.bootstrap,
            acks="all",
            linger_ms=5,
            max_request_size=MAX_DEAD_LETTER_BYTES + 1024 * 1024,
            **self.kafka.kafka_python_auth(),
        )


def _mode(value: str) -> WriteMode:
    if value not in ("copy", "insert"):
        raise ValueError(f"SLEDFLEET_SINK_WRITE_MODE must be copy or insert: {value!r}")
    return value  # type: ignore[return-value]


def run_sink(
    dsn: str, stop: threading.Event | None = None, on_ready: Callable[[Sink], None] | None = None
) -> int:
    sink = Sink(dsn)
    server = (
        serve(sink.metrics, sink.settings.metrics_port, sink.settings.metrics_host)
        if sink.settings.metrics_port
        else None
    )
    stop = stop or threading.Event()
    if on_ready:
        on_ready(sink)
    try:
        sink.run(stop)
    finally:
        if server is not None:
            server.shutdown()
    return 0


__all__ = ["STATE", "Item", "Sink", "SinkSettings", "run_sink"]
