"""Fleet lockstep: machines that replay a simulated period deliver it together, in order.

A backfill source runs as fast as its consumer pulls, so twelve machines replayed side by
side drift apart by hours of device time: a 50 Hz machine covers four times the hours of a
200 Hz one for the same number of frames. A real fleet's machines stream *together*:
what reaches the broker at one instant was taken at about the same true time (give or
take each machine's network delay). :class:`Lockstep` restores that without a wall clock:
every member announces the due time of its next chunk (true time + its delay, see
``edge.simulator.disorder.Delivery``) and waits while it is more than ``window_ns``
ahead of the slowest member still running. Time between sessions is skipped (the
slowest member jumps), so a simulated day takes as long as its data takes to publish.

Members join when their source is created and leave when it ends or is closed; a member
that never runs holds the others (create sources only for machines you run).
"""

from __future__ import annotations

import threading


class Lockstep:
    def __init__(self, window_ns: int) -> None:
        self.window_ns = window_ns
        self._cond = threading.Condition()
        self._due: dict[int, float] = {}
        self._next = 0

    def join(self) -> int:
        """A new member (its id); it holds the others until its first ``advance``."""
        with self._cond:
            self._next += 1
            self._due[self._next] = float("-inf")
            return self._next

    def leave(self, member: int) -> None:
        with self._cond:
            self._due.pop(member, None)
            self._cond.notify_all()

    def announce(self, member: int, due_ns: int) -> None:
        """Set the member's due time without waiting (an offline machine filling its
        outbox announces its reconnect time: it holds nobody meanwhile)."""
        with self._cond:
            self._due[member] = due_ns
            self._cond.notify_all()

    def advance(self, member: int, due_ns: int, stop: threading.Event) -> bool:
        """Announce ``due_ns`` and wait until it is within the window of the slowest
        member; False when ``stop`` was set meanwhile."""
        with self._cond:
            self._due[member] = due_ns
            self._cond.notify_all()
            while due_ns > min(self._due.values()) + self.window_ns:
                if stop.is_set():
                    return False
                self._cond.wait(0.2)
            return not stop.is_set()

    def members(self) -> int:
        with self._cond:
            return len(self._due)
