"""Frame order: duplicate drop, gap tracking and a small reorder buffer, by ``seq``.

The edge numbers telemetry frames 0, 1, 2, ... without gaps and replays its outbox in
order, so disorder downstream is small (MQTT QoS 1 redelivery, Kafka retries). Policy:

* ``seq`` below the next expected one: a **duplicate** if it was delivered before, else a
  **late** frame whose slot was already given up (counted, ignored: the samples around
  it have been processed and reps emitted; splicing it in would rewrite history).
* ``seq`` above the next expected one is **held** in a reorder buffer. When the buffer
  holds more than ``window`` frames, or on :meth:`release_all` (the processor calls it
  when the machine has been silent for the reorder hold), the missing seqs are given up
  as a **gap** and processing continues. Device time never gives a hole up: two bridges
  in a share group deliver a machine's frames tens of frames out of order within a
  second while its device time runs on.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

MAX_REMEMBERED_MISSING = 4096


@dataclass(frozen=True, slots=True)
class Gap:
    first_seq: int
    count: int
    before: dict[str, Any]  # the frame right after the gap


class SeqTracker:
    def __init__(self, window: int) -> None:
        self.window = window
        self.next_seq: int | None = None
        self.held: dict[int, dict[str, Any]] = {}
        self.missing: list[int] = []  # given-up seqs (bounded), to tell late from duplicate
        self.duplicates = 0
        self.late = 0
        self.missing_total = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "next_seq": self.next_seq,
            "held": [[k, v] for k, v in sorted(self.held.items())],
            "missing": self.missing,
            "duplicates": self.duplicates,
            "late": self.late,
            "missing_total": self.missing_total,
        }

    def load_json(self, d: dict[str, Any]) -> None:
        self.next_seq = d["next_seq"]
        self.held = {int(k): v for k, v in d["held"]}
        self.missing = list(d["missing"])
        self.duplicates = int(d["duplicates"])
        self.late = int(d["late"])
        self.missing_total = int(d["missing_total"])

    def accept(self, frame: dict[str, Any]) -> tuple[list[dict[str, Any]], list[Gap]]:
        """Frames now ready to process, in seq order, and the gaps given up on the way."""
        seq = int(frame["seq"])
        if self.next_seq is None:
            self.next_seq = seq
        if seq < self.next_seq:
            if seq in self.missing:
                self.late += 1
            else:
                self.duplicates += 1
            return [], []
        if seq in self.held:
            self.duplicates += 1
            return [], []
        self.held[seq] = frame
        ready, gaps = self._drain()
        if len(self.held) > self.window:
            r, g = self.release_all()
            ready += r
            gaps += g
        return ready, gaps

    def release_all(self) -> tuple[list[dict[str, Any]], list[Gap]]:
        """Give up every hole before the held frames and return them all."""
        ready: list[dict[str, Any]] = []
        gaps: list[Gap] = []
        while self.held:
            first = min(self.held)
            assert self.next_seq is not None
            if first > self.next_seq:
                count = first - self.next_seq
                self._remember(range(self.next_seq, first))
                self.missing_total += count
                gaps.append(Gap(self.next_seq, count, self.held[first]))
                self.next_seq = first
            r, _ = self._drain()
            ready += r
        return ready, gaps

    def _drain(self) -> tuple[list[dict[str, Any]], list[Gap]]:
        ready = []
        while self.next_seq in self.held:
            ready.append(self.held.pop(self.next_seq))
            self.next_seq += 1
        return ready, []

    def _remember(self, seqs: range) -> None:
        if len(seqs) > MAX_REMEMBERED_MISSING:
            seqs = seqs[-MAX_REMEMBERED_MISSING:]
        self.missing.extend(seqs)
        del self.missing[:-MAX_REMEMBERED_MISSING]
