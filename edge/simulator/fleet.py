"""A simulated fleet: clinics × machines × patients, their schedule and a source per machine.

:func:`build_fleet` draws patients, prescriptions and each machine's disorder (rate, frame
size, device clock, delivery; ``edge.simulator.disorder``), schedules sessions
(``edge.simulator.schedule``) and plans every session (truth included) without rendering
samples. ``fleet.machines[i].source()`` then yields that machine's samples and events (an
``edge.samples.SensorSource``), stamped with the machine's *device* clock.

**Backfill** (``mode="backfill"``): ``days`` days from ``start_date``, clinic hours in each
clinic's local time (``time_zones``), on ``clinic_weekdays``. Samples are emitted only
around sessions (``LEAD_S`` either side), as fast as the consumer pulls (``live = False``);
with ``lockstep_s`` the machines' sources advance together in true time (plus each one's
network delay), see ``edge.simulator.lockstep``.

**Live** (``mode="live"``): time starts at the next whole second; each machine runs
sessions back to back with ``LIVE_GAP_RANGE_S`` idle between them (idle samples are
emitted), patients in turn, paced to the wall clock (``live = True``), until
``duration_s`` (or forever). Sessions are planned lazily.

Disorder knobs (all off by default; the demo's and the tests' fleets turn them on): see
the field docs of :class:`FleetConfig`.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from edge.simulator.disorder import (
    DAY_NS,
    Delivery,
    DeviceClock,
    DisorderKnobs,
    draw_machine,
    with_outages,
)
from edge.simulator.lockstep import Lockstep
from edge.simulator.patients import PatientProfile, draw_patient, pseudonym
from edge.simulator.physics import Mechanics
from edge.simulator.schedule import MON_FRI, backfill_scripts, live_scripts
from edge.simulator.session import SessionScript
from edge.simulator.source import MachineSource, index_to_ns

if TYPE_CHECKING:
    from edge.agent_settings import EdgeSettings

DEFAULT_START = dt.date(2026, 10, 5)  # a Monday


@dataclass(frozen=True, slots=True)
class FleetConfig:
    clinics: int = 3
    machines_per_clinic: int = 3
    patients_per_machine: int = 5
    days: int = 28
    seed: int = 1
    start_date: dt.date = DEFAULT_START
    rate_hz: float = 100.0
    mode: Literal["backfill", "live"] = "backfill"
    duration_s: float | None = None  # live only
    incline_deg: float = 45.0
    id_prefix: str = ""  # prepended to clinic and machine ids (test isolation)
    sets: int = 3
    reps: int = 10
    max_velocity_loss_pct: float = 20.0
    start_mcv_ms: float = 0.55
    """Prescribed load: where the patient's first rep moves at about this MCV at week 0."""
    # --- calendars -------------------------------------------------------------------------
    time_zones: tuple[str, ...] = ("UTC",)
    """IANA zone of clinic c: ``time_zones[c % len]``. Clinic hours, weekdays and the
    truth's days and ISO weeks are local to it."""
    clinic_weekdays: tuple[int, ...] = MON_FRI
    """Local weekdays the clinics open (0 = Monday); patients train on 2–3 of them."""
    late_session_prob: float = 0.0
    """Chance a backfill session is moved to late evening (23:55–23:59 local): it crosses
    local midnight."""
    # --- machines ----------------------------------------------------------------------------
    rates_hz: tuple[float, ...] = ()
    """Sample rate of machine i: ``rates_hz[i % len]`` (empty: ``rate_hz`` for all)."""
    frame_sizes: tuple[int, ...] = ()
    """Samples per frame of machine i's edge agent: ``frame_sizes[i % len]`` (empty: the
    agent's ``SLEDFLEET_EDGE_FRAME_SAMPLES``)."""
    # --- device clocks ---------------------------------------------------------------------
    clock_offset_max_h: float = 0.0
    """Each device clock is off by a uniform draw in ± this many hours."""
    clock_drift_max_ppm: float = 0.0
    """... and drifts by a uniform draw in ± this many ppm (µs per s)."""
    clock_offset_reported: float = 1.0
    """Fraction of agents that know and report their offset (state ``clock_offset_ms``)."""
    clocks: tuple[tuple[int, DeviceClock], ...] = ()
    """Explicit clocks by machine index (overrides the draws), e.g. one device 4 h ahead
    that does not report it: ``((3, DeviceClock(4 * 3_600_000.0, reported=False)),)``."""
    # --- delivery ----------------------------------------------------------------------------
    lockstep_s: float | None = None
    """Backfill: the machines' sources advance together in true time, none more than this
    many seconds ahead of the slowest (None: each as fast as its agent drains)."""
    network_delay_max_s: float = 0.0
    """Each machine's data arrives a uniform draw in [0, this] seconds late (lockstep)."""
    reconnect_prob: float = 0.0
    """Chance per session that the connection drops mid-session (lockstep): the data
    taken meanwhile arrives as a burst when it returns, after ``reconnect_backlog_s``."""
    reconnect_backlog_s: tuple[float, float] = (60.0, 600.0)
    offline_fraction: float = 0.0
    """Fraction of machines offline for days: each reconnects during the last day and
    replays its outbox (``offline_days`` old) while the others are live."""
    offline_days: tuple[float, float] = (1.0, 3.0)
    offline_machines: tuple[int, ...] = ()
    """Machine indices offline for days, besides the ``offline_fraction`` draw."""

    def knobs(self) -> DisorderKnobs:
        return DisorderKnobs(
            rate_hz=self.rate_hz,
            rates_hz=self.rates_hz,
            frame_sizes=self.frame_sizes,
            clock_offset_max_h=self.clock_offset_max_h,
            clock_drift_max_ppm=self.clock_drift_max_ppm,
            clock_offset_reported=self.clock_offset_reported,
            clocks=self.clocks,
            network_delay_max_s=self.network_delay_max_s,
            reconnect_prob=self.reconnect_prob,
            reconnect_backlog_s=self.reconnect_backlog_s,
            offline_fraction=self.offline_fraction,
            offline_days=self.offline_days,
            offline_machines=self.offline_machines,
        )

    def time_zone(self, clinic: int) -> str:
        return self.time_zones[clinic % len(self.time_zones)] if self.time_zones else "UTC"


