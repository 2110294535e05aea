"""The agents' work: feed decoded messages to the pure core, keep its state, route its records.

Crash safety under at-least-once delivery rests on one ordering, kept per batch:

1. the batch's output records (and dead letters) are produced and *acknowledged* by Kafka;
2. only then is the new state of every touched machine/patient written to its table's
   changelog, again awaiting the acknowledgement;
3. only then does Faust ack the input events, so their offsets can be committed.

So after a kill -9 the changelog is never ahead of the outputs it implies, and the
committed offsets are never ahead of the changelog. Input re-delivered after a crash is
either dropped by the core's (machine_id, seq) dedup (state already includes it; its
outputs were already delivered) or processed again from the older state, re-emitting
the same records under the same natural keys, which the sink upserts.

One asyncio lock serialises batches and ticks, so no state is written while outputs it
implies are still in flight.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from edge import contract
from edge.contract import ContractError, check_id
from stream.app import codecs
from stream.app.reorder import Inbox, Item
from stream.app.state import (
    MachineEntry,
    Message,
    PatientEntry,
    StateTable,
    dumps,
    machine_from_json,
    patient_from_json,
)
from stream.core.adherence import PatientTracker
from stream.core.processor import MachineProcessor

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class TopicNames:
    """Every Kafka topic the worker touches, with the deployment's prefix applied."""

    telemetry: str
    events: str
    state: str
    prescriptions: str
    sessions: str
    deadletter: str
    sessions_by_patient: str  # internal: session records re-keyed by patient_id
    outputs: Mapping[str, str]  # record kind -> topic

    def kind_of(self) -> dict[str, str]:
        return {self.telemetry: "telemetry", self.events: "event", self.state: "state"}


@dataclass(frozen=True, slots=True)
class Timing:
    reorder_grace_ns: int = 30 * 10**9
    """Device time the partition's telemetry must pass a held event by before it is
    released even though its machine sent no later frame."""
    reorder_idle_s: float = 2.0
    """Wall time without telemetry on a partition after which held events are released."""


@dataclass(slots=True)
class Counters:
    """Process-wide counters, exposed on the Faust web server."""

    frames: int = 0
    events: int = 0
    states: int = 0
    sessions_in: int = 0
    prescriptions: int = 0
    records_out: int = 0
    dead_letters: int = 0
    errors: int = 0
    batches: int = 0
    ticks: int = 0
    held_released: int = 0
    by_kind: dict[str, int] = field(default_factory=dict)


def event_time_ns(kind: str, payload: Mapping[str, Any]) -> int | None:
    """The device time a message speaks for (end of a frame; the moment of an event)."""
    if kind == "telemetry":
        n = len(payload["position_mm"])
        return int(payload["t0_ns"] + n * 1e9 / payload["rate_hz"])
    ts = payload.get("ts_ns")
    return ts if isinstance(ts, int) and not isinstance(ts, bool) else None


