"""Synthetic sled signals with known answers, and contract frames/events built from them."""

from __future__ import annotations

import itertools
import math
import uuid
from dataclasses import dataclass, field
from typing import Any

import numpy as np

T0 = 1_763_900_000 * 10**9  # 2025-11-23, a Sunday... any valid epoch
RATE = 100.0


@dataclass
class Truth:
    start_s: float
    top_s: float
    end_s: float
    rom_mm: float
    mcv_ms: float
    pv_ms: float


@dataclass
class Signal:
    """Sampled position/force with the true reps."""

    rate: float = RATE
    x: list[float] = field(default_factory=list)
    fl: list[float] = field(default_factory=list)
    fr: list[float] = field(default_factory=list)
    truth: list[Truth] = field(default_factory=list)
    base_mm: float = 100.0

    @property
    def t_s(self) -> float:
        return len(self.x) / self.rate

    def rest(self, seconds: float, at: float | None = None, force: float = 20.0) -> Signal:
        level = self.x[-1] if (at is None and self.x) else (at if at is not None else self.base_mm)
        n = round(seconds * self.rate)
        self.x += [level] * n
        self.fl += [force] * n
        self.fr += [force] * n
        return self

    def move(
        self,
        dist_mm: float,
        seconds: float,
        fl: float = 300.0,
        fr: float = 300.0,
        cosine: bool = False,
    ) -> Signal:
        """Minimum-jerk (or cosine) stroke of ``dist_mm`` (negative = down) over ``seconds``."""
        x0 = self.x[-1] if self.x else self.base_mm
        n = round(seconds * self.rate)
        tt = np.arange(1, n + 1) / n
        shape = (1 - np.cos(np.pi * tt)) / 2 if cosine else tt**3 * (10 - 15 * tt + 6 * tt**2)
        self.x += list(x0 + dist_mm * shape)
        self.fl += [fl] * n
        self.fr += [fr] * n
        return self

    def rep(
        self,
        rom: float = 400.0,
        up_s: float = 1.5,
        down_s: float = 2.0,
        top_pause_s: float = 0.0,
        rest_s: float = 1.0,
        fl: float = 300.0,
        fr: float = 300.0,
        cosine: bool = False,
    ) -> Signal:
        start = self.t_s
        self.move(rom, up_s, fl, fr, cosine)
        top = self.t_s
        if top_pause_s:
            self.rest(top_pause_s, force=(fl + fr) / 2)
        self.move(-rom, down_s, fl * 0.8, fr * 0.8, cosine)
        mcv = rom / 1000 / up_s
        pv = mcv * (math.pi / 2 if cosine else 1.875)
        self.truth.append(Truth(start, top, self.t_s, rom, mcv, pv))
        if rest_s:
            self.rest(rest_s)
        return self

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return np.array(self.x), np.array(self.fl), np.array(self.fr)


def frames(
    sig: Signal,
    session_id: str | None = "s1",
    clinic_id: str = "c1",
    machine_id: str = "m1",
    t0_ns: int = T0,
    size: int = 50,
    splits: list[int] | None = None,
    load_kg: float = 50.0,
    seq0: int = 0,
    noise_mm: float = 0.0,
    seed: int = 1,
    dropouts: tuple[int, int] | None = None,
) -> list[dict[str, Any]]:
    """Contract telemetry frames of ``sig`` (cut every ``size`` or at ``splits``)."""
    x, fl, fr = sig.arrays()
    if noise_mm:
        x = x + np.random.default_rng(seed).normal(0, noise_mm, x.shape)
    xs: list[float | None] = [float(v) for v in x]
    if dropouts:
        for i in range(*dropouts):
            xs[i] = None
    n = len(xs)
    cuts = splits if splits is not None else list(range(size, n, size))
    bounds = [0, *[c for c in cuts if 0 < c < n], n]
    out = []
    period = 1e9 / sig.rate
    for k, (a, b) in enumerate(itertools.pairwise(bounds)):
        out.append(
            {
                "v": 1,
                "clinic_id": clinic_id,
                "machine_id": machine_id,
                "seq": seq0 + k,
                "session_id": session_id,
                "t0_ns": t0_ns + round(a * period),
                "rate_hz": sig.rate,
                "load_kg": load_kg,
                "position_mm": xs[a:b],
                "force_left_n": [float(v) for v in fl[a:b]],
                "force_right_n": [float(v) for v in fr[a:b]],
                "replayed": False,
            }
        )
    return out


def event(etype: str, ts_ns: int, seq: int = 0, **fields: Any) -> dict[str, Any]:
    return {
        "v": 1,
        "clinic_id": fields.pop("clinic_id", "c1"),
        "machine_id": fields.pop("machine_id", "m1"),
        "type": etype,
        "event_id": str(uuid.uuid4()),
        "seq": seq,
        "ts_ns": ts_ns,
        "replayed": False,
        **fields,
    }


def check_in(
    ts_ns: int, session_id: str = "s1", patient_id: str = "p1", **kw: Any
) -> dict[str, Any]:
    return event(
        "session_started",
        ts_ns,
        session_id=session_id,
        patient_id=patient_id,
        prescription_id=kw.pop("prescription_id", None),
        setup={"seat_position": 5.0, "footplate_position": 3.0},
        **kw,
    )


def check_out(ts_ns: int, session_id: str = "s1", **kw: Any) -> dict[str, Any]:
    return event("session_ended", ts_ns, session_id=session_id, **kw)
