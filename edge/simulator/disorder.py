"""Realistic fleet disorder: device clocks, network delays, outages, offline machines.

A real fleet's messages do not arrive in one tidy order. These are the per-machine
draws behind the disorder knobs of :class:`edge.simulator.fleet.FleetConfig`:

- **Device clock** (:class:`DeviceClock`): the sled stamps samples with its own clock,
  ``device = true + offset + drift × (true − ref)``. Samples are taken by the device's
  own oscillator, so they sit on an exact grid of *device* time at the nominal rate;
  true time follows from the inverse. The agent may or may not know the offset and
  report it (state ``clock_offset_ms``).
- **Network delay** (``delay_s``): the machine's data reaches the broker this long after
  it happened (a slow uplink, a busy gateway): it runs minutes behind the others.
- **Reconnect backlogs** (``outages``): the connection drops for minutes; what happened
  meanwhile arrives in one burst when it comes back.
- **Offline for days** (``reconnect_at_ns``): the machine's uplink went down
  ``offline_days`` before ``reconnect_at_ns`` (during the fleet window's last day) and
  stays down from the start of the run; everything it recorded since sits in its outbox
  and is replayed (marked ``replayed``) when it reconnects, while the others are live.
  It has no sessions before its outage began (those were delivered before the run).

Everything is drawn from ``numpy.random.default_rng([seed, 7, machine_index])``:
deterministic per seed, independent of the other knobs' draws.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

NS_PER_S = 1_000_000_000
HOUR_NS = 3600 * NS_PER_S
DAY_NS = 24 * HOUR_NS


@dataclass(frozen=True, slots=True)
class DeviceClock:
    """A device clock: ``offset_ms`` ahead of true time at ``ref_ns``, gaining
    ``drift_ppm`` µs per second after it. ``reported``: the agent reports the offset
    (state ``clock_offset_ms``); otherwise the platform sees only device times."""

    offset_ms: float = 0.0
    drift_ppm: float = 0.0
    reported: bool = True
    ref_ns: int = 0

    @property
    def exact(self) -> bool:
        return self.offset_ms == 0.0 and self.drift_ppm == 0.0

    def device_ns(self, true_ns: int) -> int:
        if self.exact:
            return true_ns
        drift = round(self.drift_ppm * 1e-6 * (true_ns - self.ref_ns)) if self.drift_ppm else 0
        return true_ns + round(self.offset_ms * 1e6) + drift

    def true_ns(self, device_ns: int) -> int:
        if self.exact:
            return device_ns
        x = device_ns - self.ref_ns - round(self.offset_ms * 1e6)  # = (true - ref)(1 + d)
        if not self.drift_ppm:
            return self.ref_ns + x
        d = self.drift_ppm * 1e-6
        return self.ref_ns + x - round(x * d / (1.0 + d))

    def offset_at_ms(self, true_ns: int) -> float:
        """Device minus true time at ``true_ns``, in ms (what a perfect estimate reports)."""
        return (self.device_ns(true_ns) - true_ns) / 1e6


@dataclass(frozen=True, slots=True)
class Delivery:
    """When a machine's data reaches the broker, in true time (see module docstring)."""

    delay_ns: int = 0
    outages: tuple[tuple[int, int], ...] = ()
    """[start, end) true-time spans without a connection: data is held until ``end``."""
    reconnect_at_ns: int | None = None
    """Offline machine: nothing is delivered before this instant, then the outbox replays."""
    offline_days: float = 0.0

    @property
    def offline_since_ns(self) -> int | None:
        if self.reconnect_at_ns is None:
            return None
        return self.reconnect_at_ns - round(self.offline_days * DAY_NS)

    def due_ns(self, true_ns: int) -> int:
        """The true instant an item taken at ``true_ns`` can reach the broker."""
        due = true_ns + self.delay_ns
        for start, end in self.outages:
            if start <= due < end:
                due = end
        return due

    def backlog(self, true_ns: int) -> bool:
        """Taken while the machine was offline for days: replayed from the outbox."""
        return self.reconnect_at_ns is not None and true_ns < self.reconnect_at_ns


@dataclass(frozen=True, slots=True)
class MachineDisorder:
    rate_hz: float
    frame_samples: int | None
    clock: DeviceClock
    delivery: Delivery = field(default_factory=Delivery)


