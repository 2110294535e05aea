"""The machine agent: telemetry, events and state messages through ``MachineProcessor``.

Everything the core sees happens in one *canonical order* per input partition, a pure
function of the partition's contents, so a restarted worker, two workers splitting the
partitions and an in-process run produce the same records:

* frames in telemetry-topic order; each machine's events/state messages merged in by
  device time (``stream.app.reorder``);
* "now" handed to the core is the partition's *clock*: the latest frame end (device
  time) on that partition so far, never the wall clock;
* the core's tick runs whenever a partition's clock crosses a multiple of
  ``tick_event_ns`` (event time), for every machine on that partition;
* held events are released by the machine's next frame, by the partition clock passing
  them by ``reorder_grace_ns`` (checked after every frame), or, when the partition's
  telemetry has gone quiet for ``reorder_idle_s`` of wall time, all at once followed by
  a tick at the (now still) clock.

Within a batch, event and state messages are looked at before frames: the sparse topics
are read in the same fetches as the first frames, and holding them first lets those
frames release them in device-time order.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from faust.types import TP

from edge.contract import ContractError
from stream.app import codecs, holes
from stream.app.agents import Plumbing
from stream.app.reorder import Inbox, Item
from stream.app.sparse import SparseReader
from stream.app.state import MachineEntry, MachinePartitions, Message
from stream.core.processor import MachineProcessor

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Timing:
    tick_event_ns: int = 60 * 10**9
    """Device time between the core's ticks on a partition (idle sessions, silence)."""
    reorder_grace_ns: int = 30 * 10**9
    """Device time the partition's telemetry must pass a held event by before it is
    released although its machine sent no later frame."""
    reorder_idle_s: float = 2.0
    """Wall time without telemetry on a partition after which held events are released."""
    stall_s: float = 60.0
    """Wall time an owned partition may go without a frame *while frames wait for it*
    before the worker gives up and exits (to be restarted), see ``stream.app``."""


async def read_to_end(
    bootstrap: str, starts: Mapping[Any, int], timeout_s: float = 60.0
) -> tuple[list[tuple[Any, int, bytes]], dict[Any, int]]:
    """Read each topic partition from its start offset to its current end with a
    group-less consumer of our own (Faust's consumer thread must not be waited on from
    inside an agent: it may itself be waiting for that agent). Returns the messages
    and the end offsets."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    out: list[tuple[Any, int, bytes]] = []
    await consumer.start()
    try:
        parts = [TopicPartition(tp.topic, tp.partition) for tp in starts]
        ends = await consumer.end_offsets(parts)
        end_of = {TP(tp.topic, tp.partition): int(ends[tp]) for tp in parts}
        todo = {
            tp: (starts[TP(tp.topic, tp.partition)], int(ends[tp]))
            for tp in parts
            if starts[TP(tp.topic, tp.partition)] < ends[tp]
        }
        if not todo:
            return out, end_of
        consumer.assign(list(todo))
        for tp, (start, _) in todo.items():
            consumer.seek(tp, start)
        deadline = time.monotonic() + timeout_s
        pending = set(todo)
        while pending:
            if time.monotonic() > deadline:
                raise TimeoutError(f"could not read {sorted(map(str, pending))} to their end")
            batches = await consumer.getmany(*pending, timeout_ms=200)
            for tp, records in batches.items():
                end = todo[tp][1]
                out.extend(
                    (TP(tp.topic, tp.partition), r.offset, r.value)
                    for r in records
                    if r.offset < end
                )
            for tp in list(pending):
                if await consumer.position(tp) >= todo[tp][1]:
                    pending.discard(tp)
    finally:
        await consumer.stop()
    return out, end_of


async def end_offsets(bootstrap: str, tps: list[Any]) -> dict[Any, int]:
    """The current end offset of each topic partition, from a consumer of our own."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        ends = await consumer.end_offsets([TopicPartition(tp.topic, tp.partition) for tp in tps])
        return {TP(tp.topic, tp.partition): int(end) for tp, end in ends.items()}
    finally:
        await consumer.stop()


