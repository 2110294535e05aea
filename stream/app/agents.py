"""What every agent shares: topic names, counters, the batch lock, produce-and-await,
routing of the core's records to their topics, and dead letters.

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
from collections.abc import Awaitable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from faust.types import TP

from edge import contract
from edge.contract import ContractError
from stream.app import codecs
from stream.app.faust_port import FaustPort
from stream.app.holes import Hole
from stream.app.state import Message
from stream.core.processor import REJECTED

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class TopicNames:
    """Every Kafka topic the worker touches, with the deployment's prefix applied."""

    machines: str  # input: one ordered stream per machine (telemetry, events, state)
    events: str  # output: validated events, forwarded for the sink
    state: str  # output: validated birth/death messages, forwarded for the sink (compacted)
    prescriptions: str
    sessions: str
    deadletter: str
    sessions_by_patient: str  # internal: session records re-keyed by patient_id
    outputs: Mapping[str, str]  # record kind -> topic


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
    machine_ticks: int = 0
    silence_checks: int = 0  # machines given a liveness check (wall-clock silence)
    states_repeated: int = 0
    historical_alerts: int = 0  # alerts about the past (replays), marked historical
    state_max_bytes: int = 0  # the largest machine state value written to the changelog
    stall_recovered: int = 0  # messages of a partition Faust stopped fetching, side-read
    skipped_recovered: int = 0  # telemetry Faust stepped over, read by the side consumer
    read_ahead_ns: int = 0  # machine batches: reading telemetry Faust stepped over
    compute_ns: int = 0  # machine batches: decode, validate, core, encode, state JSON
    flush_ns: int = 0  # machine batches: waiting for Kafka to ack outputs and changelog
    first_batch_ns: int = 0  # wall clock when the first machine batch started
    last_batch_ns: int = 0  # wall clock when the latest machine batch was flushed
    first_batch_cpu_ns: int = 0  # process CPU time (all threads) at the first machine batch
    last_batch_cpu_ns: int = 0  # ... and after the latest one
    by_kind: dict[str, int] = field(default_factory=dict)
    rejected: dict[str, int] = field(default_factory=dict)  # dead-lettered by the core, by reason


class Plumbing:
    """One per worker; the machine and patient agents hold a reference."""

    def __init__(
        self, app: Any, topics: TopicNames, historical_alert_age_s: float = 3600.0
    ) -> None:
        self.app = app
        self.port = FaustPort(app)
        self.topics = topics
        self.historical_ns = int(historical_alert_age_s * 1e9)
        self.counters = Counters()
        self._lock: asyncio.Lock | None = None

    async def guard(self, work: Awaitable[T]) -> T:
        """Run one batch; if it fails (Kafka unreachable, a bug) stop the worker.

        A Faust agent that raises is restarted by its supervisor, but the events it had
        taken are never delivered again in this process: the only at-least-once-safe
        answer is to crash and resume from the committed offsets.
        """
        try:
            return await work
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.exception("batch failed; stopping the worker to resume from committed offsets")
            await self.port.crash(exc)
            raise

    @property
    def lock(self) -> asyncio.Lock:
        """Serialises batches and timers: no state is written while outputs it implies
        are still in flight."""
        if self._lock is None:
            self._lock = asyncio.Lock()
        return self._lock

    async def produce(self, messages: Iterable[Message]) -> None:
        """Send messages and wait until Kafka acknowledged every one."""
        await self.port.produce(messages)

    async def checkpoint(
        self,
        out: list[Message],
        changelog: list[Message],
        holes: list[Hole] | None = None,
        inputs: set[TP] | None = None,
    ) -> None:
        """The one way a batch's results leave the worker, in the module docstring's
        order: outputs produced and acknowledged, then the changelog, then Faust may
        commit the batch's ``inputs`` (with the ``holes`` it stepped over and the batch
        read directly: ``FaustPort.mark_acked``). Input a patient agent takes from
        Faust's stream iterator is acked by Faust itself after the batch (no ``inputs``)."""
        await self.produce(out)
        await self.produce(changelog)
        if inputs is not None:
            self.port.mark_acked(holes or [], inputs)

    def route(self, records: Iterable[dict[str, Any]], out: list[Message]) -> None:
        """Encode the core's records (stamping ``emitted_at_ns``) for their topics."""
        now = time.time_ns()
        c = self.counters
        for record in records:
            kind = record["kind"]
            if kind == REJECTED:
                self._rejected(record, out)
                continue
            if kind == "alert" and int(record["ts_ns"]) < now - self.historical_ns:
                record["historical"] = True
                c.historical_alerts += 1
            topic = self.topics.outputs.get(kind)
            if topic is None:
                log.error("core emitted a record of unknown kind %r; dropped", kind)
                c.errors += 1
                continue
            try:
                value = codecs.encode_record(record, now)
            except ValueError as exc:  # NaN/inf from the core: keep it visible
                err = ContractError("unencodable_output", f"{kind}: {exc}")
                out.append(self.dead(f"stream:{kind}", repr(record)[:4000].encode(), err))
                continue
            c.records_out += 1
            c.by_kind[kind] = c.by_kind.get(kind, 0) + 1
            out.append((topic, codecs.record_key(record), value, None))

    def _rejected(self, record: dict[str, Any], out: list[Message]) -> None:
        """An input the core refused (a late frame, a frame of a finalized session):
        dead-lettered with the core's reason, counted by reason, logged at WARNING."""
        reason = str(record["reason"])
        c = self.counters
        c.rejected[reason] = c.rejected.get(reason, 0) + 1
        err = ContractError(reason, str(record["detail"]))
        out.append(self.dead("stream:core", contract.encode(record["input"]), err))

    def dead(self, origin: str, raw: bytes | None, err: ContractError) -> Message:
        self.counters.dead_letters += 1
        log.warning("dead letter from %s: %s %s", origin, err.reason, err.detail[:200])
        return (self.topics.deadletter, origin.encode(), codecs.dead_letter(origin, raw, err), None)

    def failure(self, origin: str, payload: dict[str, Any], exc: Exception) -> Message:
        """A core exception on one input: logged, counted, dead-lettered; processing goes on."""
        self.counters.errors += 1
        err = ContractError("processing_error", f"{type(exc).__name__}: {exc}")
        return self.dead(origin, contract.encode(payload), err)

    def assigned(self, topic: str) -> set[int]:
        return self.port.assigned(topic)

    def ready(self) -> bool:
        return self.port.ready()
