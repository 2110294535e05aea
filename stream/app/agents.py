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

Faust's own ``table[key] = value`` is not used: it takes the changelog partition from
the "current event", which inside ``take()`` is whatever event came last, and sends the
changelog through a buffer whose flush can return before it is empty. Writes here name
their partition explicitly and are awaited.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from edge.contract import ContractError, check_id
from stream.app import codecs
from stream.core.adherence import PatientState, PatientTracker
from stream.core.processor import MachineProcessor, MachineState

log = logging.getLogger(__name__)

Outgoing = tuple[str, bytes, bytes]  # (topic, key, value)


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
    by_kind: dict[str, int] = field(default_factory=dict)


def _event_time_ns(kind: str, payload: Mapping[str, Any]) -> int | None:
    """The device time a message speaks for (end of a frame; the moment of an event)."""
    if kind == "telemetry":
        n = len(payload["position_mm"])
        return int(payload["t0_ns"] + n * 1e9 / payload["rate_hz"])
    ts = payload.get("ts_ns")
    return ts if isinstance(ts, int) else None


def _json(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


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
    ) -> None:
        self.app = app
        self.topics = topics
        self.machines = machines  # machine_id -> {"p": partition, "s": MachineState json}
        self.patients = patients  # patient_id -> {"p": partition, "s": PatientState json}
        self.clocks = clocks  # str(partition) -> max event time (ns) seen on it
        self.processor = processor
        self.tracker = tracker
        self.validate = validate
        self.kind_of = topics.kind_of()
        self.counters = Counters()
        # table value object -> live core state built from it (identity check: a
        # changelog recovery replaces the value objects, invalidating the entries)
        self._machine_cache: dict[str, tuple[Any, MachineState]] = {}
        self._patient_cache: dict[str, tuple[Any, PatientState]] = {}
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

    async def produce(self, messages: Iterable[tuple[str, bytes, bytes, int | None]]) -> None:
        """Send messages and wait until Kafka acknowledged every one."""
        producer = self.app.producer
        futures: list[Awaitable[Any]] = []
        for topic, key, value, partition in messages:
            futures.append(await producer.send(topic, key, value, partition, None, None))
        if futures:
            await asyncio.gather(*futures)

    def _route(self, records: Iterable[dict[str, Any]], out: list[Outgoing]) -> None:
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
            out.append((topic, codecs.record_key(record), value))

    def _dead(self, origin: str, raw: bytes | None, err: ContractError) -> Outgoing:
        self.counters.dead_letters += 1
        log.warning("dead letter from %s: %s %s", origin, err.reason, err.detail[:200])
        return (self.topics.deadletter, origin.encode(), codecs.dead_letter(origin, raw, err))

    async def _commit_batch(
        self,
        out: list[Outgoing],
        table: Any,
        dirty: Mapping[str, tuple[int, Any]],
        to_json: Callable[[Any], dict[str, Any]],
        cache: dict[str, tuple[Any, Any]],
        clocks: Mapping[int, int] | None = None,
    ) -> None:
        """Outputs first, then state: see the module docstring."""
        await self.produce((t, k, v, None) for t, k, v in out)
        changelog: list[tuple[str, bytes, bytes, int | None]] = []
        name = table.changelog_topic.get_topic_name()
        for key, (partition, state) in dirty.items():
            value = {"p": partition, "s": to_json(state)}
            changelog.append((name, _json(key), _json(value), partition))
            table.data[key] = value
            cache[key] = (value, state)
        if clocks:
            clock_name = self.clocks.changelog_topic.get_topic_name()
            for partition, ts in clocks.items():
                changelog.append((clock_name, _json(str(partition)), _json(ts), partition))
                self.clocks.data[str(partition)] = ts
        await self.produce(changelog)

    def _assigned(self, topic: str) -> set[int]:
        return {tp.partition for tp in self.app.consumer.assignment() if tp.topic == topic}

    def _ready(self) -> bool:
        recovery = self.app.tables.recovery
        return not self.app.rebalancing and recovery.completed.is_set()

    # --- machines ------------------------------------------------------------------------

    def _machine_state(self, machine_id: str, clinic_id: str) -> MachineState:
        stored = self.machines.data.get(machine_id)
        cached = self._machine_cache.get(machine_id)
        if cached is not None and cached[0] is stored:
            return cached[1]
        if stored is None:
            state = self.processor.new_state(clinic_id, machine_id)
        else:
            state = MachineState.from_json(stored["s"])
        self._machine_cache[machine_id] = (stored, state)
        return state

    async def on_machine_batch(self, events: Sequence[Any]) -> None:
        """Telemetry, events and state messages of co-partitioned topics, in arrival order."""
        async with self.lock:
            out: list[Outgoing] = []
            dirty: dict[str, tuple[int, MachineState]] = {}
            clocks: dict[int, int] = {}
            c = self.counters
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
                ts = _event_time_ns(kind, payload)
                clock = clocks.get(partition)
                if clock is None:
                    clock = self.clocks.data.get(str(partition), 0)
                if ts is not None and ts > clock:
                    clock = ts
                clocks[partition] = clock
                state = self._machine_state(machine_id, payload["clinic_id"])
                now_ns = clock
                try:
                    if kind == "telemetry":
                        c.frames += 1
                        records = self.processor.on_frame(state, payload, now_ns)
                    elif kind == "event":
                        c.events += 1
                        records = self.processor.on_event(state, payload, now_ns)
                    else:
                        c.states += 1
                        records = self.processor.on_state(state, payload, now_ns)
                except Exception as exc:  # a core bug must not stop the fleet
                    log.exception("core failed on %s from %s", kind, machine_id)
                    c.errors += 1
                    failure = ContractError("processing_error", f"{type(exc).__name__}: {exc}")
                    out.append(self._dead(message.topic, raw, failure))
                    continue
                dirty[machine_id] = (partition, state)
                self._route(records, out)
            c.batches += 1
            await self._commit_batch(
                out, self.machines, dirty, _to_json, self._machine_cache, clocks
            )

    # --- sessions -> patients --------------------------------------------------------------

    async def on_session_batch(self, events: Sequence[Any]) -> None:
        """Re-key session records by patient_id onto the internal co-partitioned topic."""
        out: list[tuple[str, bytes, bytes, int | None]] = []
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
                t, k, v = self._dead(event.message.topic, raw, err)
                out.append((t, k, v, None))
                continue
            out.append((self.topics.sessions_by_patient, patient_id.encode(), raw, None))
        await self.produce(out)

    def _patient_state(self, patient_id: str, clinic_id: str) -> PatientState:
        stored = self.patients.data.get(patient_id)
        cached = self._patient_cache.get(patient_id)
        if cached is not None and cached[0] is stored:
            return cached[1]
        if stored is None:
            state = self.tracker.new_state(patient_id, clinic_id)
        else:
            state = PatientState.from_json(stored["s"])
        self._patient_cache[patient_id] = (stored, state)
        return state

    def _today_ns(self) -> int | None:
        """Event-time "now" for patients: the latest device time this worker has seen."""
        values = [v for v in self.clocks.data.values() if isinstance(v, int)]
        return max(values) if values else None

    async def on_patient_batch(self, events: Sequence[Any]) -> None:
        """Prescriptions and (re-keyed) session records, per patient."""
        async with self.lock:
            out: list[Outgoing] = []
            dirty: dict[str, tuple[int, PatientState]] = {}
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
                state = self._patient_state(patient_id, clinic_id)
                try:
                    if kind == "prescription":
                        self.counters.prescriptions += 1
                        records = self.tracker.on_prescription(state, record)
                    else:
                        self.counters.sessions_in += 1
                        now_ns = max(self._today_ns() or 0, int(record["end_ns"]))
                        records = self.tracker.on_session(state, record, now_ns)
                except Exception as exc:
                    log.exception("adherence failed on %s for %s", kind, patient_id)
                    self.counters.errors += 1
                    failure = ContractError("processing_error", f"{type(exc).__name__}: {exc}")
                    out.append(self._dead(message.topic, raw, failure))
                    continue
                dirty[patient_id] = (message.partition, state)
                self._route(records or [], out)
            await self._commit_batch(out, self.patients, dirty, _to_json, self._patient_cache)

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
        out: list[Outgoing] = []
        dirty: dict[str, tuple[int, MachineState]] = {}
        for machine_id, stored in list(self.machines.data.items()):
            partition = stored["p"]
            clock = self.clocks.data.get(str(partition))
            if partition not in owned or clock is None:
                continue
            state = self._machine_state(machine_id, "")
            try:
                records = self.processor.on_tick(state, clock)
            except Exception:
                log.exception("core tick failed for machine %s", machine_id)
                self.counters.errors += 1
                continue
            if records or _to_json(state) != stored["s"]:
                dirty[machine_id] = (partition, state)
                self._route(records, out)
        if out or dirty:
            await self._commit_batch(out, self.machines, dirty, _to_json, self._machine_cache)

    async def _tick_patients(self) -> None:
        today = self._today_ns()
        if today is None:
            return
        owned = self._assigned(self.topics.sessions_by_patient)
        out: list[Outgoing] = []
        dirty: dict[str, tuple[int, PatientState]] = {}
        for patient_id, stored in list(self.patients.data.items()):
            partition = stored["p"]
            if partition not in owned:
                continue
            state = self._patient_state(patient_id, "")
            try:
                records = self.tracker.on_tick(state, today, today)
            except Exception:
                log.exception("adherence tick failed for patient %s", patient_id)
                self.counters.errors += 1
                continue
            if records or _to_json(state) != stored["s"]:
                dirty[patient_id] = (partition, state)
                self._route(records or [], out)
        if out or dirty:
            await self._commit_batch(out, self.patients, dirty, _to_json, self._patient_cache)


def _to_json(state: Any) -> dict[str, Any]:
    result: dict[str, Any] = state.to_json()
    return result
