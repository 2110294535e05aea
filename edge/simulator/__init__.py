"""Physics-informed fleet simulator: MS patients on hip sleds, with exact ground truth.

- ``physics``: minimum-jerk strokes, forces on an inclined sled, L/R split, sensor effects.
- ``patients``: MS patient profiles (strength, asymmetry, fatigue, tremor, adherence).
- ``session``: one session's timeline and per-rep truth, planned without rendering.
- ``schedule``: when sessions happen (clinic hours in local time, late sessions).
- ``disorder``: device clocks, network delays, reconnect backlogs, machines offline for days.
- ``fleet``: clinics × machines × patients and their knobs (``FleetConfig``).
- ``source``: a ``SensorSource`` per machine; ``lockstep``: machines advancing together.
- ``truth``: rep/set/session/adherence ground truth and its JSON Lines files.

Needs numpy (extra ``sim``); the plain edge agent does not import this package.
"""

from __future__ import annotations

from edge.samples import SensorSource
from edge.simulator.disorder import DeviceClock
from edge.simulator.fleet import Fleet, FleetConfig, MachineSim, build_fleet
from edge.simulator.source import MachineSource

__all__ = [
    "DeviceClock",
    "Fleet",
    "FleetConfig",
    "MachineSim",
    "MachineSource",
    "build_fleet",
    "live_sources",
]


def live_sources(
    machines: int,
    clinics: int = 1,
    seed: int = 1,
    duration_s: float | None = None,
    clinic_id: str | None = None,
    machine_id: str | None = None,
    patients_per_machine: int = 4,
) -> list[tuple[str, str, SensorSource]]:
    """``machines`` live (wall-clock paced) simulated machines spread over ``clinics``.

    Returns (clinic_id, machine_id, source) triples. With one machine, ``clinic_id`` /
    ``machine_id`` override the generated ids.
    """
    clinics = max(1, min(clinics, machines))
    per_clinic = -(-machines // clinics)
    fleet = build_fleet(
        FleetConfig(
            clinics=clinics,
            machines_per_clinic=per_clinic,
            patients_per_machine=patients_per_machine,
            seed=seed,
            mode="live",
            duration_s=duration_s,
        )
    )
    out: list[tuple[str, str, SensorSource]] = []
    for sim in fleet.machines[:machines]:
        if machines == 1:
            sim.clinic_id = clinic_id or sim.clinic_id
            sim.machine_id = machine_id or sim.machine_id
        out.append((sim.clinic_id, sim.machine_id, sim.source()))
    return out
