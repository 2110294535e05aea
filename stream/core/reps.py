"""Repetition segmentation across frame boundaries, with explicit carried state.

Fed blocks of final samples from :class:`stream.core.signal.Conditioner`, a small state
machine finds each repetition's three boundaries (DOMAIN.md, OpenBarbell logic):

* **detection** of a concentric phase: v > ``detect_velocity`` for ≥ ``detect_min``
  *and* the sled has risen ``min_excursion`` above the onset (tremor/jitter of a few mm
  never detects);
* **onset** (bottom turnaround): the last sample at or before the detection with v ≤
  ``turn_velocity`` (0.01 m/s: above filtered sensor noise, ~10 ms from the true turnaround);
* **top** (top turnaround): the first sample with v ≤ 0 after the last sample with
  v > ``detect_velocity`` before the reversal. The reversal is confirmed by v <
  −``detect_velocity`` for ≥ ``detect_min`` with the sled ``min_excursion`` below its
  top, so a pause or hesitation at the top never splits a rep;
* **end** (next bottom turnaround): the first sample with v ≥ 0 after the last fast
  eccentric sample, found when the next concentric is detected or when the sled has
  rested ``eccentric_settle`` at the bottom.

A concentric detection sooner than ``min_rep_gap`` after the top continues the same rep.
The buffer holds only the samples of the rep in progress (bounded by ``max_rep``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from stream.core.signal import Conditioned

Phase = Literal["idle", "con", "ecc"]


@dataclass(frozen=True, slots=True)
class SegmentParams:
    rate_hz: float
    detect_velocity_ms: float
    detect_samples: int
    min_excursion_mm: float
    min_rep_gap_s: float
    settle_s: float
    max_rep_s: float
    turn_velocity_ms: float = 0.01  # |v| at or below this counts as stopped at a turnaround


@dataclass(slots=True)
class RepSegment:
    """One repetition's samples: ``data[0:top]`` concentric, ``data[top:end+1]`` eccentric."""

    data: Conditioned
    top: int
    end: int
    complete: bool  # False when cut by a break, a session end or the max duration


def _runs(mask: npt.NDArray[np.bool_]) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.intp]]:
    """Start and end (exclusive) indices of the True runs of ``mask``."""
    padded = np.zeros(mask.shape[0] + 2, dtype=bool)
    padded[1:-1] = mask
    changes = (padded[1:] != padded[:-1]).nonzero()[0]  # alternately a start and an end
    return changes[0::2], changes[1::2]


