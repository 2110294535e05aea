"""Named fleets with every kind of disorder turned on, for tests, benchmarks and the demo.

:func:`disordered_fleet` is issue 12's "disordered fleet": clinics in three IANA zones
(Berlin, Los Angeles, Sydney) with clinic hours in local time and some late sessions
crossing local midnight; machines at 50, 100 and 200 Hz with different frame sizes,
interleaved and some minutes behind the others; a quarter of them offline for 1–3 days,
replaying their outbox while the rest stream live; one device clock hours ahead (its agent
reports the offset) and one hours behind (its agent does not know it).

The window ends ``age_days`` before ``now`` so that every backlog is within a week of
the wall clock (Kafka retention, the platform's replay bound) and no clinic's day lies in
the future, whatever the hour the run starts.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

from edge.simulator.disorder import DeviceClock
from edge.simulator.fleet import FleetConfig

ZONES = ("Europe/Berlin", "America/Los_Angeles", "Australia/Sydney")
AHEAD_MACHINE = 6
"""Index of the machine whose clock runs hours ahead; its agent reports the offset."""
BEHIND_MACHINE = 1
"""Index of the machine whose clock runs hours behind; its agent does not know it."""
AHEAD = DeviceClock(offset_ms=3 * 3_600_000.0 + 17_000.0, drift_ppm=25.0, reported=True)
BEHIND = DeviceClock(offset_ms=-(4 * 3_600_000.0 + 9_000.0), drift_ppm=-15.0, reported=False)


def window_end(now: dt.datetime, age_days: int = 2) -> dt.date:
    """The last simulated (UTC) day: ``age_days`` before ``now``."""
    return (now.astimezone(dt.UTC) - dt.timedelta(days=age_days)).date()


def disordered_fleet(
    now: dt.datetime | None = None,
    id_prefix: str = "",
    seed: int = 12,
    clinics: int = 3,
    machines_per_clinic: int = 4,
    patients_per_machine: int = 2,
    days: int = 4,
) -> FleetConfig:
    """Issue 12's disordered fleet (module docstring), ``days`` days up to
    :func:`window_end` of ``now`` (default: the wall clock)."""
    end = window_end(now or dt.datetime.now(dt.UTC))
    return FleetConfig(
        clinics=clinics,
        machines_per_clinic=machines_per_clinic,
        patients_per_machine=patients_per_machine,
        days=days,
        seed=seed,
        start_date=end - dt.timedelta(days=days - 1),
        id_prefix=id_prefix,
        sets=2,
        reps=8,
        time_zones=ZONES,
        clinic_weekdays=(0, 1, 2, 3, 4, 5, 6),  # open daily: any run day has sessions
        late_session_prob=0.15,
        rates_hz=(50.0, 100.0, 200.0),
        frame_sizes=(20, 50, 100, 40),
        clock_offset_max_h=0.01,
        clock_drift_max_ppm=20.0,
        clock_offset_reported=1.0,
        clocks=((AHEAD_MACHINE, AHEAD), (BEHIND_MACHINE, BEHIND)),
        lockstep_s=20.0,
        network_delay_max_s=300.0,
        reconnect_prob=0.2,
        reconnect_backlog_s=(60.0, 300.0),
        offline_fraction=0.25,
        offline_days=(1.0, 3.0),
    )


def demo_disorder(config: FleetConfig) -> FleetConfig:
    """The demo's default fleet: its clinics in three zones, mixed rates and frame sizes,
    small device clock offsets (reported) and drift, minutes of network delay."""
    return replace(
        config,
        time_zones=ZONES,
        rates_hz=(100.0, 50.0, 200.0),
        frame_sizes=(50, 20, 100),
        clock_offset_max_h=0.05,
        clock_drift_max_ppm=20.0,
        clock_offset_reported=1.0,
        lockstep_s=60.0 if config.mode == "backfill" else None,
        network_delay_max_s=120.0 if config.mode == "backfill" else 0.0,
    )


def calm(config: FleetConfig) -> FleetConfig:
    """The same clinics, machines, patients and days without any disorder: UTC clinics
    open daily, 100 Hz, the agents' frame size, exact clocks, no delays or backlogs, the
    machines streaming together in true time (the control run of a disorder benchmark)."""
    return replace(
        config,
        time_zones=("UTC",),
        late_session_prob=0.0,
        rates_hz=(),
        frame_sizes=(),
        clock_offset_max_h=0.0,
        clock_drift_max_ppm=0.0,
        clocks=(),
        lockstep_s=config.lockstep_s or 20.0,
        network_delay_max_s=0.0,
        reconnect_prob=0.0,
        offline_fraction=0.0,
        offline_machines=(),
    )
