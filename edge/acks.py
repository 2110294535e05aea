"""Pure bookkeeping of the agent's end-to-end acknowledgements (docs/contract.md).

With ``SLEDFLEET_EDGE_DELETE_ON=ack`` a row leaves the outbox only when a bridge says Kafka
holds its seq (``sledfleet/v1/{clinic}/{machine}/ack``); the broker's PUBACK only frees an
in-flight slot. A row the broker acknowledged but nobody confirmed may have been lost by the
broker (a kill -9 while it queued it for an absent bridge, an expired bridge session, a full
queue). Such rows are re-sent:

* after every reconnect: all of them, oldest first (the agent rewinds its cursor);
* when the oldest of them has waited ``ack_timeout_s`` since it was last sent. The timeout
  doubles after each such re-send that brought no progress, up to ``ack_timeout_max_s``, so a
  platform outage (Kafka down, bridges away) does not flood the broker's queues with copies;
  it is back to ``ack_timeout_s`` as soon as the oldest row is confirmed;
* sooner, after ``ack_hole_s``, when the oldest is a *hole*: a newer row was confirmed, so
  the pipeline flows and this one was lost (e.g. a restarted broker took it before any bridge
  had subscribed again). Re-sent within seconds, it still reaches the stream worker inside its
  reorder window instead of being refused as a late frame. Backs off the same way.

``ResendClock`` decides the second case from the outbox's oldest row id and the times rows
were handed to MQTT. No I/O; the agent serialises access.
"""

from __future__ import annotations

from collections import deque
from typing import Any, Final

from edge import contract

DELETE_ON: Final = ("puback", "ack")
"""``puback``: a row is deleted on the broker's PUBACK (at-least-once only while the broker
does not crash); ``ack``: on the platform's end-to-end ack (Kafka holds it)."""
STREAM_KIND: Final = {"frames": "telemetry", "events": "event"}
"""Outbox row kind of each ack stream."""


SeqRanges = list[tuple[int, int]]


def parse_ack(raw: bytes, clinic_id: str, machine_id: str) -> list[tuple[str, SeqRanges]]:
    """``[(row kind, seq ranges)]`` of one ack message; raises ContractError when malformed."""
    ranges = contract.validate_ack(contract.decode(raw), clinic_id, machine_id)
    return [(STREAM_KIND[s], r) for s, r in ranges.items() if r]


class ResendClock:
    """When the broker-acknowledged, unconfirmed rows are due again (timeout with backoff)."""

    def __init__(self, timeout_s: float, max_s: float, hole_s: float | None = None) -> None:
        hole_s = timeout_s if hole_s is None else hole_s
        if timeout_s <= 0 or max_s < timeout_s or not 0 < hole_s <= max_s:
            raise ValueError("ack timeouts must be > 0 and <= their maximum")
        self.timeout_s = timeout_s
        self.max_s = max_s
        self.current_s = timeout_s
        self.hole_s = hole_s
        self.hole_current_s = hole_s
        self._sent: deque[tuple[int, float]] = deque()  # (highest row id handed, when)
        self._oldest: int | None = None
        self.resends = 0

    def sent(self, upto_id: int, now: float) -> None:
        """Rows up to ``upto_id`` were handed to MQTT at ``now`` (ids only grow between
        rewinds)."""
        if self._sent and self._sent[-1][0] >= upto_id:
            return
        self._sent.append((upto_id, now))

    def rewound(self) -> None:
        """The agent re-sends everything from its oldest row: forget the send times."""
        self._sent.clear()

    def due(self, oldest_id: int | None, now: float, hole: bool = False) -> bool:
        """True when the oldest unconfirmed row (``oldest_id``, None if there is none that was
        sent) has waited the current timeout (the hole timeout when ``hole``: a newer row was
        confirmed); the caller then rewinds and re-sends."""
        if oldest_id is None:
            self._oldest = None
            self.current_s, self.hole_current_s = self.timeout_s, self.hole_s
            self._sent.clear()
            return False
        if self._oldest is not None and oldest_id > self._oldest:
            # progress: the oldest row was confirmed
            self.current_s, self.hole_current_s = self.timeout_s, self.hole_s
        self._oldest = oldest_id
        sent = self._sent
        while sent and sent[0][0] < oldest_id:
            sent.popleft()
        if not sent:
            return False  # not sent since the last rewind: the cursor walk gets to it
        wait = min(self.current_s, self.hole_current_s) if hole else self.current_s
        if now - sent[0][1] < wait:
            return False
        if hole:
            self.hole_current_s = min(2 * self.hole_current_s, self.max_s)
        else:
            self.current_s = min(2 * self.current_s, self.max_s)
        self.resends += 1
        return True

    def state(self) -> dict[str, Any]:
        return {"timeout_s": self.current_s, "resends": self.resends}
