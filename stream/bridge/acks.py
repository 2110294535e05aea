"""Pure bookkeeping of the bridge's end-to-end acknowledgements (docs/contract.md).

When Kafka acknowledged (acks=all) the record of a machine's frame or event, the bridge
owes the machine's agent an ack for that seq. ``AckTracker`` collects them per machine as
inclusive seq ranges and hands them out coalesced: the publisher takes everything pending
once per ``SLEDFLEET_BRIDGE_ACK_INTERVAL_MS``, so a machine gets at most one ack message per
interval whatever its frame rate.

Each message carries the ranges acknowledged since this bridge's previous message for the
machine, merged with the bridge's *current contiguous run* (the range holding the highest
seq it acknowledged). With one bridge that is a single range ``[first seq this bridge took,
highest contiguous seq]``: a watermark, and the retained message tells a reconnecting agent
all of it. Bridges in one share group each see a part of a machine's seqs, so no bridge can
claim a watermark over seqs it never saw: they publish what they hold and the agent deletes
by the set (``edge/acks.py``).

No MQTT or Kafka imports; not thread-safe (the bridge's ``AckPublisher`` locks).
"""

from __future__ import annotations

import bisect
import json
from typing import Final, NamedTuple

from edge.contract import MAX_ACK_RANGES, MAX_PAYLOAD_BYTES, ContractError, TopicParts, parse_topic

SeqRange = tuple[int, int]

STREAM_OF_KIND: Final = {"telemetry": "frames", "event": "events"}
"""Which ack stream a message kind's seq belongs to (state messages are not in the outbox)."""
MAX_TRACKED_MACHINES: Final = 100_000
"""Machines whose contiguous run is remembered; beyond it the runs are forgotten (acks stay
correct, the next messages only carry less history)."""


class AckRef(NamedTuple):
    """What one Kafka record acknowledges: a machine's seq in one stream."""

    clinic_id: str
    machine_id: str
    stream: str
    seq: int


class Ack(NamedTuple):
    """One ack message due for a machine."""

    clinic_id: str
    machine_id: str
    frames: list[SeqRange]
    events: list[SeqRange]


def ack_ref(parts: TopicParts, payload: object) -> AckRef | None:
    """The ref of a validated message (None for kinds without an outbox seq)."""
    stream = STREAM_OF_KIND.get(parts.kind)
    if stream is None or not isinstance(payload, dict):
        return None
    seq = payload.get("seq")
    if type(seq) is not int or seq < 0:
        return None
    return AckRef(parts.clinic_id, parts.machine_id, stream, seq)


def dead_ack_ref(mqtt_topic: str, raw: bytes) -> AckRef | None:
    """The ref of a message that was dead-lettered, when its topic names a machine and its
    payload a seq: Kafka holds it (in the dead-letter topic), so the agent may let it go
    instead of re-sending it forever."""
    if len(raw) > MAX_PAYLOAD_BYTES:
        return None
    try:
        parts = parse_topic(mqtt_topic)
        payload = json.loads(raw)
    except (ContractError, ValueError, RecursionError):
        return None
    return ack_ref(parts, payload)


def _start(r: list[int]) -> int:
    return r[0]


class RangeSet:
    """Sorted disjoint inclusive ranges of ints; appending in order is O(1)."""

    __slots__ = ("_r",)

    def __init__(self) -> None:
        self._r: list[list[int]] = []

    def __bool__(self) -> bool:
        return bool(self._r)

    def add(self, seq: int) -> None:
        r = self._r
        if r:
            last = r[-1]
            if last[0] <= seq <= last[1]:
                return
            if seq == last[1] + 1:
                last[1] = seq
                return
            if seq > last[1]:
                r.append([seq, seq])
                return
        else:
            r.append([seq, seq])
            return
        self._insert(seq)

    def add_range(self, lo: int, hi: int) -> None:
        r = self._r
        i = bisect.bisect_left(r, lo, key=_start)
        if i and r[i - 1][1] >= lo - 1:
            i -= 1
        j = i
        while j < len(r) and r[j][0] <= hi + 1:
            j += 1
        if i == j:
            r.insert(i, [lo, hi])
        else:
            r[i:j] = [[min(lo, r[i][0]), max(hi, r[j - 1][1])]]

    def _insert(self, seq: int) -> None:
        r = self._r
        i = bisect.bisect_right(r, seq, key=_start)
        if i and r[i - 1][1] >= seq:
            return  # inside the previous range
        joins_prev = i > 0 and r[i - 1][1] == seq - 1
        joins_next = i < len(r) and r[i][0] == seq + 1
        if joins_prev and joins_next:
            r[i - 1][1] = r[i][1]
            del r[i]
        elif joins_prev:
            r[i - 1][1] = seq
        elif joins_next:
            r[i][0] = seq
        else:
            r.insert(i, [seq, seq])

    def ranges(self) -> list[SeqRange]:
        return [(lo, hi) for lo, hi in self._r]


class AckTracker:
    """Seqs Kafka acknowledged, per machine and stream, until the publisher takes them."""

    def __init__(self, max_ranges: int = MAX_ACK_RANGES) -> None:
        self.max_ranges = max_ranges
        self._pending: dict[tuple[str, str, str], RangeSet] = {}
        self._runs: dict[tuple[str, str, str], list[int]] = {}

    def __len__(self) -> int:
        """Machine streams with acks pending."""
        return len(self._pending)

    def add(self, ref: AckRef) -> None:
        """One seq Kafka holds (called per record: kept to a few dict operations)."""
        key = ref[:3]
        seq = ref[3]
        rs = self._pending.get(key)
        if rs is None:
            rs = self._pending[key] = RangeSet()
        rs.add(seq)
        run = self._runs.get(key)
        if run is None:
            if len(self._runs) >= MAX_TRACKED_MACHINES:
                self._runs.clear()
            self._runs[key] = [seq, seq]
        elif run[1] + 1 == seq:
            run[1] = seq
        elif seq > run[1]:
            run[0] = run[1] = seq  # a jump: the run restarts at the new highest seq
        elif seq == run[0] - 1:
            run[0] = seq

    def take(self) -> list[Ack]:
        """Every pending ack, one per machine (split when a stream has too many ranges)."""
        by_machine: dict[tuple[str, str], dict[str, list[SeqRange]]] = {}
        for key, rs in self._pending.items():
            run = self._runs.get(key)
            if run is not None:
                rs.add_range(run[0], run[1])
            by_machine.setdefault((key[0], key[1]), {})[key[2]] = rs.ranges()
        self._pending = {}
        out: list[Ack] = []
        n = self.max_ranges
        for (clinic, machine), streams in by_machine.items():
            frames, events = streams.get("frames", []), streams.get("events", [])
            for i in range(0, max(len(frames), len(events), 1), n):
                out.append(Ack(clinic, machine, frames[i : i + n], events[i : i + n]))
        return out