@dataclass(frozen=True, slots=True)
class DisorderKnobs:
    """The disorder part of a ``FleetConfig`` (see its field docs)."""

    rate_hz: float
    rates_hz: tuple[float, ...]
    frame_sizes: tuple[int, ...]
    clock_offset_max_h: float
    clock_drift_max_ppm: float
    clock_offset_reported: float
    clocks: tuple[tuple[int, DeviceClock], ...]
    network_delay_max_s: float
    reconnect_prob: float
    reconnect_backlog_s: tuple[float, float]
    offline_fraction: float
    offline_days: tuple[float, float]
    offline_machines: tuple[int, ...]


def draw_machine(
    knobs: DisorderKnobs, seed: int, index: int, machines: int, window_ns: tuple[int, int]
) -> MachineDisorder:
    """Machine ``index``'s rate, frame size, clock and delivery (without outages: those
    follow its sessions, :func:`with_outages`).

    ``window_ns``: the fleet's true-time window [start, end); an offline machine reconnects
    during its last day.
    """
    rng = np.random.default_rng([seed, 7, index])
    rate = knobs.rates_hz[index % len(knobs.rates_hz)] if knobs.rates_hz else knobs.rate_hz
    frame = knobs.frame_sizes[index % len(knobs.frame_sizes)] if knobs.frame_sizes else None
    offset_ms = float(rng.uniform(-1.0, 1.0)) * knobs.clock_offset_max_h * 3_600_000.0
    drift = float(rng.uniform(-1.0, 1.0)) * knobs.clock_drift_max_ppm
    reported = bool(rng.random() < knobs.clock_offset_reported)
    clock = DeviceClock(round(offset_ms, 3), round(drift, 3), reported, window_ns[0])
    for i, explicit in knobs.clocks:
        if i == index:
            clock = DeviceClock(
                explicit.offset_ms, explicit.drift_ppm, explicit.reported, window_ns[0]
            )
    delay_ns = round(float(rng.uniform(0.0, knobs.network_delay_max_s)) * NS_PER_S)
    offline = index in knobs.offline_machines or index in _offline_draw(knobs, seed, machines)
    reconnect_at, days = None, 0.0
    if offline:
        days = float(rng.uniform(*knobs.offline_days))
        last_day = max(window_ns[0], window_ns[1] - DAY_NS)
        reconnect_at = last_day + round(float(rng.uniform(0.25, 0.75)) * (window_ns[1] - last_day))
    delivery = Delivery(delay_ns, (), reconnect_at, round(days, 3))
    return MachineDisorder(rate, frame, clock, delivery)


def with_outages(
    disorder: MachineDisorder,
    knobs: DisorderKnobs,
    seed: int,
    index: int,
    sessions_ns: list[tuple[int, int]],
) -> MachineDisorder:
    """Reconnect backlogs: with ``reconnect_prob`` per session, the connection drops at a
    random point of it for ``reconnect_backlog_s`` (true-time [start, end) spans)."""
    if knobs.reconnect_prob <= 0.0:
        return disorder
    rng = np.random.default_rng([seed, 9, index])
    outages: list[tuple[int, int]] = []
    lo, hi = knobs.reconnect_backlog_s
    for start, end in sessions_ns:
        if rng.random() < knobs.reconnect_prob:
            at = start + round(float(rng.uniform(0.2, 0.8)) * (end - start))
            outages.append((at, at + round(float(rng.uniform(lo, hi)) * NS_PER_S)))
    d = disorder.delivery
    delivery = Delivery(d.delay_ns, tuple(outages), d.reconnect_at_ns, d.offline_days)
    return MachineDisorder(disorder.rate_hz, disorder.frame_samples, disorder.clock, delivery)


def _offline_draw(knobs: DisorderKnobs, seed: int, machines: int) -> set[int]:
    """``round(offline_fraction × machines)`` machine indices, the same for every machine."""
    n = round(knobs.offline_fraction * machines)
    if n <= 0:
        return set()
    rng = np.random.default_rng([seed, 8])
    return {int(i) for i in rng.choice(machines, size=min(n, machines), replace=False)}
