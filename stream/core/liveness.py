"""Wall-clock liveness of the machines and partitions one stream worker owns.

Pure bookkeeping, no I/O: the caller passes ``now`` (monotonic seconds) and what the
consumer knows (owned partitions, their ends and committed offsets), and acts on the
answers. The stream adapter (``stream.app.machines``) reads and writes Kafka; every
decision about *when* lives here:

- **handled offsets** per partition (never backwards: a late redelivery must not fake a
  hole, and a message already handled from a side read is not handled twice);
- **silent machines:** a machine gets one liveness check per *mark* (the silences of
  :attr:`Liveness.marks`, in seconds) that its silence passes, and only while its
  partition is read to its end (under load a machine's messages may still wait in the
  consumer's buffers);
- **stalled partitions:** an owned partition with messages waiting and none handled for
  ``stall_s``, while every busy partition is read to its end, is a stall suspect (checked
  at most once per ``stall_s``); once found stalled it is read at every check until the
  consumer delivers from it again.

The wall clock decides liveness only: what a check may do is the core's business
(:meth:`stream.core.timeline.Timeline.release_quiet`,
:meth:`stream.core.processor.MachineProcessor.on_silence`), and neither throws data away.
State is memory only: after a rebalance :meth:`Liveness.reset` rebuilds it from the
machines the recovered table holds.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

__all__ = ["Heard", "Liveness"]


@dataclass(slots=True)
class Heard:
    """When one machine was last heard from, and the silence its last check covered."""

    partition: int
    wall: float
    """Monotonic time of its last message."""
    silence_done: float = 0.0
    """The silence (s) its last liveness check covered (0 after a message)."""


class Liveness:
    def __init__(self, idle_s: float, stall_s: float, marks: Iterable[float]) -> None:
        self.idle_s = idle_s
        """Silence (s) after which a partition counts as quiet."""
        self.stall_s = stall_s
        """Silence (s) of a partition with messages waiting before it is a stall suspect."""
        self.marks = tuple(sorted(set(marks)))
        """Silences (s) at which a machine gets a liveness check: once each."""
        self._heard: dict[str, Heard] = {}
        self._next: dict[int, int] = {}  # partition -> next offset to handle
        self._last_wall: dict[int, float] = {}  # partition -> time of its last message
        self._stall_checked: dict[int, float] = {}
        self._stalled: set[int] = set()  # partitions read around the consumer

    # --- offsets ---------------------------------------------------------------------

    def handled(self, partition: int, offset: int) -> None:
        """``offset`` of ``partition`` is handled (never moves backwards)."""
        self._next[partition] = max(self._next.get(partition, 0), offset + 1)

    def next_offset(self, partition: int) -> int | None:
        """The next offset to handle, if any was handled since the last reset."""
        return self._next.get(partition)

    def already_handled(self, partition: int, offset: int) -> bool:
        return offset < self._next.get(partition, 0)

    def handled_to(self, partition: int, committed: int | None) -> int:
        """How far ``partition`` is handled: this worker's own progress or the commit."""
        return max(self._next.get(partition, 0), committed or 0)

    def caught_up(
        self,
        owned: Iterable[int],
        end: Callable[[int], int | None],
        committed: Callable[[int], int | None],
    ) -> set[int]:
        """Owned partitions handled up to ``end`` (the end last seen by the fetcher)."""
        done = set()
        for p in owned:
            e = end(p)
            if e is not None and self.handled_to(p, committed(p)) >= e:
                done.add(p)
        return done

    # --- machines --------------------------------------------------------------------

    def heard(self, machine_id: str, partition: int, now: float) -> None:
        """A message of ``machine_id`` was handled at ``now``."""
        self._last_wall[partition] = now
        h = self._heard.get(machine_id)
        if h is None:
            self._heard[machine_id] = Heard(partition, now)
        else:
            h.partition, h.wall, h.silence_done = partition, now, 0.0

    def reset(
        self, machines: Iterable[tuple[str, int | None]], owned: set[int], now: float
    ) -> None:
        """After a (re)assignment: a partition may have been handled elsewhere meanwhile,
        so forget handled offsets and stalls, and hear again from every ``(machine,
        partition)`` of an owned partition as of ``now``."""
        self._next.clear()
        self._stalled.clear()
        self._heard = {m: Heard(p, now) for m, p in machines if p is not None and p in owned}

    def current(self, machine_id: str) -> Heard | None:
        return self._heard.get(machine_id)

    def machines(self) -> list[str]:
        return list(self._heard)

    def silent(self, caught_up: set[int], now: float) -> list[tuple[str, Heard]]:
        """Machines due a liveness check: on a caught-up partition, their silence past a
        mark their last check did not cover. The caller checks each (if
        :meth:`current` still returns the same :class:`Heard`) and calls
        :meth:`checked`."""
        return [
            (machine_id, h)
            for machine_id, h in sorted(self._heard.items())
            if h.partition in caught_up
            and any(h.silence_done < mark <= now - h.wall for mark in self.marks)
        ]

    @staticmethod
    def checked(heard: Heard, silence: float) -> None:
        heard.silence_done = silence

    # --- partitions ------------------------------------------------------------------

    def quiet(self, owned: Iterable[int], now: float) -> set[int]:
        """Owned partitions without a message for ``idle_s`` (a partition never heard
        from starts its silence now)."""
        return {p for p in owned if now - self._last_wall.setdefault(p, now) >= self.idle_s}

    def silent_for(self, partition: int, now: float) -> float:
        return now - self._last_wall.get(partition, now)

    def stall_suspects(self, owned: set[int], caught_up: set[int], now: float) -> list[int]:
        """Partitions to look at for a stall. Only when every busy owned partition is
        read to its end (under load a partition's messages may sit in the consumer's
        buffers behind other partitions' for longer than ``stall_s``): the quiet ones
        not caught up that are stalled already, or silent for ``stall_s`` and not
        checked within ``stall_s``."""
        quiet = self.quiet(owned, now)
        if not caught_up >= owned - quiet:
            return []
        suspects = [
            p
            for p in sorted(quiet - caught_up)
            if p in self._stalled
            or (
                now - self._last_wall[p] >= self.stall_s
                and now - self._stall_checked.get(p, 0.0) >= self.stall_s
            )
        ]
        for p in suspects:
            self._stall_checked[p] = now
        return suspects

    def is_stalled(self, partition: int) -> bool:
        return partition in self._stalled

    def stalled(self, partition: int) -> None:
        """``partition`` is read around the consumer until :meth:`delivered`."""
        self._stalled.add(partition)

    def delivered(self, partition: int) -> None:
        """The consumer delivers from ``partition`` again."""
        self._stalled.discard(partition)