class Segmenter:
    def __init__(self, p: SegmentParams) -> None:
        self.p = p
        self.phase: Phase = "idle"
        self.buf = Conditioned.empty()
        self.scan = 0  # samples of buf before this were already searched for the next event
        self.top = 0  # index of the top turnaround in buf (phase ecc)
        self.rev = 0  # index where the reversal was confirmed (phase ecc)
        # runs already under way when a block arrives are re-examined from this far back
        self._lookback = max(p.detect_samples, int(2 * p.rate_hz))

    # --- state --------------------------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        return {
            "phase": self.phase,
            "buf": self.buf.to_json(),
            "scan": int(self.scan),
            "top": int(self.top),
            "rev": int(self.rev),
        }

    def load_json(self, d: dict[str, Any]) -> None:
        self.phase = d["phase"]
        self.buf = Conditioned.from_json(d["buf"])
        self.scan = int(d["scan"])
        self.top = int(d["top"])
        self.rev = int(d["rev"])

    @property
    def in_rep(self) -> bool:
        return self.phase != "idle"

    # --- feeding ------------------------------------------------------------------------------

    def feed(self, block: Conditioned) -> list[RepSegment]:
        self.buf = Conditioned.concat([self.buf, block])
        out: list[RepSegment] = []
        while True:
            if self.phase == "idle":
                if not self._idle():
                    break
            elif self.phase == "con":
                if not self._con(out):
                    break
            elif not self._ecc(out):
                break
        return out

    def flush(self) -> list[RepSegment]:
        """Close the rep in progress (break, session end); the buffer is emptied."""
        out: list[RepSegment] = []
        n = len(self.buf)
        if self.phase == "con" and n > 1:
            top = self._top_after(self._last_fast_up(n))
            out.append(RepSegment(self.buf, top, n - 1, complete=False))
        elif self.phase == "ecc" and n > 1:
            end = self._bottom(n)
            out.append(RepSegment(self.buf.slice(0, end + 1), self.top, end, complete=False))
        self.phase = "idle"
        self.buf = Conditioned.empty()
        self.scan = self.top = self.rev = 0
        return out

    # --- phases -------------------------------------------------------------------------------

    def _detect(self, lo: int, floor: int) -> tuple[int, int] | None:
        """First concentric detection at or after ``lo``: (onset, confirm index)."""
        b, p = self.buf, self.p
        v, x = b.v, b.x
        starts, ends = _runs(v[lo:] > p.detect_velocity_ms)
        if starts.size == 0:
            return None
        for s, e in zip((starts + lo).tolist(), (ends + lo).tolist(), strict=True):
            if e - s < p.detect_samples:
                continue
            # onset: the last sample at or before s with v <= turn, not before floor
            stopped = (v[floor : s + 1] <= p.turn_velocity_ms).nonzero()[0]
            onset = floor + int(stopped[-1]) if stopped.size else floor
            # first sample of the run that completes detection and the excursion
            first = s + p.detect_samples - 1
            rise = x[first:e] - x[onset]
            ok = (rise >= p.min_excursion_mm).nonzero()[0]
            if ok.size:
                return onset, first + int(ok[0])
        return None

    def _idle(self) -> bool:
        n = len(self.buf)
        lo = max(0, self.scan - self._lookback)
        found = self._detect(lo, 0)
        if found is None:
            # keep only what a later onset search can need: from the last v <= 0
            le0 = (
                self.buf.v[: max(1, n - self.p.detect_samples)] <= self.p.turn_velocity_ms
            ).nonzero()[0]
            keep = int(le0[-1]) if le0.size else 0
            max_keep = int(self.p.max_rep_s * self.p.rate_hz)
            keep = max(keep, n - max_keep)
            self.buf = self.buf.slice(keep, n)
            self.scan = len(self.buf)
            return False
        onset, _ = found
        self.buf = self.buf.slice(onset, n)
        self.phase = "con"
        self.scan = 0
        return True

    def _con(self, out: list[RepSegment]) -> bool:
        b, p = self.buf, self.p
        n = len(b)
        lo = max(0, self.scan - self._lookback)
        starts, ends = _runs(b.v[lo:] < -p.detect_velocity_ms)
        xmax: npt.NDArray[np.float64] | None = None
        for s, e in zip((starts + lo).tolist(), (ends + lo).tolist(), strict=True):
            if e - s < p.detect_samples:
                continue
            first = s + p.detect_samples - 1
            if xmax is None:
                xmax = np.maximum.accumulate(b.x)
            ok = (b.x[first:e] <= xmax[first:e] - p.min_excursion_mm).nonzero()[0]
            if ok.size:
                self.rev = int(first) + int(ok[0])
                self.top = self._top_after(self._last_fast_up(s))
                self.phase = "ecc"
                self.scan = self.rev
                return True
        if n > p.max_rep_s * p.rate_hz:  # held at the top far too long: close it here
            out += self.flush()
            return False
        self.scan = n
        return False

    def _ecc(self, out: list[RepSegment]) -> bool:
        b, p = self.buf, self.p
        n = len(b)
        lo = max(self.rev, self.scan - self._lookback)
        found = self._detect(lo, self.top)
        if found is not None:
            onset, confirm = found
            if (b.t[confirm] - b.t[self.top]) < p.min_rep_gap_s * 1e9:
                self.phase = "con"  # a dip too short to be a rep boundary: same rep
                self.scan = confirm + 1
                return True
            end = min(self._bottom(onset), onset)
            out.append(RepSegment(b.slice(0, end + 1), self.top, end, complete=True))
            self.buf = b.slice(onset, n)
            self.phase = "con"
            self.scan = 0
            return True
        end = self._bottom(n)
        if end < n - 1 and (b.t[n - 1] - b.t[end]) >= p.settle_s * 1e9:
            out.append(RepSegment(b.slice(0, end + 1), self.top, end, complete=True))
            self.buf = b.slice(end, n)
            self.phase = "idle"
            self.scan = 0
            return True
        if n > 2 * p.max_rep_s * p.rate_hz:
            out += self.flush()
            return False
        self.scan = n
        return False

    # --- turnarounds -----------------------------------------------------------------------------

    def _last_fast_up(self, before: int) -> int:
        idx = (self.buf.v[:before] > self.p.detect_velocity_ms).nonzero()[0]
        return int(idx[-1]) if idx.size else 0

    def _top_after(self, j: int) -> int:
        idx = (self.buf.v[j:] <= self.p.turn_velocity_ms).nonzero()[0]
        return j + int(idx[0]) if idx.size else len(self.buf) - 1

    def _bottom(self, before: int) -> int:
        """Bottom turnaround: first v ≥ 0 after the last fast eccentric sample before ``before``."""
        v = self.buf.v
        idx = (v[self.top : before] < -self.p.detect_velocity_ms).nonzero()[0]
        k = self.top + (int(idx[-1]) if idx.size else 0)
        up = (v[k:before] >= -self.p.turn_velocity_ms).nonzero()[0]
        return k + int(up[0]) if up.size else max(k, before - 1)
