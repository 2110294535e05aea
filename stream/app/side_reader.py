"""A side consumer of our own (no group, no commits): exact offset ranges and end offsets.

The machine agent reads telemetry Faust's fetcher stepped over (``stream.app.holes``)
with it, and asks it for end offsets when a partition looks stalled. Faust's own
consumer thread must not be waited on from inside an agent: it may be waiting for that
agent. The address comes from the worker's settings, like every Kafka client's.
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

READ_TIMEOUT_S = 30.0
"""How long one side read may take before the worker gives up loudly (broker trouble)."""

Read = tuple[TP, int, bytes | None, tuple[tuple[str, bytes], ...]]
"""(topic partition, offset, value, headers) of one message read."""


class SideReader:
    """A long-lived side consumer, assigned what it is asked to read, paused in between."""

    def __init__(self, bootstrap: list[str], auth: dict[str, Any] | None = None) -> None:
        self.bootstrap = bootstrap
        self.auth = dict(auth or {})  # KafkaSettings.aiokafka_auth(): SASL user, TLS
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
                **self.auth,
            )
            await self._consumer.start()
        wanted = frozenset(positions)
        if wanted and wanted != self._assigned:
            self._consumer.assign([TopicPartition(tp.topic, tp.partition) for tp in wanted])
            self._assigned = wanted
        self._consumer.resume(*self._consumer.assignment())
        for tp, offset in positions.items():
            ktp = TopicPartition(tp.topic, tp.partition)
            if await self._consumer.position(ktp) != offset:
                self._consumer.seek(ktp, offset)
        return self._consumer

    async def end_offsets(self, tps: list[TP]) -> dict[TP, int]:
        """The current end offset of each topic partition (a broker call)."""
        from aiokafka import TopicPartition

        consumer = await self._ensure({})
        ends = await consumer.end_offsets([TopicPartition(tp.topic, tp.partition) for tp in tps])
        return {TP(k.topic, k.partition): int(v) for k, v in ends.items()}

    async def read_range(self, ranges: dict[TP, tuple[int, int]]) -> list[Read]:
        """Messages with ``start <= offset < end`` of each partition's ``(start, end)``."""
        if not ranges:
            return []
        consumer = await self._ensure({tp: start for tp, (start, _) in ranges.items()})
        return await self._read(consumer, {tp: end for tp, (_, end) in ranges.items()})

    async def _read(self, consumer: Any, ends: dict[TP, int]) -> list[Read]:
        from aiokafka import TopicPartition

        ktps = {TopicPartition(tp.topic, tp.partition): tp for tp in ends}
        pending = {k for k, tp in ktps.items() if await consumer.position(k) < ends[tp]}
        out: list[Read] = []
        deadline = time.monotonic() + READ_TIMEOUT_S
        while pending:
            if time.monotonic() > deadline:
                raise TimeoutError(f"side read stuck on {sorted(map(str, pending))}")
            batches = await consumer.getmany(*pending, timeout_ms=100)
            for ktp, records in batches.items():
                end = ends[ktps[ktp]]
                out.extend(
                    (ktps[ktp], r.offset, r.value, tuple(r.headers or ()))
                    for r in records
                    if r.offset < end
                )
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