@dataclass(slots=True)
class MachineSim:
    clinic_id: str
    machine_id: str
    index: int
    t0_ns: int
    """Device time of sample-grid index 0."""
    rate_hz: float
    mech: Mechanics
    scripts: Callable[[], Iterator[SessionScript]]
    live: bool = False
    fill_idle: bool = False
    end_index: int | None = None
    time_zone: str = "UTC"
    clock: DeviceClock = field(default_factory=DeviceClock)
    delivery: Delivery = field(default_factory=Delivery)
    frame_samples: int | None = None
    lockstep: Lockstep | None = None

    def source(self) -> MachineSource:
        """A fresh SensorSource over this machine's timeline (same items every time)."""
        return MachineSource(self)

    def true_ns(self, index: int) -> int:
        """True time of sample-grid index ``index``."""
        return self.clock.true_ns(index_to_ns(self.t0_ns, self.rate_hz)(index))

    def edge_settings(self, base: EdgeSettings) -> EdgeSettings:
        """``base`` for this machine: its ids and its frame size."""
        from dataclasses import replace

        settings = base.for_machine(self.clinic_id, self.machine_id)
        if self.frame_samples is not None:
            settings = replace(settings, frame_samples=self.frame_samples)
        return settings


@dataclass(slots=True)
class Fleet:
    config: FleetConfig
    machines: list[MachineSim]
    patients: list[PatientProfile]
    prescriptions: list[dict[str, Any]]
    patient_machine: dict[str, str]
    scripts: dict[str, list[SessionScript]] = field(default_factory=dict)  # by machine
    clinic_time_zones: dict[str, str] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def truth(self) -> dict[str, list[dict[str, Any]]]:
        """Ground truth of every planned session (backfill: all of them)."""
        from edge.simulator.truth import ground_truth

        with self._lock:
            return ground_truth(self)

    def write_ground_truth(self, directory: str) -> dict[str, int]:
        from edge.simulator.truth import write_ground_truth

        return write_ground_truth(self.truth(), directory)

    def edge_machines(self, base: EdgeSettings) -> list[tuple[EdgeSettings, MachineSource]]:
        """(settings, source) of every machine, for ``edge.fleet_runner.FleetRunner``."""
        return [(m.edge_settings(base), m.source()) for m in self.machines]


