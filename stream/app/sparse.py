"""Read the sparse event/state partitions up to their current end, ahead of the frames.

Kafka orders each topic partition, never telemetry and events together. While data
streams in, a worker's telemetry fetches can run ahead of its events fetches; during a
backfill one second of wall time is hours of device time, so a check-in read a second
late lands after the frames it precedes. Before a batch of frames is handled, the
machine agent therefore reads the events/state partitions it owns up to their end
offsets *as of now* with this side consumer: every event produced before those frames
were readable is then in its machine's inbox, and the inbox orders them by device time.
Faust delivers the same messages again later; the agent skips them by offset.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from faust.types import TP

log = logging.getLogger(__name__)

FETCH_MAX_WAIT_MS = 10
"""How long the broker may hold a fetch of the side consumer waiting for data. aiokafka
keeps one fetch per broker in flight; with the default 500 ms, a fetch parked on an
idle partition made every read-ahead wait for it (276 ms per batch measured). The
partitions are paused between read-aheads, so a short wait costs no idle polling."""

READ_AHEAD_TIMEOUT_S = 30.0
"""How long one read-ahead may take before the worker gives up loudly (broker trouble)."""


class SparseReader:
    """A long-lived side consumer (no group, no commits) over the owned sparse partitions."""

    def __init__(self, bootstrap: str) -> None:
        self.bootstrap = bootstrap
        self._consumer: Any = None
        self._assigned: frozenset[TP] = frozenset()

    async def _ensure(self, positions: dict[TP, int]) -> Any:
        from aiokafka import AIOKafkaConsumer, TopicPartition

        if self._consumer is None:
            self._consumer = AIOKafkaConsumer(
                bootstrap_servers=self.bootstrap,
                enable_auto_commit=False,
                auto_offset_reset="earliest",  # a range below the log start reads from it
                fetch_max_wait_ms=FETCH_MAX_WAIT_MS,
            )
            await self._consumer.start()
        wanted = frozenset(positions)
        if wanted != self._assigned:
            self._consumer.assign([TopicPartition(tp.topic, tp.partition) for tp in wanted])
            self._assigned = wanted
        self._consumer.resume(*self._consumer.assignment())
        for tp, offset in positions.items():
            ktp = TopicPartition(tp.topic, tp.partition)
            if await self._consumer.position(ktp) != offset:
                self._consumer.seek(ktp, offset)
        return self._consumer

    async def read_ahead(self, positions: dict[TP, int]) -> list[tuple[TP, int, bytes]]:
        """Messages from ``positions`` (next offset per partition) to the current ends."""
        from aiokafka import TopicPartition

        if not positions:
            return []
        consumer = await self._ensure(positions)
        ends = await consumer.end_offsets(
            [TopicPartition(tp.topic, tp.partition) for tp in positions]
        )
        return await self._read(
            consumer, {tp: int(ends[TopicPartition(tp.topic, tp.partition)]) for tp in positions}
        )

    async def read_range(self, ranges: dict[TP, tuple[int, int]]) -> list[tuple[TP, int, bytes]]:
        """Messages with ``start <= offset < end`` of each partition's ``(start, end)``."""
        if not ranges:
            return []
        consumer = await self._ensure({tp: start for tp, (start, _) in ranges.items()})
        return await self._read(consumer, {tp: end for tp, (_, end) in ranges.items()})

    async def _read(self, consumer: Any, ends: dict[TP, int]) -> list[tuple[TP, int, bytes]]:
        from aiokafka import TopicPartition

        ktps = {TopicPartition(tp.topic, tp.partition): tp for tp in ends}
        pending = {k for k, tp in ktps.items() if await consumer.position(k) < ends[tp]}
        out: list[tuple[TP, int, bytes]] = []
        deadline = time.monotonic() + READ_AHEAD_TIMEOUT_S
        while pending:
            if time.monotonic() > deadline:
                raise TimeoutError(f"side read stuck on {sorted(map(str, pending))}")
            batches = await consumer.getmany(*pending, timeout_ms=100)
            for ktp, records in batches.items():
                end = ends[ktps[ktp]]
                out.extend((ktps[ktp], r.offset, r.value) for r in records if r.offset < end)
            for ktp in list(pending):
                if await consumer.position(ktp) >= ends[ktps[ktp]]:
                    pending.discard(ktp)
        consumer.pause(*consumer.assignment())  # no background fetching between reads
        return out

    async def stop(self) -> None:
        if self._consumer is not None:
            await self._consumer.stop()
            self._consumer = None
            self._assigned = frozenset()
