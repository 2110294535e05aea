"""The machine agent: one ordered stream per machine in, the core's records out.

The bridge writes every message of a machine (frames, events, birth/death) to one topic,
keyed by machine, in the order it received them; so one Kafka partition carries each
machine's messages in its own order. Per message, this adapter only

1. decodes and validates it (bad input is dead-lettered, processing goes on);
2. forwards events and state messages, as validated, to their topics for the sink;
3. hands it to the machine's :class:`stream.core.timeline.Timeline`, which decides what
   the core sees and at which "now": the machine's own device time;
4. runs the resulting steps through :class:`stream.core.processor.MachineProcessor`.

State is one table value per machine (``stream.app.state``), bounded in size, written
after the batch's outputs are acknowledged (``stream.app.agents``). Nothing about one
machine depends on another: not its clock, not its backlog, not its rate.

The wall clock serves liveness only (:meth:`MachineAgent.on_idle_check`), decided by
:class:`stream.core.liveness.Liveness`: a machine silent for ``reorder_idle_s`` whose
partition is read to its end releases what its timeline holds; silence past the offline
grace or the session gap reaches the core's
:meth:`~stream.core.processor.MachineProcessor.on_silence`. It never discards data.

Telemetry Faust's fetcher stepped over after a restart is read with a side consumer
(``stream.app.holes``) and handled in order before the message after the hole.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from faust.types import TP

from edge.contract import ContractError
from stream.app import codecs, holes
from stream.app.agents import Plumbing
from stream.app.side_reader import SideReader
from stream.app.state import MachineEntry, Message, StateTable, machine_from_json
from stream.core.liveness import Heard, Liveness
from stream.core.processor import MachineProcessor
from stream.core.timeline import Step, Timeline

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Timing:
    tick_event_ns: int = 60 * 10**9
    """Device time between a machine's core ticks (idle sessions, held records)."""
    reorder_grace_ns: int = 30 * 10**9
    """Device time a machine's telemetry must pass a held event by before it is released
    although no frame started after it."""
    reorder_idle_s: float = 2.0
    """Wall time a machine may be silent, its partition read to the end, before what its
    timeline holds is released."""
    stall_s: float = 60.0
    """Wall time an owned partition may go without a message *while messages wait for it*
    before the worker gives up and exits (to be restarted)."""


@dataclass(slots=True)
class _Batch:
    out: list[Message] = field(default_factory=list)
    dirty: dict[str, MachineEntry] = field(default_factory=dict)
    holes: list[holes.Hole] = field(default_factory=list)