def event_time_ns(kind: str, payload: Mapping[str, Any]) -> int | None:
    """The device time a message speaks for (end of a frame; the moment of an event)."""
    if kind == "telemetry":
        n = len(payload["position_mm"])
        return int(payload["t0_ns"] + n * 1e9 / payload["rate_hz"])
    ts = payload.get("ts_ns")
    return ts if isinstance(ts, int) and not isinstance(ts, bool) else None


@dataclass(slots=True)
class _Batch:
    out: list[Message] = field(default_factory=list)
    dirty: dict[str, MachineEntry] = field(default_factory=dict)
    clocks: dict[int, int] = field(default_factory=dict)
    holes: list[holes.Hole] = field(default_factory=list)  # read by the side consumer


class MachineAgent:
    def __init__(
        self,
        plumbing: Plumbing,
        machines: Any,
        processor: MachineProcessor,
        timing: Timing | None = None,
        validate: bool = True,
        bootstrap: str = "127.0.0.1:9092",
    ) -> None:
        self.p = plumbing
        self.bootstrap = bootstrap
        self.store = MachinePartitions(machines)
        self.processor = processor
        self.timing = timing or Timing()
        self.validate = validate
        self.kind_of = plumbing.topics.kind_of()
        self._held: dict[int, set[str]] = {}  # partition -> machines with held events
        self._last_frame_wall: dict[int, float] = {}
        self._idle_ticked: dict[int, int] = {}  # partition -> clock of its last idle tick
        self._next_offset: dict[int, int] = {}  # telemetry partition -> next offset to handle
        self._handled: dict[Any, int] = {}  # sparse TP -> next offset to handle
        self._generation: int | None = None
        self.sparse = SparseReader(bootstrap)
        self.gaps = SparseReader(bootstrap)  # telemetry holes Faust stepped over
        self._stall_checked: dict[int, float] = {}

    # --- state ---------------------------------------------------------------------------

    def _clock(self, batch: _Batch, partition: int) -> int:
        clock = batch.clocks.get(partition)
        return self.store.clock(partition) if clock is None else clock

    def today_ns(self) -> int | None:
        """The latest clock of the partitions this worker holds (patients' "today")."""
        clocks = [self.store.clock(p) for p in self.store.partitions()]
        return max(clocks) if clocks else None

    def _entry(
        self, batch: _Batch, machine_id: str, clinic_id: str, partition: int
    ) -> MachineEntry:
        entry = batch.dirty.get(machine_id) or self.store.get(machine_id, partition)
        if entry is None:
            state = self.processor.new_state(clinic_id, machine_id)
            entry = MachineEntry(partition, state, Inbox())
        entry.partition = partition
        batch.dirty[machine_id] = entry
        return entry

    def _members(self, batch: _Batch, partition: int) -> list[str]:
        """Machines on ``partition``, sorted (a canonical order for ticks)."""
        ids = {m for m, e in batch.dirty.items() if e.partition == partition}
        ids.update(self.store.members(partition))
        return sorted(ids)

    def _rescan_held(self) -> None:
        """After a (re)assignment: find inboxes recovered from the changelog."""
        self._held.clear()
        for partition in self.store.partitions():
            for machine_id in self.store.members(partition):
                entry = self.store.get(machine_id, partition)
                if entry is not None and entry.inbox.queue:
                    self._held.setdefault(partition, set()).add(machine_id)

    def _changelog(self, batch: _Batch) -> list[Message]:
        """One record per touched partition: its clock and all its machines."""
        touched: dict[int, dict[str, MachineEntry]] = {p: {} for p in batch.clocks}
        for machine_id, entry in batch.dirty.items():
            touched.setdefault(entry.partition, {})[machine_id] = entry
        return [
            self.store.put(p, self._clock(batch, p), entries)
            for p, entries in sorted(touched.items())
        ]

    # --- the core ------------------------------------------------------------------------

    def _apply(self, batch: _Batch, entry: MachineEntry, items: list[Item], now_ns: int) -> None:
        c = self.p.counters
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
                log.exception("core failed on %s from %s", kind, entry.state.machine_id)
                batch.out.append(self.p.failure(f"stream:{kind}", payload, exc))
                continue
            self.p.route(records, batch.out)

    def _tick(self, batch: _Batch, partition: int, now_ns: int) -> None:
        self.p.counters.machine_ticks += 1
        for machine_id in self._members(batch, partition):
            entry = self._entry(batch, machine_id, "", partition)
            try:
                records = self.processor.on_tick(entry.state, now_ns)
            except Exception:
                log.exception("core tick failed for machine %s", machine_id)
                self.p.counters.errors += 1
                continue
            self.p.route(records, batch.out)

    def _release(self, batch: _Batch, partition: int, clock: int, everything: bool) -> None:
        held = self._held.get(partition)
        if not held:
            return
        for machine_id in sorted(held):
            entry = batch.dirty.get(machine_id) or self.store.get(machine_id, partition)
            if entry is None or entry.partition != partition:
                held.discard(machine_id)
                continue
            if everything:
                items = entry.inbox.release_all()
            else:
                items = entry.inbox.release_due(clock, self.timing.reorder_grace_ns)
            if items:
                entry = self._entry(batch, machine_id, "", partition)
                self.p.counters.held_released += len(items)
                self._apply(batch, entry, items, clock)
            if not entry.inbox.queue:
                held.discard(machine_id)

    # --- handlers ------------------------------------------------------------------------

    async def _new_generation(self, batch: _Batch) -> None:
        """After a (re)assignment: rebuild caches, then read the sparse topics of the
        owned partitions from their committed offsets to their current end *before* any
        frame is handled. A consumer with a backlog would otherwise see the first frames
        before the check-ins that precede them; read this way, every event and state
        message of the backlog is already held in its machine's inbox when the frames
        come. Faust delivers the same messages again later; they are skipped by offset."""
        generation = self.p.generation()
        if generation == self._generation:
            return
        self._generation = generation
        # a partition may have been handled elsewhere meanwhile: expect what is committed
        self._next_offset.clear()
        self._rescan_held()
        topics = self.p.topics
        owned = self.p.assigned(topics.telemetry)
        sparse = [TP(t, p) for p in sorted(owned) for t in (topics.events, topics.state)]
        if not sparse:
            return
        committed = self.p.app.consumer._committed_offset
        starts = {tp: max(committed.get(tp) or 0, 0) for tp in sparse}
        messages, ends = await read_to_end(self.bootstrap, starts)
        self._admit_in_device_order(batch, messages)
        for tp, end in ends.items():
            self._handled[tp] = max(self._handled.get(tp, 0), end)

    def _admit_in_device_order(self, batch: _Batch, messages: list[tuple[Any, int, bytes]]) -> None:
        """Read-ahead event/state messages into their machines' inboxes, by device time."""
        self.p.counters.sparse_preread += len(messages)
        decoded: list[tuple[int, int, str, int, dict[str, Any]]] = []
        for tp, offset, raw in messages:
            self._handled[tp] = max(self._handled.get(tp, 0), offset + 1)
            kind = self.kind_of[tp.topic]
            try:
                payload = codecs.decode_input(kind, raw, self.validate)
            except ContractError:
                continue  # dead-lettered when Faust delivers it
            ts = event_time_ns(kind, payload)
            decoded.append((ts or 0, offset, kind, tp.partition, payload))
        decoded.sort(key=lambda d: (d[0], d[2], d[1]))  # device time, a canonical order
        for _, _, kind, partition, payload in decoded:
            self._admit(batch, kind, partition, payload)

    async def _read_ahead(self, batch: _Batch) -> None:
        """Before frames: the owned event/state partitions up to their current end.

        While data streams in, telemetry fetches can run ahead of the events topic; in a
        backfill a second of wall time is hours of device time, so a check-in read late
        would land after the frames it precedes (see ``stream.app.sparse``)."""
        topics = self.p.topics
        committed = self.p.app.consumer._committed_offset
        positions = {}
        for p in sorted(self.p.assigned(topics.telemetry)):
            for t in (topics.events, topics.state):
                tp = TP(t, p)
                positions[tp] = max(self._handled.get(tp, 0), committed.get(tp) or 0)
        self._admit_in_device_order(batch, await self.sparse.read_ahead(positions))

    def _admit(self, batch: _Batch, kind: str, partition: int, payload: dict[str, Any]) -> None:
        """An event or state message into its machine's inbox (maybe applied at once)."""
        machine_id = payload["machine_id"]
        entry = self._entry(batch, machine_id, payload["clinic_id"], partition)
        if kind == "state" and entry.inbox.repeated_state(payload):
            self.p.counters.states_repeated += 1
            return
        items = entry.inbox.admit(kind, payload, event_time_ns(kind, payload))
        if entry.inbox.queue:
            self._held.setdefault(partition, set()).add(machine_id)
        self._apply(batch, entry, items, self._clock(batch, partition))

    async def on_batch(self, events: Sequence[Any]) -> None:
        async with self.p.lock:
            if not self.p.counters.first_batch_ns:
                self.p.counters.first_batch_ns = time.time_ns()
                self.p.counters.first_batch_cpu_ns = time.process_time_ns()
            c = self.p.counters
            started = time.perf_counter_ns()
            batch = _Batch()
            await self._new_generation(batch)
            telemetry = self.p.topics.telemetry
            if any(event.message.topic == telemetry for event in events):
                await self._read_ahead(batch)
            skipped = await self._skipped_frames(batch, events)
            read = time.perf_counter_ns()
            frames: list[tuple[int, int, dict[str, Any]]] = []  # (partition, offset, frame)
            for event in events:
                message = event.message
                kind = self.kind_of[message.topic]
                if message.topic != telemetry and message.offset < self._handled.get(message.tp, 0):
                    continue  # already read ahead at assignment
                for offset, raw in skipped.pop((message.partition, message.offset), ()):
                    self._decode_frame(batch, message.partition, offset, raw, frames)
                if message.topic == telemetry:
                    self._decode_frame(
                        batch, message.partition, message.offset, message.value, frames
                    )
                    continue
                try:
                    payload = codecs.decode_input(kind, message.value, self.validate)
                except ContractError as err:
                    batch.out.append(self.p.dead(message.topic, message.value, err))
                    continue
                self._handled[message.tp] = message.offset + 1
                self._admit(batch, kind, message.partition, payload)
            wall = time.monotonic()
            for partition, offset, payload in frames:
                self._last_frame_wall[partition] = wall
                # never backwards: a late redelivery must not fake a hole in the next batch
                self._next_offset[partition] = max(self._next_offset.get(partition, 0), offset + 1)
                entry = self._entry(batch, payload["machine_id"], payload["clinic_id"], partition)
                self._on_frame(batch, partition, entry, payload)
            c.batches += 1
            changelog = self._changelog(batch)
            computed = time.perf_counter_ns()
            await self.p.flush(batch.out, changelog)
            # handled and flushed: Faust may now commit over holes and its own gaps
            holes.mark_acked(self.p.app.consumer, batch.holes, {e.message.tp for e in events})
            c.last_batch_ns = time.time_ns()
            c.last_batch_cpu_ns = time.process_time_ns()
            c.read_ahead_ns += read - started
            c.compute_ns += computed - read
            c.flush_ns += time.perf_counter_ns() - computed

    def _decode_frame(
        self,
        batch: _Batch,
        partition: int,
        offset: int,
        raw: bytes | None,
        frames: list[tuple[int, int, dict[str, Any]]],
    ) -> None:
        try:
            frames.append((partition, offset, codecs.decode_input("telemetry", raw, self.validate)))
        except ContractError as err:
            batch.out.append(self.p.dead(self.p.topics.telemetry, raw, err))
            self._next_offset[partition] = max(self._next_offset.get(partition, 0), offset + 1)

    async def _skipped_frames(
        self, batch: _Batch, events: Sequence[Any]
    ) -> dict[tuple[int, int], list[Any]]:
        """Telemetry Faust stepped over (``stream.app.holes``), read with the side consumer:
        {(partition, offset of the frame after the hole): [(offset, raw), ...]}. Frames
        read twice are dropped by the core's (machine_id, seq) dedup."""
        telemetry = self.p.topics.telemetry
        committed = self.p.app.consumer._committed_offset
        found = holes.find_holes(
            ((e.message.tp, e.message.offset) for e in events if e.message.topic == telemetry),
            lambda tp: self._next_offset.get(tp.partition, committed.get(tp)),
        )
        if not found:
            return {}
        batch.holes = found
        for tp, start, end in found:
            log.warning(
                "Faust skipped telemetry %s offsets %d..%d; reading them directly",
                tp,
                start,
                end - 1,
            )
        filled = holes.fill(found, await self.gaps.read_range(holes.read_ranges(found)))
        self.p.counters.skipped_recovered += sum(len(v) for v in filled.values())
        return {(tp.partition, end): frames for (tp, end), frames in filled.items()}

    def _on_frame(
        self, batch: _Batch, partition: int, entry: MachineEntry, frame: dict[str, Any]
    ) -> None:
        before = self._clock(batch, partition)
        clock = max(before, event_time_ns("telemetry", frame) or 0)
        batch.clocks[partition] = clock
        items = entry.inbox.before_frame(frame["t0_ns"])
        self.p.counters.held_released += len(items)
        items.append(("telemetry", frame))
        self._apply(batch, entry, items, clock)
        if not entry.inbox.queue:
            self._held.get(partition, set()).discard(entry.state.machine_id)
        self._release(batch, partition, clock, everything=False)
        tick = self.timing.tick_event_ns
        if before and clock // tick > before // tick:
            self._tick(batch, partition, clock)

    def _caught_up(self, owned: set[int]) -> set[int]:
        """Owned partitions whose telemetry has been handled up to the end last seen by
        the fetcher (the cached highwater: no call into Faust's consumer thread)."""
        consumer = self.p.app.consumer
        done = set()
        for p in owned:
            tp = TP(self.p.topics.telemetry, p)
            end = consumer.highwater(tp)
            committed = consumer._committed_offset.get(tp) or 0
            handled = max(self._next_offset.get(p, 0), committed)
            if end is not None and handled >= end:
                done.add(p)
        return done

    async def _check_stalls(self, quiet: set[int], now: float) -> None:
        """A partition with frames waiting and none handled for ``stall_s``: exit.

        Seen with Faust 0.15 after a rebalance in the middle of a backlog: the partition
        stays assigned and "active" but is never fetched again. A restart resumes it
        from the committed offset."""
        suspects = [
            p
            for p in sorted(quiet)
            if now - self._last_frame_wall[p] >= self.timing.stall_s
            and now - self._stall_checked.get(p, 0.0) >= self.timing.stall_s
        ]
        if not suspects:
            return
        for p in suspects:
            self._stall_checked[p] = now
        tps = [TP(self.p.topics.telemetry, p) for p in suspects]
        ends = await end_offsets(self.bootstrap, tps)
        committed = self.p.app.consumer._committed_offset
        for tp in tps:
            if self._last_frame_wall[tp.partition] > now:
                continue  # frames came while we asked
            handled = max(self._next_offset.get(tp.partition, 0), committed.get(tp) or 0)
            if ends.get(tp, 0) > handled and not self.p.app.rebalancing:
                log.error(
                    "telemetry partition %s stalled at offset %s of %s for %.0f s; exiting "
                    "so a restart resumes it",
                    tp.partition,
                    handled,
                    ends[tp],
                    now - self._last_frame_wall[tp.partition],
                )
                await self.p.app.crash(RuntimeError(f"stalled partition {tp}"))
                return

    async def close(self) -> None:
        """Stop the side consumers (at shutdown), after any batch still using them."""
        async with self.p.lock:
            await self.sparse.stop()
            await self.gaps.stop()

    async def on_idle_check(self) -> None:
        """Timer: partitions whose telemetry is read to the end and has gone quiet release
        everything held, then tick at their (now still) clock."""
        if not self.p.ready():
            return
        owned = self.p.assigned(self.p.topics.telemetry)
        now = time.monotonic()
        quiet = set()
        for partition in owned:
            last = self._last_frame_wall.setdefault(partition, now)
            if now - last >= self.timing.reorder_idle_s:
                quiet.add(partition)
        if not quiet:
            return
        await self._check_stalls(quiet, now)
        idle = self._caught_up(quiet)
        async with self.p.lock:
            batch = _Batch()
            await self._new_generation(batch)
            for partition in sorted(idle):
                if self._last_frame_wall.get(partition, 0) > now:  # a frame came meanwhile
                    continue
                clock = self._clock(batch, partition)
                if not clock:
                    continue
                self._release(batch, partition, clock, everything=True)
                if self._idle_ticked.get(partition) != clock:
                    self._idle_ticked[partition] = clock
                    self._tick(batch, partition, clock)
            if batch.dirty or batch.out:
                await self.p.flush(batch.out, self._changelog(batch))
