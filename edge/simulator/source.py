"""The ``SensorSource`` of one simulated machine: its timeline rendered to samples.

Samples are stamped with the machine's *device* clock on an exact grid at its rate
(``t0_ns + index / rate``); events come before the sample they precede. A live source is
paced to the wall clock in true time; a backfill source in a lockstep fleet waits for the
fleet (``edge.simulator.lockstep``).
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable, Generator, Iterator
from fractions import Fraction
from typing import TYPE_CHECKING, Any

import numpy as np

from edge.samples import Sample, SourceEvent, SourceItem
from edge.simulator.physics import Measured, Segment, perturb, render
from edge.simulator.session import Block

if TYPE_CHECKING:
    from edge.simulator.fleet import MachineSim

PACE_SLACK_S = 0.03
"""A paced source sleeps until a sample is due plus this, then yields what is due (batching)."""


def index_to_ns(t0_ns: int, rate_hz: float) -> Callable[[int], int]:
    frac = Fraction(rate_hz).limit_denominator(1000)
    num, den = frac.numerator, frac.denominator
    return lambda i: t0_ns + i * 1_000_000_000 * den // num


class MachineSource:
    """``edge.samples.SensorSource`` over one simulated machine.

    Besides ``rate_hz``, ``live``, ``items()`` and ``close()`` it tells the fleet runner
    what a real device would: ``frame_samples`` (its agent's frame size, None: the
    default), ``reported_clock_offset_ms`` (the offset its agent reports, None: unknown)
    and ``connect_gate`` (an offline machine's uplink: the agent connects once it is set,
    None: connected from the start).
    """

    def __init__(self, sim: MachineSim) -> None:
        self.sim = sim
        self.rate_hz = sim.rate_hz
        self.live = sim.live
        self.clinic_id = sim.clinic_id
        self.machine_id = sim.machine_id
        self.frame_samples = sim.frame_samples
        clock = sim.clock
        self.reported_clock_offset_ms: float | None = (
            clock.offset_at_ms(sim.delivery.reconnect_at_ns or clock.ref_ns)
            if clock.reported and not clock.exact
            else (0.0 if clock.reported and sim.lockstep is not None else None)
        )
        self.connect_gate: threading.Event | None = (
            threading.Event() if sim.delivery.reconnect_at_ns is not None else None
        )
        self._closed = threading.Event()
        self._to_ns = index_to_ns(sim.t0_ns, sim.rate_hz)
        self._load = 0.0
        self._lockstep = sim.lockstep
        self._member = sim.lockstep.join() if sim.lockstep is not None else 0

    def close(self) -> None:
        self._closed.set()
        self._leave()

    def _leave(self) -> None:
        if self._lockstep is not None:
            self._lockstep.leave(self._member)
        if self.connect_gate is not None:
            self.connect_gate.set()

    def items(self) -> Iterator[SourceItem]:
        try:
            for chunk in self._chunks():
                if self.sim.live:
                    yield from self._paced(chunk)
                else:
                    if self._closed.is_set() or not self._wait_due(chunk):
                        return
                    yield from chunk
        finally:
            self._leave()

    def due_ns(self, item: SourceItem) -> int:
        """The true instant ``item`` can reach the broker (``Delivery.due_ns``)."""
        return self.sim.delivery.due_ns(self.sim.clock.true_ns(item.t_ns))

    def _wait_due(self, chunk: list[SourceItem]) -> bool:
        """Lockstep: wait until the chunk is due; an offline machine's backlog is stored
        at once and its uplink opens when the fleet reaches its reconnect time."""
        if self._lockstep is None or not chunk:
            return True
        delivery, gate = self.sim.delivery, self.connect_gate
        true_ns = self.sim.clock.true_ns(chunk[0].t_ns)
        if gate is not None and not gate.is_set():
            reconnect = delivery.reconnect_at_ns
            assert reconnect is not None
            if true_ns < reconnect:
                self._lockstep.announce(self._member, reconnect)
                return True
            if not self._lockstep.advance(self._member, reconnect, self._closed):
                return False
            gate.set()
        return self._lockstep.advance(self._member, delivery.due_ns(true_ns), self._closed)

    def _chunks(self) -> Iterator[list[SourceItem]]:
        """The timeline in chunks of up to ``CHUNK`` items (events before their sample)."""
        sim = self.sim
        last = 0
        for script in sim.scripts():
            if sim.fill_idle and script.start_index > last:
                idle = Block(last, self._load, 0.0, [Segment("idle", script.start_index - last)])
                if not (yield from self._block(idle, [], script.session_id + "-idle")):
                    return
            for blk in script.blocks:
                if not (yield from self._block(blk, script.events, script.session_id)):
                    return
            last = script.end_index
        if sim.fill_idle and sim.end_index is not None and sim.end_index > last:
            idle = Block(last, self._load, 0.0, [Segment("idle", sim.end_index - last)])
            yield from self._block(idle, [], "tail-idle")

    def _block(
        self, blk: Block, events: list[Any], salt: str
    ) -> Generator[list[SourceItem], None, bool]:
        """One block's items in chunks; returns False when closed or past the end."""
        sim = self.sim
        sig = render(blk.segments, blk.load_kg, blk.asi_pct, sim.rate_hz, sim.mech)
        rng = np.random.default_rng([sim.index, blk.start, *salt.encode()[:32]])
        m = perturb(
            sig, blk.segments, blk.load_kg, sim.rate_hz, sim.mech, blk.effects, blk.dropouts, rng
        )
        self._load = blk.load_kg
        n = len(m.position_mm)
        stop = n if sim.end_index is None else max(0, min(n, sim.end_index - blk.start))
        times = self._times(blk.start, stop)
        by_offset: dict[int, list[Any]] = {}
        for e in events:
            if 0 <= e.index - blk.start < stop:
                by_offset.setdefault(e.index - blk.start, []).append(e)
        bounds = [*sorted({0, *by_offset}), stop]
        for a, b in itertools.pairwise(bounds):
            head: list[SourceItem] = [
                SourceEvent(self._to_ns(ev.index), ev.type, dict(ev.fields))
                for ev in by_offset.get(a, [])
            ]
            for c in range(a, b, CHUNK):
                d = min(b, c + CHUNK)
                if self._closed.is_set():
                    return False
                yield head + _samples(times, m, blk.load_kg, c, d)
                head = []
        return stop == n and not self._closed.is_set()

    def _times(self, start: int, stop: int) -> list[int]:
        period = 1e9 / self.rate_hz
        if period.is_integer():
            t0 = self._to_ns(start)
            return list(range(t0, t0 + stop * int(period), int(period)))
        return [self._to_ns(start + j) for j in range(stop)]

    def _paced(self, chunk: list[SourceItem]) -> Iterator[SourceItem]:
        closed, true_ns = self._closed, self.sim.clock.true_ns
        for item in chunk:
            now, due = time.time_ns(), true_ns(item.t_ns)
            if due > now and closed.wait((due - now) / 1e9 + PACE_SLACK_S):
                return
            yield item