class MachineAgent:
    def __init__(
        self,
        plumbing: Plumbing,
        machines: Any,
        processor: MachineProcessor,
        timing: Timing,
        bootstrap: list[str],
        validate: bool = True,
        clock: Callable[[], float] = time.monotonic,
        kafka_auth: dict[str, Any] | None = None,
    ) -> None:
        self.p = plumbing
        self.table: StateTable[MachineEntry] = StateTable(machines, machine_from_json)
        self.processor = processor
        self.timing = timing
        self.validate = validate
        self.clock = clock  # wall time for liveness only (monotonic seconds)
        self.side = SideReader(bootstrap, kafka_auth)
        s = processor.s
        self.live = Liveness(
            timing.reorder_idle_s,
            timing.stall_s,
            (timing.reorder_idle_s, s.reorder_hold_s, s.machine_offline_grace_s, s.session_idle_s),
        )
        self._generation: int | None = None

    # --- state ---------------------------------------------------------------------------

    def _entry(
        self, batch: _Batch, machine_id: str, clinic_id: str, partition: int
    ) -> MachineEntry:
        entry = batch.dirty.get(machine_id) or self.table.get(machine_id)
        if entry is None:
            state = self.processor.new_state(clinic_id, machine_id)
            entry = MachineEntry(partition, state, Timeline())
        entry.partition = partition
        batch.dirty[machine_id] = entry
        return entry

    def _changelog(self, batch: _Batch) -> list[Message]:
        out = [
            self.table.put(machine_id, entry, entry.to_json(), entry.partition)
            for machine_id, entry in sorted(batch.dirty.items())
        ]
        c = self.p.counters
        c.state_max_bytes = max(c.state_max_bytes, max((len(m[2]) for m in out), default=0))
        return out

    def _new_generation(self) -> None:
        """After a (re)assignment: a partition may have been handled elsewhere meanwhile,
        so expect what is committed, and rebuild liveness from the recovered table."""
        generation = self.p.port.generation()
        if generation == self._generation:
            return
        self._generation = generation
        self.live.reset(
            ((m, self.table.partition_of(m)) for m in self.table.snapshot_keys()),
            self.p.assigned(self.p.topics.machines),
            self.clock(),
        )

    # --- the core ------------------------------------------------------------------------

    def _apply(self, batch: _Batch, entry: MachineEntry, steps: list[Step]) -> None:
        c = self.p.counters
        st = entry.state
        wall_ns = time.time_ns()
        for step in steps:
            kind, payload, _ = step
            if kind == "telemetry":
                c.frames += 1
            elif kind == "event":
                c.events += 1
            elif kind == "state":
                c.states += 1
            else:
                c.machine_ticks += 1
            try:
                records = self.processor.on_step(st, step, wall_ns)
            except Exception as exc:  # a core bug must not stop the fleet
                log.exception("core failed on %s from %s", kind, st.machine_id)
                batch.out.append(self.p.failure(f"stream:{kind}", payload or {}, exc))
                continue
            self.p.route(records, batch.out)

    # --- messages ------------------------------------------------------------------------

    def _handle(
        self, batch: _Batch, partition: int, offset: int, raw: bytes | None, headers: Any
    ) -> None:
        self.live.handled(partition, offset)
        topics = self.p.topics
        try:
            kind, payload = codecs.decode_machine_input(raw, headers, self.validate)
        except ContractError as err:
            batch.out.append(self.p.dead(topics.machines, raw, err))
            return
        machine_id = payload["machine_id"]
        self.live.heard(machine_id, partition, self.clock())
        entry = self._entry(batch, machine_id, payload["clinic_id"], partition)
        tl = entry.timeline
        if kind != "telemetry":  # validated events and births/deaths, for the sink
            topic = topics.events if kind == "event" else topics.state
            batch.out.append((topic, machine_id.encode(), raw or b"", None))
        repeats = tl.repeats
        t = self.timing
        steps = tl.admit(
            kind, payload, t.tick_event_ns, t.reorder_grace_ns, codecs.received_at_ns(headers)
        )
        self.p.counters.states_repeated += tl.repeats - repeats
        self._apply(batch, entry, steps)

    async def on_batch(self, events: Sequence[Any]) -> None:
        async with self.p.lock:
            c = self.p.counters
            if not c.first_batch_ns:
                c.first_batch_ns = time.time_ns()
                c.first_batch_cpu_ns = time.process_time_ns()
            started = time.perf_counter_ns()
            batch = _Batch()
            self._new_generation()
            skipped = await self._skipped(batch, events)
            read = time.perf_counter_ns()
            for event in events:
                message = event.message
                for offset, raw, headers in skipped.pop((message.partition, message.offset), ()):
                    self._handle(batch, message.partition, offset, raw, headers)
                if self.live.already_handled(message.partition, message.offset):
                    continue  # already handled (read from a stalled partition)
                self.live.delivered(message.partition)  # Faust delivers it again
                self._handle(
                    batch, message.partition, message.offset, message.value, message.headers
                )
            c.batches += 1
            changelog = self._changelog(batch)
            computed = time.perf_counter_ns()
            # handled and flushed: Faust may then commit over holes and its own gaps
            await self.p.checkpoint(
                batch.out, changelog, batch.holes, {e.message.tp for e in events}
            )
            c.last_batch_ns = time.time_ns()
            c.last_batch_cpu_ns = time.process_time_ns()
            c.read_ahead_ns += read - started
            c.compute_ns += computed - read
            c.flush_ns += time.perf_counter_ns() - computed

    async def _skipped(
        self, batch: _Batch, events: Sequence[Any]
    ) -> dict[tuple[int, int], list[tuple[int, bytes | None, Any]]]:
        """Messages Faust stepped over (``stream.app.holes``), read with the side consumer:
        {(partition, offset of the message after the hole): [(offset, raw, headers), ...]}.
        Messages read twice are dropped by the core's dedup (frame seq, event id)."""
        topic = self.p.topics.machines
        port = self.p.port
        found = holes.find_holes(
            ((e.message.tp, e.message.offset) for e in events if e.message.topic == topic),
            lambda tp: (
                n if (n := self.live.next_offset(tp.partition)) is not None else port.committed(tp)
            ),
        )
        if not found:
            return {}
        batch.holes = found
        for tp, start, end in found:
            log.warning(
                "Faust skipped %s offsets %d..%d; reading them directly", tp, start, end - 1
            )
        filled = holes.fill(found, await self.side.read_range(holes.read_ranges(found)))
        self.p.counters.skipped_recovered += sum(len(v) for v in filled.values())
        return {(tp.partition, end): msgs for (tp, end), msgs in filled.items()}

    # --- liveness ------------------------------------------------------------------------

    def _caught_up(self, owned: set[int]) -> set[int]:
        """Owned partitions handled up to the end last seen by the fetcher."""
        port, topic = self.p.port, self.p.topics.machines
        return self.live.caught_up(
            owned, lambda p: port.highwater(TP(topic, p)), lambda p: port.committed(TP(topic, p))
        )

    async def on_idle_check(self) -> None:
        """Timer: each machine silent (wall clock) on a partition read to its end
        releases what its timeline holds; longer silences reach the core's
        ``on_silence``. Silence is the machine's own: its neighbours may stream on."""
        if not self.p.ready():
            return
        owned = self.p.assigned(self.p.topics.machines)
        now = self.clock()
        caught_up = self._caught_up(owned)
        suspects = self.live.stall_suspects(owned, caught_up, now)
        if suspects:
            await self._check_stalls(suspects, now)
        silent = self.live.silent(caught_up, now)
        if not silent:
            return
        async with self.p.lock:
            self._new_generation()
            batch = _Batch()
            wall_ns = time.time_ns()
            for machine_id, heard in silent:
                if self.live.current(machine_id) is heard:  # not replaced by a rebalance
                    self._silence(batch, machine_id, heard, now - heard.wall, wall_ns)
            if batch.out or batch.dirty:
                await self.p.checkpoint(batch.out, self._changelog(batch))

    def _silence(
        self, batch: _Batch, machine_id: str, heard: Heard, silent: float, wall_ns: int
    ) -> None:
        """One liveness check of a silent machine; its entry is written only when the
        check produced records (a later check redoes the rest after a restart)."""
        entry = self.table.get(machine_id)
        if entry is None:
            return
        c = self.p.counters
        c.silence_checks += 1
        self.live.checked(heard, silent)
        sub = _Batch()
        steps = entry.timeline.release_quiet()
        c.held_released += len(steps)
        self._apply(sub, entry, steps)
        try:
            records = self.processor.on_silence(
                entry.state, entry.timeline.now(), int(silent * 1e9), wall_ns
            )
        except Exception:
            log.exception("core liveness check failed for machine %s", machine_id)
            c.errors += 1
            records = []
        self.p.route(records, sub.out)
        if sub.out or steps:
            batch.out += sub.out
            batch.dirty[machine_id] = entry

    async def _check_stalls(self, suspects: list[int], now: float) -> None:
        """A stall suspect (:meth:`Liveness.stall_suspects`) with messages waiting is
        *stalled*: its waiting messages are read with the side consumer and handled
        here, in order, and Faust's bookkeeping is told they were handled (so its commits
        move on). A partition once stalled is read this way at every check until Faust
        delivers from it again.

        Seen with Faust 0.15 after a rebalance or under load in the middle of a backlog:
        the partition stays assigned and "active" but is never fetched again (the
        1,000-machine benchmark met it on one partition of twelve)."""
        topic = self.p.topics.machines
        port = self.p.port
        ends = await self.side.end_offsets([TP(topic, p) for p in suspects])
        async with self.p.lock:
            for tp, end in sorted(ends.items()):
                handled = self.live.handled_to(tp.partition, port.committed(tp))
                if end <= handled or not port.ready():
                    continue
                if not self.live.is_stalled(tp.partition):
                    log.warning(
                        "partition %s stalled at offset %s of %s for %.0f s (Faust fetches "
                        "it no more); reading it with the side consumer",
                        tp.partition,
                        handled,
                        end,
                        self.live.silent_for(tp.partition, now),
                    )
                    self.live.stalled(tp.partition)
                await self._read_stalled(tp, handled, end)

    async def _read_stalled(self, tp: Any, start: int, end: int) -> None:
        """Handle offsets ``start <= o < end`` of a stalled partition, as a batch."""
        batch = _Batch(holes=[(tp, start, end)])
        read = await self.side.read_range({tp: (start, end)})
        for _, offset, raw, headers in sorted(read, key=lambda m: m[1]):
            self._handle(batch, tp.partition, offset, raw, headers)
        self.p.counters.stall_recovered += len(read)
        await self.p.checkpoint(batch.out, self._changelog(batch), batch.holes, {tp})

    async def close(self) -> None:
        """Stop the side consumer (at shutdown), after any batch still using it."""
        async with self.p.lock:
            await self.side.stop()

    def today_ns(self) -> int | None:
        """The latest device clock among this worker's machines (patients' "today")."""
        clocks = [
            e.timeline.clock_ns
            for m in self.live.machines()
            if (e := self.table.get(m)) is not None and e.timeline.clock_ns is not None
        ]
        return max(clocks) if clocks else None
