"""Signal conditioning: a streaming, zero-phase low-pass filter with velocity and acceleration.

The filter is Savitzky–Golay (a local least-squares polynomial of ``order`` over a
centred window of ``window`` samples): position, velocity and acceleration come from
its smoothing, first- and second-derivative kernels. A centred FIR kernel is zero-phase,
and a local polynomial keeps the shape of a movement's onset (a Gaussian or moving
average would smear a turnaround by tens of ms and inflate short strokes' durations).
Its −3 dB point is about (order + 1)/(3.2·window − 4.6) × rate (Schafer 2011), 9 Hz for
order 3 over 15 samples at 100 Hz: tremor above that is attenuated, movement is not.

Being FIR, a filtered sample depends only on the raw samples within ``half`` of it, so
the output is *identical* however the stream is cut into frames: :class:`Conditioner`
holds back ``half`` samples (the processing delay, 70 ms at 100 Hz) until their
right-hand context has arrived. Units: mm in, mm, m/s and m/s² out.

Dropouts (``None``/NaN positions) are *marked*: each output sample carries a
``missing`` flag, and the filter sees a linear bridge over the gap only so that it can run.
A gap longer than ``max_bridge`` samples is a *break*: everything before it is flushed
(with edge padding) and the conditioner starts afresh after it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
CHANNELS = ("t", "x", "fl", "fr", "load", "rep")  # rep = replayed flag (0/1)


def savgol_kernels(window: int, order: int) -> tuple[F64, F64, F64]:
    """Correlation kernels (smooth, d/di, d²/di²) of a centred Savitzky–Golay filter."""
    half = (window - 1) // 2
    j = np.arange(-half, half + 1, dtype=np.float64)
    vander = np.vander(j, order + 1, increasing=True)  # columns j^0 .. j^order
    coef = np.linalg.pinv(vander)  # row p: least-squares coefficient of j^p
    return coef[0], coef[1], 2.0 * coef[2]


_KERNELS: dict[tuple[int, int, float], tuple[F64, F64, F64]] = {}


def _convolution_kernels(window: int, order: int, dt: float) -> tuple[F64, F64, F64]:
    """np.convolve kernels (position, m/s, m/s²) for a sample period ``dt``; cached (a
    pipeline is built per session and the pseudo-inverse behind them costs ~50 µs)."""
    key = (window, order, dt)
    kernels = _KERNELS.get(key)
    if kernels is None:
        k0, k1, k2 = savgol_kernels(window, order)
        # np.convolve flips its kernel: pass the reversed correlation kernels
        kernels = (
            k0[::-1].copy(),
            (k1 / dt / 1000.0)[::-1].copy(),  # mm/sample -> m/s
            (k2 / dt**2 / 1000.0)[::-1].copy(),
        )
        for k in kernels:
            k.flags.writeable = False
        if len(_KERNELS) < 64:
            _KERNELS[key] = kernels
    return kernels


def window_samples(rate_hz: float, window_s: float, order: int) -> int:
    """Odd window length for ``window_s`` at ``rate_hz`` (at least order + 2)."""
    n = max(order + 2, round(window_s * rate_hz))
    return n if n % 2 else n + 1


def bridge_nans(x: F64) -> F64:
    """Linear interpolation over NaN runs (edges held); input to the filter only."""
    bad = np.isnan(x)
    if not bad.any():
        return x
    good = np.flatnonzero(~bad)
    if good.size == 0:
        return np.zeros_like(x)
    out = x.copy()
    out[bad] = np.interp(np.flatnonzero(bad), good, x[good])
    return out


@dataclass(slots=True)
class Conditioned:
    """A block of finalised samples, all arrays of equal length."""

    t: I64  # ns
    x: F64  # filtered position, mm
    v: F64  # m/s
    a: F64  # m/s²
    fl: F64  # raw force left, N (NaN = missing)
    fr: F64
    load: F64  # kg
    missing: npt.NDArray[np.bool_]  # any channel missing on this sample
    replayed: npt.NDArray[np.bool_]

    def __len__(self) -> int:
        return int(self.t.shape[0])

    @staticmethod
    def empty() -> Conditioned:
        f = np.zeros(0)
        b = np.zeros(0, dtype=bool)
        return Conditioned(np.zeros(0, dtype=np.int64), f, f, f, f, f, f, b, b)

    def slice(self, lo: int, hi: int) -> Conditioned:
        return Conditioned(
            self.t[lo:hi],
            self.x[lo:hi],
            self.v[lo:hi],
            self.a[lo:hi],
            self.fl[lo:hi],
            self.fr[lo:hi],
            self.load[lo:hi],
            self.missing[lo:hi],
            self.replayed[lo:hi],
        )

    @staticmethod
    def concat(parts: list[Conditioned]) -> Conditioned:
        parts = [p for p in parts if len(p)]
        if not parts:
            return Conditioned.empty()
        if len(parts) == 1:
            return parts[0]
        cat = np.concatenate
        return Conditioned(
            cat([p.t for p in parts]),
            cat([p.x for p in parts]),
            cat([p.v for p in parts]),
            cat([p.a for p in parts]),
            cat([p.fl for p in parts]),
            cat([p.fr for p in parts]),
            cat([p.load for p in parts]),
            cat([p.missing for p in parts]),
            cat([p.replayed for p in parts]),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "t": self.t.tolist(),
            **{f: _floats(getattr(self, f)) for f in ("x", "v", "a", "fl", "fr", "load")},
            "missing": self.missing.astype(int).tolist(),
            "replayed": self.replayed.astype(int).tolist(),
        }

    @staticmethod
    def from_json(d: dict[str, Any]) -> Conditioned:
        return Conditioned(
            np.asarray(d["t"], dtype=np.int64),
            _array(d["x"]),
            _array(d["v"]),
            _array(d["a"]),
            _array(d["fl"]),
            _array(d["fr"]),
            _array(d["load"]),
            np.asarray(d["missing"], dtype=bool),
            np.asarray(d["replayed"], dtype=bool),
        )


def _floats(a: F64) -> list[float | None]:
    return [None if math.isnan(v) else float(v) for v in a.tolist()]


def _array(values: list[float | None]) -> F64:
    return np.asarray([math.nan if v is None else v for v in values], dtype=np.float64)


class Conditioner:
    """Streaming conditioner for one machine at one rate. State is JSON-serialisable.

    ``push`` appends raw samples and returns the samples now final; ``flush`` returns
    the rest (edge-padded) and resets. The raw buffer holds ``context`` samples of left
    context plus the not-yet-final tail.
    """

    def __init__(self, rate_hz: float, window_s: float, order: int, max_bridge: int) -> None:
        self.rate_hz = rate_hz
        self.dt = 1.0 / rate_hz
        window = window_samples(rate_hz, window_s, order)
        self.k_x, self.k_v, self.k_a = _convolution_kernels(window, order, self.dt)
        self.half = (window - 1) // 2
        self.context = self.half
        self.max_bridge = max_bridge
        self.raw = np.zeros((len(CHANNELS), 0))  # rows: CHANNELS
        self.done = 0  # index in raw of the first not-yet-final sample
        self.fresh = True  # no left context yet (start of stream or after a break)
        self.base_ns = 0  # raw row 0 holds t - base_ns (exact in float64 for ~100 days)

    # --- state ------------------------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        return {
            "raw": [_floats(row) for row in self.raw],
            "done": self.done,
            "fresh": self.fresh,
            "base_ns": self.base_ns,
        }

    def load_json(self, d: dict[str, Any]) -> None:
        rows = [_array(r) for r in d["raw"]]
        self.raw = np.vstack(rows) if rows and rows[0].size else np.zeros((len(CHANNELS), 0))
        self.done = int(d["done"])
        self.fresh = bool(d["fresh"])
        self.base_ns = int(d["base_ns"])

    @property
    def pending(self) -> int:
        """Samples received but not yet final."""
        return int(self.raw.shape[1]) - self.done

    @property
    def last_t_ns(self) -> int | None:
        return self.base_ns + int(self.raw[0, -1]) if self.raw.shape[1] else None

    # --- feeding ------------------------------------------------------------------------------

    def push(self, t_ns: I64, block: F64) -> list[Conditioned]:
        """Append raw samples (``block`` rows are CHANNELS[1:], NaN = dropout); return final blocks.

        More than one block comes back when the new samples contain a break (a dropout
        longer than ``max_bridge``): the part before it is flushed first.
        """
        out: list[Conditioned] = []
        if self.fresh and t_ns.shape[0]:
            valid = np.flatnonzero(~np.isnan(block[0]))
            if valid.size == 0:
                return out  # nothing to anchor the filter on yet
            t_ns, block = t_ns[valid[0] :], block[:, valid[0] :]
            self.base_ns = int(t_ns[0])
        if self.fresh and block.shape[1]:
            first = np.empty((len(CHANNELS), 1))
            first[0, 0] = t_ns[0] - self.base_ns
            first[1:, 0] = block[:, 0]
            self._start(first)
        # append as a new row block: [t − base; block] (one allocation)
        m, k = self.raw.shape[1], block.shape[1]
        raw = np.empty((len(CHANNELS), m + k))
        raw[:, :m] = self.raw
        np.subtract(t_ns, self.base_ns, out=raw[0, m:], casting="unsafe")
        raw[1:, m:] = block
        self.raw = raw
        # a break: a NaN run in x longer than max_bridge that is followed by valid data
        while True:
            brk = self._find_break()
            if brk is None:
                break
            gap_lo, gap_hi = brk
            tail = self.raw[:, gap_hi:]
            self.raw = self.raw[:, :gap_lo]
            out += self.flush()
            self._start(tail[:, :1])
            self.raw = np.hstack([self.raw, tail])
        part = self._finalise(self._final_limit())
        if part is not None:
            out.append(part)
        return out

    def flush(self) -> list[Conditioned]:
        """Finalise everything (right edge padded by holding the last valid sample)."""
        if self.fresh or self.pending <= 0:
            self._reset()
            return []
        x = self.raw[1]
        valid = np.flatnonzero(~np.isnan(x))
        last_valid = int(valid[-1]) if valid.size else self.done - 1
        self.raw = self.raw[:, : max(last_valid + 1, self.done)]
        pad = np.repeat(self.raw[:, -1:], self.context, axis=1)
        pad[5] = 0.0
        self.raw = np.hstack([self.raw, pad])
        part = self._finalise(self.raw.shape[1] - self.context)
        self._reset()
        return [part] if part is not None else []

    # --- internals --------------------------------------------------------------------------------

    def _reset(self) -> None:
        self.raw = np.zeros((len(CHANNELS), 0))
        self.done = 0
        self.fresh = True

    def _start(self, first: F64) -> None:
        """Left edge: ``context`` copies of the first sample as padding (never output)."""
        pad = np.repeat(first, self.context, axis=1)
        pad[0] = first[0, 0] - self.dt * 1e9 * np.arange(self.context, 0, -1)
        self.raw = pad
        self.done = self.context
        self.fresh = False

    def _find_break(self) -> tuple[int, int] | None:
        x = self.raw[1, self.done :]
        bad = np.isnan(x)
        if not bad.any():
            return None
        edges = np.diff(np.concatenate([[0], bad.astype(np.int8), [0]]))
        starts = np.flatnonzero(edges == 1)
        ends = np.flatnonzero(edges == -1)
        for s, e in zip(starts, ends, strict=True):
            if e - s > self.max_bridge and e < x.shape[0]:
                return self.done + int(s), self.done + int(e)
        return None

    def _final_limit(self) -> int:
        """Samples before this index have their full right-hand context."""
        n = int(self.raw.shape[1])
        x = self.raw[1]
        # a trailing NaN run is not bridged yet: wait until it closes (or breaks)
        k = n
        while k > self.done and math.isnan(x[k - 1]):
            k -= 1
        if k < n:
            if n - k > self.max_bridge:  # already a break whatever follows
                return int(k)
            return int(max(self.done, k - self.context))
        return int(n - self.context)

    def _finalise(self, limit: int) -> Conditioned | None:
        if limit <= self.done:
            return None
        lo = self.done - self.context  # >= 0 by construction
        hi = limit + self.context
        raw = self.raw[:, lo:hi]
        xb = bridge_nans(raw[1])
        # 'same' mode is exact from index half to len - half; only those are kept
        xf = np.convolve(xb, self.k_x, mode="same")
        v = np.convolve(xb, self.k_v, mode="same")
        a = np.convolve(xb, self.k_a, mode="same")
        c = self.context
        sl = slice(c, c + (limit - self.done))
        missing = np.logical_or.reduce(np.isnan(raw[1:4, sl]), axis=0)
        out = Conditioned(
            raw[0, sl].astype(np.int64) + self.base_ns,
            xf[sl],
            v[sl],
            a[sl],
            raw[2, sl],
            raw[3, sl],
            raw[4, sl],
            missing,
            raw[5, sl] > 0.5,
        )
        self.done = limit
        # keep only the left context needed for the next samples
        drop = self.done - self.context
        if drop > 0:
            self.raw = self.raw[:, drop:]
            self.done -= drop
        return out