class Runtime:
    """State, caches and handlers shared by the agents and timers of one worker."""

    def __init__(
        self,
        app: Any,
        topics: TopicNames,
        machines: Any,
        patients: Any,
        clocks: Any,
        processor: MachineProcessor,
        tracker: PatientTracker,
        validate: bool = True,
        timing: Timing | None = None,
    ) -> None:
        self.app = app
        self.topics = topics
        self.machines: StateTable[MachineEntry] = StateTable(machines, machine_from_json)
        self.patients: StateTable[PatientEntry] = StateTable(patients, patient_from_json)
        self.clocks = clocks  # str(partition) -> latest frame end (device ns) seen on it
        self.processor = processor
        self.tracker = tracker
        self.validate = validate
        self.timing = timing or Timing()
        self.kind_of = topics.kind_of()
        self.counters = Counters()
        self._held: set[str] = set()  # machines with a non-empty inbox (a hint)
        self._last_frame_wall: dict[int, float] = {}
        self._lock: asyncio.Lock | None = None

    # --- plumbing ----------------------------------------------------------------------

    async def guard(self, work: Awaitable[None]) -> None:
        """Run one batch; if it fails (Kafka unreachable, a bug) stop the worker.

        A Faust agent that raises is restarted by its supervisor, but the events it had
        taken are never delivered again in this process: the only at-least-once-safe
        answer is to crash and resume from the committed offsets.
        """
        try:
            await work
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.exception("batch failed; stopping the worker to resume from committed offsets")
            await self.app.crash(exc)
            raise

    @property
    def lock(self) -> asyncio.Lock:
        if self._lock is None:
            self._lock = asyncio.Lock()
        return self._lock

    async def produce(self, messages: Iterable[Message]) -> None:
        """Send messages and wait until Kafka acknowledged every one."""
        producer = self.app.producer
        futures: list[Awaitable[Any]] = []
        for topic, key, value, partition in messages:
            futures.append(await producer.send(topic, key, value, partition, None, None))
        if futures:
            await asyncio.gather(*futures)

    async def _flush(self, out: list[Message], changelog: list[Message]) -> None:
        """Outputs first, then state: see the module docstring."""
        await self.produce(out)
        await self.produce(changelog)

    def _route(self, records: Iterable[dict[str, Any]], out: list[Message]) -> None:
        now = time.time_ns()
        for record in records:
            kind = record["kind"]
            topic = self.topics.outputs.get(kind)
            if topic is None:
                log.error("core emitted a record of unknown kind %r; dropped", kind)
                self.counters.errors += 1
                continue
            try:
                value = codecs.encode_record(record, now)
            except ValueError as exc:  # NaN/inf from the core: keep it visible
                err = ContractError("unencodable_output", f"{kind}: {exc}")
                out.append(self._dead(f"stream:{kind}", repr(record)[:4000].encode(), err))
                continue
            self.counters.records_out += 1
            self.counters.by_kind[kind] = self.counters.by_kind.get(kind, 0) + 1
            out.append((topic, codecs.record_key(record), value, None))

    def _dead(self, origin: str, raw: bytes | None, err: ContractError) -> Message:
        self.counters.dead_letters += 1
        log.warning("dead letter from %s: %s %s", origin, err.reason, err.detail[:200])
        return (self.topics.deadletter, origin.encode(), codecs.dead_letter(origin, raw, err), None)

    def _assigned(self, topic: str) -> set[int]:
        return {tp.partition for tp in self.app.consumer.assignment() if tp.topic == topic}

    def _ready(self) -> bool:
        return not self.app.rebalancing and self.app.tables.recovery.completed.is_set()

    def _clock(self, partition: int) -> int | None:
        value = self.clocks.data.get(str(partition))
        return value if isinstance(value, int) else None

    def _clock_message(self, partition: int, value: int) -> Message:
        self.clocks.data[str(partition)] = value
        name = self.clocks.changelog_topic.get_topic_name()
        return (name, dumps(str(partition)), dumps(value), partition)

    # --- machines ------------------------------------------------------------------------

    def _machine(self, machine_id: str, clinic_id: str, partition: int) -> MachineEntry:
        entry = self.machines.get(machine_id)
        if entry is None:
            entry = MachineEntry(
                partition, self.processor.new_state(clinic_id, machine_id), Inbox()
            )
        entry.partition = partition
        return entry

    def _apply(
        self, entry: MachineEntry, items: list[Item], now_ns: int, origin: str, out: list[Message]
    ) -> None:
        c = self.counters
        for kind, payload in items:
            try:
                if kind == "telemetry":
                    c.frames += 1
                    records = self.processor.on_frame(entry.state, payload, now_ns)
                elif kind == "event":
                    c.events += 1
                    records = self.processor.on_event(entry.state, payload, now_ns)
                else:
                    c.states += 1
                    records = self.processor.on_state(entry.state, payload, now_ns)
            except Exception as exc:  # a core bug must not stop the fleet
                log.exception("core failed on %s from %s", kind, payload.get("machine_id"))
                c.errors += 1
                err = ContractError("processing_error", f"{type(exc).__name__}: {exc}")
                out.append(self._dead(origin, contract.encode(payload), err))
                continue
            self._route(records, out)

    async def on_machine_batch(self, events: Sequence[Any]) -> None:
        """Telemetry, events and state messages of co-partitioned topics."""
        async with self.lock:
            out: list[Message] = []
            dirty: dict[str, MachineEntry] = {}
            clocks: dict[int, int] = {}
            wall = time.monotonic()
            for event in events:
                message = event.message
                kind = self.kind_of[message.topic]
                raw = message.value
                try:
                    payload = codecs.decode_input(kind, raw, self.validate)
                except ContractError as err:
                    out.append(self._dead(message.topic, raw, err))
                    continue
                partition = message.partition
                machine_id = payload["machine_id"]
                entry = dirty.get(machine_id) or self._machine(
                    machine_id, payload["clinic_id"], partition
                )
                clock = clocks.get(partition)
                if clock is None:
                    clock = self._clock(partition) or 0
                if kind == "telemetry":
                    self._last_frame_wall[partition] = wall
                    end_ns = event_time_ns(kind, payload) or 0
                    if end_ns > clock:
                        clock = clocks[partition] = end_ns
                    items = entry.inbox.before_frame(payload["t0_ns"])
                    self.counters.held_released += len(items)
                    items.append((kind, payload))
                else:
                    items = entry.inbox.admit(kind, payload, event_time_ns(kind, payload))
                    if entry.inbox.queue:
                        self._held.add(machine_id)
                self._apply(entry, items, clock, message.topic, out)
                dirty[machine_id] = entry
            self._release_held(dirty, out, clocks, idle_partitions=set())
            self.counters.batches += 1
            changelog = [self._machine_message(m, e) for m, e in dirty.items()]
            changelog.extend(self._clock_message(p, ts) for p, ts in clocks.items())
            await self._flush(out, changelog)

    def _machine_message(self, machine_id: str, entry: MachineEntry) -> Message:
        return self.machines.put(machine_id, entry, entry.to_json(), entry.partition)

    def _release_held(
        self,
        dirty: dict[str, MachineEntry],
        out: list[Message],
        clocks: Mapping[int, int],
        idle_partitions: set[int],
    ) -> None:
        """Release held events the partition clock has passed (or whose partition is idle)."""
        grace = self.timing.reorder_grace_ns
        for machine_id in list(self._held):
            entry = dirty.get(machine_id) or self.machines.get(machine_id)
            if entry is None or not entry.inbox.queue:
                self._held.discard(machine_id)
                continue
            partition = entry.partition
            clock = clocks.get(partition, self._clock(partition) or 0)
            if partition in idle_partitions:
                items = entry.inbox.release_all()
            else:
                items = entry.inbox.release_due(clock, grace)
            if items:
                self.counters.held_released += len(items)
                self._apply(entry, items, clock, "stream:inbox", out)
                dirty[machine_id] = entry
            if not entry.inbox.queue:
                self._held.discard(machine_id)

    async def release_idle(self) -> None:
        """Timer: release held events on owned partitions whose telemetry went quiet."""
        if not self._ready():
            return
        async with self.lock:
            owned = self._assigned(self.topics.telemetry)
            now = time.monotonic()
            for p in owned:
                self._last_frame_wall.setdefault(p, now)
            idle = {
                p for p in owned if now - self._last_frame_wall[p] >= self.timing.reorder_idle_s
            }
            if not self._held:  # after a restart: find inboxes recovered from the changelog
                for machine_id in self.machines.snapshot_keys():
                    entry = self.machines.get(machine_id)
                    if entry is not None and entry.inbox.queue and entry.partition in owned:
                        self._held.add(machine_id)
            self._held = {m for m in self._held if self.machines.partition_of(m) in owned}
            if not self._held:
                return
            out: list[Message] = []
            dirty: dict[str, MachineEntry] = {}
            self._release_held(dirty, out, {}, idle)
            changelog = [self._machine_message(m, e) for m, e in dirty.items()]
            await self._flush(out, changelog)

    # --- sessions -> patients --------------------------------------------------------------

    async def on_session_batch(self, events: Sequence[Any]) -> None:
        """Re-key session records by patient_id onto the internal co-partitioned topic."""
        out: list[Message] = []
        for event in events:
            raw = event.message.value
            try:
                record = codecs.decode_record(raw)
                if record.get("kind") != "session":
                    raise ContractError("bad_field", "not a session record")
                patient_id = record.get("patient_id")
                if patient_id is None:
                    continue  # nobody checked in: recorded, never attributed
                check_id("patient_id", patient_id)
            except ContractError as err:
                out.append(self._dead(event.message.topic, raw, err))
                continue
            out.append((self.topics.sessions_by_patient, patient_id.encode(), raw, None))
        await self.produce(out)

    def _patient(self, patient_id: str, clinic_id: str, partition: int) -> PatientEntry:
        entry = self.patients.get(patient_id)
        if entry is None:
            entry = PatientEntry(partition, self.tracker.new_state(patient_id, clinic_id))
        entry.partition = partition
        return entry

    def _today_ns(self) -> int | None:
        """Event-time "now" for patients: the latest device time this worker has seen."""
        values = [v for v in self.clocks.data.values() if isinstance(v, int)]
        return max(values) if values else None

    async def on_patient_batch(self, events: Sequence[Any]) -> None:
        """Prescriptions and (re-keyed) session records, per patient."""
        async with self.lock:
            out: list[Message] = []
            dirty: dict[str, PatientEntry] = {}
            for event in events:
                message = event.message
                raw = message.value
                try:
                    record = codecs.decode_record(raw)
                    kind = record.get("kind")
                    if kind not in ("prescription", "session"):
                        raise ContractError("bad_field", f"unexpected record kind {kind!r}")
                    patient_id = check_id("patient_id", record.get("patient_id"))
                    clinic_id = check_id("clinic_id", record.get("clinic_id"))
                except ContractError as err:
                    out.append(self._dead(message.topic, raw, err))
                    continue
                entry = dirty.get(patient_id) or self._patient(
                    patient_id, clinic_id, message.partition
                )
                try:
                    if kind == "prescription":
                        self.counters.prescriptions += 1
                        records = self.tracker.on_prescription(entry.state, record)
                    else:
                        self.counters.sessions_in += 1
                        now_ns = max(self._today_ns() or 0, int(record["end_ns"]))
                        records = self.tracker.on_session(entry.state, record, now_ns)
                except Exception as exc:
                    log.exception("adherence failed on %s for %s", kind, patient_id)
                    self.counters.errors += 1
                    failure = ContractError("processing_error", f"{type(exc).__name__}: {exc}")
                    out.append(self._dead(message.topic, raw, failure))
                    continue
                dirty[patient_id] = entry
                self._route(records or [], out)
            changelog = [
                self.patients.put(k, e, e.to_json(), e.partition) for k, e in dirty.items()
            ]
            await self._flush(out, changelog)

    # --- ticks -----------------------------------------------------------------------------

    async def tick(self) -> None:
        """Event-time tick over the machines and patients whose partitions this worker owns.

        "Now" is the latest device time seen on the machine's partition (for patients:
        on any partition this worker owns), never the wall clock.
        """
        if not self._ready():
            return
        async with self.lock:
            self.counters.ticks += 1
            await self._tick_machines()
            await self._tick_patients()

    async def _tick_machines(self) -> None:
        owned = self._assigned(self.topics.telemetry)
        out: list[Message] = []
        changelog: list[Message] = []
        for machine_id in self.machines.snapshot_keys():
            entry = self.machines.get(machine_id)
            if entry is None or entry.partition not in owned:
                continue
            clock = self._clock(entry.partition)
            if clock is None:
                continue
            before = entry.state.to_json()
            try:
                records = self.processor.on_tick(entry.state, clock)
            except Exception:
                log.exception("core tick failed for machine %s", machine_id)
                self.counters.errors += 1
                continue
            if records or entry.state.to_json() != before:
                self._route(records, out)
                changelog.append(self._machine_message(machine_id, entry))
        await self._flush(out, changelog)

    async def _tick_patients(self) -> None:
        today = self._today_ns()
        if today is None:
            return
        owned = self._assigned(self.topics.sessions_by_patient)
        out: list[Message] = []
        changelog: list[Message] = []
        for patient_id in self.patients.snapshot_keys():
            entry = self.patients.get(patient_id)
            if entry is None or entry.partition not in owned:
                continue
            before = entry.state.to_json()
            try:
                records = self.tracker.on_tick(entry.state, today, today)
            except Exception:
                log.exception("adherence tick failed for patient %s", patient_id)
                self.counters.errors += 1
                continue
            if records or entry.state.to_json() != before:
                self._route(records or [], out)
                changelog.append(
                    self.patients.put(patient_id, entry, entry.to_json(), entry.partition)
                )
        await self._flush(out, changelog)
