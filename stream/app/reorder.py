"""Per-machine merge of the sparse event/state topics into the telemetry stream by device time.

Telemetry, events and state travel on three co-partitioned topics. Kafka orders each
topic partition, never the three together, and a consumer with a backlog reads the
small events partition far ahead of the telemetry one (a whole day of check-ins and
check-outs before the first frame). Fed in arrival order, the core would see a session
end before its first frame, and two runs would see different orders.

The inbox gives every machine one deterministic order: an event (or state message) is
held until the machine's telemetry reaches its device time (the first frame starting at
or after it releases it), or until the partition's device clock is ``grace_ns`` past
it (the machine went quiet while others carry on), or until the partition has no
telemetry left to read (``release_all``). Items without a time (a last-will
``offline``) keep their place in the queue and leave as soon as they reach its head.
The inbox is JSON and lives in the machine's table entry, so held items survive a crash.

Pure: no Faust, no Kafka.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

Item = tuple[str, dict[str, Any]]  # (input kind, payload)


@dataclass(slots=True)
class Inbox:
    queue: list[tuple[int | None, str, dict[str, Any]]] = field(default_factory=list)
    last_frame_t0: int | None = None
    last_state: tuple[str, int | None] | None = None  # (status, ts_ns) last admitted

    def to_json(self) -> dict[str, Any]:
        return {
            "q": [[ts, kind, payload] for ts, kind, payload in self.queue],
            "f": self.last_frame_t0,
            "ls": None if self.last_state is None else list(self.last_state),
        }

    @classmethod
    def from_json(cls, d: dict[str, Any] | None) -> Inbox:
        if not d:
            return cls()
        ls = d.get("ls")
        return cls(
            [(ts, kind, payload) for ts, kind, payload in d.get("q", [])],
            d.get("f"),
            None if ls is None else (ls[0], ls[1]),
        )

    def repeated_state(self, payload: dict[str, Any]) -> bool:
        """Is this state message one already admitted, or older than it? State messages
        carry no seq; at-least-once redelivery (a crash, a rebalance) repeats them."""
        status, ts = payload.get("status"), payload.get("ts_ns")
        ts = ts if isinstance(ts, int) else None
        if self.last_state is not None:
            last_status, last_ts = self.last_state
            if (status, ts) == (last_status, last_ts):
                return True
            if ts is not None and last_ts is not None and ts < last_ts:
                return True
        self.last_state = (str(status), ts)
        return False

    def admit(self, kind: str, payload: dict[str, Any], ts: int | None) -> list[Item]:
        """An event/state message arrived: what to process now (maybe nothing)."""
        if not self.queue:
            late = ts is not None and self.last_frame_t0 is not None and ts <= self.last_frame_t0
            if ts is None or late:
                return [(kind, payload)]
        self._insert(ts, kind, payload)
        return []

    def _insert(self, ts: int | None, kind: str, payload: dict[str, Any]) -> None:
        """Keep the queue in device-time order (stable for equal times). An item with a
        time far ahead (a birth stamped with the host's wall clock during a backfill of
        simulated weeks) must not hold back the check-ins queued after it."""
        if ts is None:
            self.queue.append((ts, kind, payload))
            return
        i = len(self.queue)
        while i > 0:
            prev = self.queue[i - 1][0]
            if prev is None or prev <= ts:  # a timeless item is a barrier: keeps its place
                break
            i -= 1
        self.queue.insert(i, (ts, kind, payload))

    def before_frame(self, t0_ns: int) -> list[Item]:
        """A frame starting at ``t0_ns`` is next: release what happened before it."""
        if self.last_frame_t0 is None or t0_ns > self.last_frame_t0:
            self.last_frame_t0 = t0_ns
        return self._release(lambda ts: ts <= t0_ns)

    def release_due(self, clock_ns: int, grace_ns: int) -> list[Item]:
        """Release what the partition's device clock has passed by ``grace_ns``."""
        return self._release(lambda ts: ts + grace_ns <= clock_ns)

    def release_all(self) -> list[Item]:
        out = [(kind, payload) for _, kind, payload in self.queue]
        self.queue.clear()
        return out

    def _release(self, due: Callable[[int], bool]) -> list[Item]:
        out: list[Item] = []
        while self.queue:
            ts, kind, payload = self.queue[0]
            if ts is not None and not due(ts):
                break
            self.queue.pop(0)
            out.append((kind, payload))
        return out
