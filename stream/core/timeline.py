"""Per-machine order and time: what the core sees next from one machine, and at what "now".

A machine's telemetry, events and state messages reach the worker on one Kafka partition
in the order the bridge produced them (``docs/contract.md``: one ordered stream per
machine). That order is the machine's own except for small swaps (MQTT redelivery, two
bridges in a share group). A :class:`Timeline` per machine turns arrivals into *steps*
for :class:`stream.core.processor.MachineProcessor`:

* **Time is the machine's own.** ``clock_ns`` is the device time its telemetry has
  reached (the end of the latest frame). Every step carries it as ``now_ns``; nothing
  about another machine, the partition or the wall clock enters it. A machine a minute
  behind its neighbours, replaying yesterday's outbox or running at another rate gets
  exactly the steps it would get alone.
* **Corrected by its clock offset where known.** A device's times are shifted to
  platform time by the offset it reports in its births (``clock_offset_ms``); a device
  whose births carry no such field at all (seen a birth without it: no guess before)
  gets an offset estimated from when its live frames reached the bridge (only when it
  is a minute or more: a clock set wrong, not transport delay). The correction changes
  only when the offset moves by more than ``CLOCK_STEP_NS``, so jitter never breaks a rep.
* **Events wait for their frames.** An event is held until the machine's telemetry
  reaches its device time: the first frame starting at or after it releases it (before
  that frame), or the machine's clock passing it by ``grace_ns``. Frames may precede
  their check-in and the core copes (it holds a session's records until the check-in);
  the hold keeps a check-out from overtaking the last frames of its session.
* **State messages** (birth/death, stamped with the agent host's clock, not the device's)
  are applied on arrival; repeats (at-least-once redelivery) are dropped here.
* **Ticks** run on the machine's clock: one whenever it crosses a multiple of
  ``tick_ns``, so idle sessions and held records are judged in device time.
* **Liveness** (:func:`release_quiet`) is the only place the wall clock matters: when
  the machine has been silent for a while, what it holds is released in order. Nothing
  is ever discarded because of wall time.

The held queue is bounded (``MAX_HELD``): past it, the oldest item is released early, in
order; a misbehaving device cannot grow its state without limit.

Pure: no Kafka, no Faust, no wall clock. State is JSON (:meth:`Timeline.to_json`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final, Literal

StepKind = Literal["telemetry", "event", "state", "tick"]
Step = tuple[StepKind, dict[str, Any] | None, int]
"""(what, payload or None for a tick, now_ns: the machine's device clock)."""

MAX_HELD: Final = 256
"""Held events per machine at most (a check-in/out pair per session needs two)."""

CLOCK_STEP_NS: Final = 2 * 10**9
"""A clock correction changes only when the device's offset moved by more than this
(2 s, the core's ``clock_skew_bound_ms`` default): offset estimates jitter by
milliseconds, and every change of the correction is a jump in the machine's time."""

ESTIMATE_MIN_NS: Final = 60 * 10**9
"""Without a reported offset, an offset estimated from arrival times is applied only
when it is at least this large (a device clock minutes or hours off, not transport delay)."""

ESTIMATE_WINDOW: Final = 32
"""Live frames whose (device end − arrival) differences make the estimate (their maximum:
transport delay is never negative, the NTP minimum-delay filter)."""


def _shifted(payload: dict[str, Any], key: str, by_ns: int) -> dict[str, Any]:
    """``payload`` with its time ``key`` moved by ``by_ns`` (a copy when it moves)."""
    ts = payload.get(key)
    if not by_ns or not isinstance(ts, int) or isinstance(ts, bool):
        return payload
    return {**payload, key: ts + by_ns}


def frame_end_ns(frame: dict[str, Any]) -> int:
    """Device time just after a frame's last sample."""
    n = len(frame["position_mm"])
    return int(frame["t0_ns"]) + round(n * 1e9 / float(frame["rate_hz"]))


def event_ts(payload: dict[str, Any]) -> int | None:
    ts = payload.get("ts_ns")
    return ts if isinstance(ts, int) and not isinstance(ts, bool) else None


@dataclass(slots=True)
class Timeline:
    clock_ns: int | None = None
    """Device time the machine's telemetry has reached (end of its latest frame)."""
    queue: list[tuple[int | None, dict[str, Any]]] = field(default_factory=list)
    """Held events in device-time order, as the device sent them: (ts_ns, event). The
    clock correction is applied when one is released, with the offset known by then (an
    event may arrive before the frames that reveal its machine's clock is off)."""
    last_frame_t0: int | None = None
    last_state: tuple[str, int | None] | None = None
    """(status, ts_ns) of the last state message applied: repeats are dropped."""
    repeats: int = 0
    """State messages dropped as repeats (at-least-once redelivery)."""
    offset_ns: int = 0
    """Correction applied to the machine's times: device clock minus platform time."""
    reported: bool | None = None
    """Whether the machine's births carry ``clock_offset_ms`` (a value, or null from a
    replay source that cannot know it); None before its first birth. An offset is
    estimated only for a machine whose births say nothing about it (False)."""
    lags: list[int] = field(default_factory=list)
    """Latest (device end − arrival) of live frames, ns (at most ``ESTIMATE_WINDOW``)."""

    def to_json(self) -> dict[str, Any]:
        return {
            "c": self.clock_ns,
            "q": [[ts, ev] for ts, ev in self.queue],
            "qr": 1,  # the queue holds raw device times (states before it: corrected)
            "f": self.last_frame_t0,
            "ls": None if self.last_state is None else list(self.last_state),
            "r": self.repeats,
            "o": self.offset_ns,
            "or": self.reported,
            "l": self.lags,
        }

    @classmethod
    def from_json(cls, d: dict[str, Any] | None) -> Timeline:
        if not d:
            return cls()
        ls = d.get("ls")
        queue = [(ts, ev) for ts, ev in d.get("q", [])]
        offset = int(d.get("o", 0))
        if not d.get("qr") and offset:  # held corrected: back to device time
            queue = [
                (None if ts is None else ts + offset, _shifted(ev, "ts_ns", offset))
                for ts, ev in queue
            ]
        return cls(
            d.get("c"),
            queue,
            d.get("f"),
            None if ls is None else (ls[0], ls[1]),
            int(d.get("r", 0)),
            int(d.get("o", 0)),
            d.get("or"),
            list(d.get("l", [])),
        )

    @property
    def held(self) -> int:
        return len(self.queue)

    # --- arrivals ------------------------------------------------------------------------

    def admit(
        self,
        kind: str,
        payload: dict[str, Any],
        tick_ns: int,
        grace_ns: int,
        received_ns: int | None = None,
    ) -> list[Step]:
        """Any message of the machine (``telemetry``, ``event`` or ``state``)."""
        if kind == "telemetry":
            return self.on_frame(payload, tick_ns, grace_ns, received_ns)
        if kind == "event":
            return self.on_event(payload)
        return self.on_state(payload)

    def on_frame(
        self,
        frame: dict[str, Any],
        tick_ns: int,
        grace_ns: int,
        received_ns: int | None = None,
    ) -> list[Step]:
        """A frame arrived: held events before it, the frame, events its clock passed by
        ``grace_ns``, and a tick when the clock crossed a multiple of ``tick_ns``.

        ``received_ns`` (platform time the bridge received a live frame) feeds the clock
        offset estimate for machines that report none."""
        if received_ns is not None and not frame.get("replayed"):
            self._estimate(frame_end_ns(frame) - received_ns)
        frame = self._corrected(frame, "t0_ns")
        t0 = int(frame["t0_ns"])
        if self.last_frame_t0 is None or t0 > self.last_frame_t0:
            self.last_frame_t0 = t0
        before = self.clock_ns
        steps = self._release(lambda ts: ts <= t0)
        end = frame_end_ns(frame)
        self.clock_ns = end if before is None else max(before, end)
        steps.append(("telemetry", frame, self.clock_ns))
        clock = self.clock_ns
        steps += self._release(lambda ts: ts + grace_ns <= clock)
        if before is not None and clock // tick_ns > before // tick_ns:
            steps.append(("tick", None, clock))
        return steps

    def on_event(self, event: dict[str, Any]) -> list[Step]:
        """An event arrived: applied now if the machine's frames are already past it (or
        it has no time), else held until they are."""
        raw = event_ts(event)  # held as sent: corrected when released, by the offset then
        ts = None if raw is None else raw - self.offset_ns
        if not self.queue and (
            ts is None or (self.last_frame_t0 is not None and ts <= self.last_frame_t0)
        ):
            return [("event", self._corrected(event, "ts_ns"), self.now())]
        self._insert(raw, event)
        if len(self.queue) > MAX_HELD:
            _, oldest = self.queue.pop(0)
            return [("event", self._corrected(oldest, "ts_ns"), self.now())]
        return []

    def on_state(self, msg: dict[str, Any]) -> list[Step]:
        """A birth/death message: applied on arrival unless it repeats (or predates) the
        last one applied."""
        status, ts = msg.get("status"), event_ts(msg)
        if "clock_offset_ms" in msg:  # null: the agent knows none (a replay source)
            self.reported = True
            offset_ms = msg["clock_offset_ms"]
            if isinstance(offset_ms, (int, float)) and not isinstance(offset_ms, bool):
                self._correct(round(offset_ms * 1e6))
        elif status == "online" and not self.reported:
            self.reported = False
        if self.last_state is not None:
            last_status, last_ts = self.last_state
            if (status, ts) == (last_status, last_ts) or (
                ts is not None and last_ts is not None and ts < last_ts
            ):
                self.repeats += 1
                return []
        self.last_state = (str(status), ts)
        return [("state", msg, self.now())]

    def release_quiet(self) -> list[Step]:
        """Liveness: the machine went silent (wall clock); release everything held, in
        order, at its clock. Returns nothing when nothing is held."""
        out: list[Step] = [
            ("event", self._corrected(ev, "ts_ns"), self.now()) for _, ev in self.queue
        ]
        self.queue.clear()
        return out

    def now(self) -> int:
        """The machine's clock, or 0 before its first frame (the core then falls back to
        the message's own time)."""
        return self.clock_ns or 0

    # --- clock correction ----------------------------------------------------------------

    def _correct(self, offset_ns: int) -> None:
        if abs(offset_ns - self.offset_ns) > CLOCK_STEP_NS:
            self.offset_ns = offset_ns

    def _estimate(self, lag_ns: int) -> None:
        if self.reported is not False:  # no birth yet, or births that report it
            return
        self.lags = [*self.lags[-(ESTIMATE_WINDOW - 1) :], lag_ns]
        estimate = max(self.lags)
        first = not self.offset_ns and abs(estimate) >= ESTIMATE_MIN_NS
        if len(self.lags) < ESTIMATE_WINDOW // 4 and not first:
            return  # refinements wait for a few samples; a clock minutes off is fixed at once
        if abs(estimate) >= ESTIMATE_MIN_NS or self.offset_ns:
            self._correct(estimate if abs(estimate) >= ESTIMATE_MIN_NS else 0)

    def _corrected(self, payload: dict[str, Any], key: str) -> dict[str, Any]:
        """``payload`` with its device time in platform time (a copy when corrected)."""
        return _shifted(payload, key, -self.offset_ns)

    # --- internals -----------------------------------------------------------------------

    def _insert(self, ts: int | None, event: dict[str, Any]) -> None:
        """Keep the queue in device-time order (stable); a timeless item is a barrier."""
        if ts is None:
            self.queue.append((ts, event))
            return
        i = len(self.queue)
        while i > 0:
            prev = self.queue[i - 1][0]
            if prev is None or prev <= ts:
                break
            i -= 1
        self.queue.insert(i, (ts, event))

    def _release(self, due: Callable[[int], bool]) -> list[Step]:
        out: list[Step] = []
        while self.queue:
            ts, ev = self.queue[0]
            if ts is not None and not due(ts - self.offset_ns):
                break
            self.queue.pop(0)
            out.append(("event", self._corrected(ev, "ts_ns"), self.now()))
        return out
