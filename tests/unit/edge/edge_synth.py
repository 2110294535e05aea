"""A tiny synthetic sensor source for edge tests: sine strokes, optional sessions/loads.

Not the simulator (edge.simulator): just enough signal to exercise framing and delivery.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Iterator

from edge.samples import Sample, SourceEvent, SourceItem

T0_NS = 1_763_900_000_000_000_000  # 2025-11-23, inside the contract's clock range


class SineSource:
    """``n`` samples of a 2 s stroke at ``rate_hz``; ``live`` paces them in real time."""

    def __init__(
        self,
        n: int,
        rate_hz: float = 100.0,
        t0_ns: int | None = None,
        live: bool = False,
        load_kg: float = 40.0,
        session_every: int = 0,
    ) -> None:
        self.n = n
        self.rate_hz = rate_hz
        self.live = live
        self.t0_ns = t0_ns if t0_ns is not None else (time.time_ns() if live else T0_NS)
        self.load_kg = load_kg
        self.session_every = session_every
        self._closed = threading.Event()

    def items(self) -> Iterator[SourceItem]:
        period = 1e9 / self.rate_hz
        start = time.monotonic()
        for i in range(self.n):
            if self._closed.is_set():
                return
            if self.live:
                delay = start + i / self.rate_hz - time.monotonic()
                if delay > 0 and self._closed.wait(delay):
                    return
            t = self.t0_ns + round(i * period)
            if self.session_every and i % self.session_every == 0:
                k = i // self.session_every
                if k:
                    yield SourceEvent(t, "session_ended", {})
                yield SourceEvent(
                    t, "session_started", {"patient_id": f"p-{k}", "session_id": f"s-{k}"}
                )
            x = 200.0 + 180.0 * math.sin(2 * math.pi * i / (2 * self.rate_hz))
            yield Sample(t, round(x, 2), round(300 + x / 4, 1), round(290 + x / 4, 1), self.load_kg)

    def close(self) -> None:
        self._closed.set()