def _utc_midnight_ns(day: dt.date) -> int:
    return int(dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC).timestamp()) * 10**9


def build_fleet(config: FleetConfig) -> Fleet:
    seed = config.seed
    mech = Mechanics(incline_deg=config.incline_deg)
    live = config.mode == "live"
    if live:
        t0_true = (time.time_ns() // 1_000_000_000 + 1) * 1_000_000_000
        start_date = dt.datetime.fromtimestamp(t0_true / 1e9, dt.UTC).date()
    else:
        start_date = config.start_date
        t0_true = _utc_midnight_ns(start_date)
        if (
            any(z != "UTC" for z in config.time_zones)
            or config.clocks
            or (config.clock_offset_max_h)
        ):
            t0_true -= DAY_NS  # room for zones east of UTC and clocks behind
    days = config.days
    end_date = start_date + dt.timedelta(days=days - 1)
    window = (_utc_midnight_ns(start_date), _utc_midnight_ns(end_date) + DAY_NS)
    rx_start = start_date - dt.timedelta(days=start_date.weekday())  # whole first week
    knobs = config.knobs()
    n_machines = config.clinics * config.machines_per_clinic
    lockstep = None
    if config.lockstep_s is not None and not live:
        lockstep = Lockstep(round(config.lockstep_s * 1e9))
    patients: list[PatientProfile] = []
    prescriptions: list[dict[str, Any]] = []
    patient_machine: dict[str, str] = {}
    machines: list[MachineSim] = []
    fleet = Fleet(config, machines, patients, prescriptions, patient_machine)
    mi = 0
    for c in range(config.clinics):
        clinic_id = f"{config.id_prefix}c{c + 1:02d}"
        fleet.clinic_time_zones[clinic_id] = config.time_zone(c)
        for m in range(config.machines_per_clinic):
            machine_id = f"{config.id_prefix}c{c + 1:02d}-m{m + 1:02d}"
            own: list[tuple[PatientProfile, dict[str, Any]]] = []
            for k in range(config.patients_per_machine):
                pidx = mi * 1000 + k
                rng = np.random.default_rng([seed, 1, pidx])
                p = draw_patient(seed, pidx, days, rng)
                spw = int(rng.choice([2, 2, 3]))
                rx = {
                    "v": 1,
                    "kind": "prescription",
                    "prescription_id": pseudonym("rx", seed, pidx),
                    "patient_id": p.patient_id,
                    "clinic_id": clinic_id,
                    "sessions_per_week": spw,
                    "sets": config.sets,
                    "reps": config.reps,
                    "load_kg": p.load_for(config.start_mcv_ms),
                    "max_velocity_loss_pct": config.max_velocity_loss_pct,
                    "start_date": (start_date if live else rx_start).isoformat(),
                    "end_date": None if live else end_date.isoformat(),
                    "seat_position": p.seat_position,
                    "footplate_position": p.footplate_position,
                }
                patients.append(p)
                prescriptions.append(rx)
                patient_machine[p.patient_id] = machine_id
                own.append((p, rx))
            dis = draw_machine(knobs, seed, mi, n_machines, window)
            clock = dis.clock
            sim = MachineSim(
                clinic_id,
                machine_id,
                mi,
                clock.device_ns(t0_true),
                dis.rate_hz,
                mech,
                _no_scripts,
                live,
                time_zone=config.time_zone(c),
                clock=clock,
                delivery=dis.delivery,
                frame_samples=dis.frame_samples,
                lockstep=lockstep,
            )
            if live:
                sim.fill_idle = True
                if config.duration_s is not None:
                    sim.end_index = round(config.duration_s * sim.rate_hz)
                sim.scripts = live_scripts(fleet, sim, own)
            else:
                scripts = list(backfill_scripts(config, sim, own))
                spans = [(sim.true_ns(s.start_index), sim.true_ns(s.end_index)) for s in scripts]
                sim.delivery = with_outages(dis, knobs, seed, mi, spans).delivery
                fleet.scripts[machine_id] = scripts
                sim.scripts = scripts.__iter__
            machines.append(sim)
            mi += 1
    return fleet


def _no_scripts() -> Iterator[SessionScript]:
    return iter(())