CHUNK = 1000
"""Samples yielded between checks of ``close()`` in backfill."""

_new = object.__new__
_set_t = vars(Sample)["t_ns"].__set__
_set_p = vars(Sample)["position_mm"].__set__
_set_l = vars(Sample)["force_left_n"].__set__
_set_r = vars(Sample)["force_right_n"].__set__
_set_k = vars(Sample)["load_kg"].__set__


def _sample(t: int, pos: float | None, fl: float | None, fr: float | None, load: float) -> Sample:
    """``Sample(t, pos, fl, fr, load)`` without the frozen dataclass's slow ``__init__``
    (3× faster: slot descriptors set directly; the object is the same)."""
    s: Sample = _new(Sample)
    _set_t(s, t)
    _set_p(s, pos)
    _set_l(s, fl)
    _set_r(s, fr)
    _set_k(s, load)
    return s


def _samples(times: list[int], m: Measured, load: float, a: int, b: int) -> list[SourceItem]:
    new, st, sp, sl, sr, sk = _new, _set_t, _set_p, _set_l, _set_r, _set_k
    out: list[SourceItem] = []
    append = out.append
    for t, pos, fl, fr in zip(
        times[a:b], m.position_mm[a:b], m.force_left_n[a:b], m.force_right_n[a:b], strict=True
    ):
        s = new(Sample)
        st(s, t)
        sp(s, pos)
        sl(s, fl)
        sr(s, fr)
        sk(s, load)
        append(s)
    return out
