"""``sledfleet simulate``: plan a simulated fleet, write its ground truth, optionally publish.

Without ``--publish`` it plans the fleet, writes the ground truth (JSON Lines, see
``edge.simulator.truth``) to ``--out`` and prints a summary. With ``--publish`` every
machine gets a real edge agent (own client id and outbox, ``edge.fleet_runner``) fed by
its simulated source: ``--mode backfill`` as fast as the agents drain, ``--mode live``
paced to the wall clock. MQTT and outbox settings come from ``SLEDFLEET_MQTT_*`` /
``SLEDFLEET_EDGE_*`` as for ``sledfleet edge run``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import signal
from typing import Any

from edge.simulator.fleet import DEFAULT_START, Fleet, FleetConfig, build_fleet

log = logging.getLogger(__name__)


DESCRIPTION = (
    "Plan a simulated fleet, write its ground truth, optionally publish it. Without "
    "--publish it writes the ground truth (JSON Lines) to --out and prints a summary. With "
    "--publish every machine gets a real edge agent (own MQTT client id and outbox) fed by "
    "its simulated source: --mode backfill as fast as the agents drain, --mode live paced "
    "to the wall clock. MQTT and outbox settings come from SLEDFLEET_MQTT_* and "
    "SLEDFLEET_EDGE_*, as for sledfleet edge run."
)


def register(subparsers: Any, name: str, help_text: str) -> None:
    p = subparsers.add_parser(name, help=help_text, description=DESCRIPTION)
    p.add_argument("--clinics", type=int, default=3)
    p.add_argument("--machines-per-clinic", type=int, default=3)
    p.add_argument("--patients-per-machine", type=int, default=5)
    p.add_argument("--days", type=int, default=28, help="backfill: simulated days")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument(
        "--start-date",
        type=dt.date.fromisoformat,
        default=DEFAULT_START,
        help="backfill: first simulated day (UTC), default %(default)s",
    )
    p.add_argument("--mode", choices=("backfill", "live"), default="backfill")
    p.add_argument("--duration-s", type=float, help="live: stop after this many seconds")
    p.add_argument("--rate-hz", type=float, default=100.0)
    p.add_argument("--id-prefix", default="", help="prefix of clinic and machine ids")
    _disorder_args(p)
    p.add_argument("--out", help="directory for the ground truth JSON Lines files")
    p.add_argument("--publish", action="store_true", help="publish through real edge agents")
    p.set_defaults(func=run_command)


def _floats(text: str) -> tuple[float, ...]:
    return tuple(float(x) for x in text.split(",") if x.strip())


def _ints(text: str) -> tuple[int, ...]:
    return tuple(int(x) for x in text.split(",") if x.strip())


def _names(text: str) -> tuple[str, ...]:
    return tuple(x.strip() for x in text.split(",") if x.strip())


def _pair(text: str) -> tuple[float, float]:
    lo, _, hi = text.partition(",")
    return (float(lo), float(hi or lo))


def _disorder_args(p: argparse.ArgumentParser) -> None:
    """The disorder knobs (``FleetConfig`` field docs); all off by default."""
    d = FleetConfig()
    g = p.add_argument_group("disorder (see docs/simulator.md)")
    g.add_argument(
        "--time-zones",
        type=_names,
        default=d.time_zones,
        help="IANA zones, clinic c gets zones[c %% n], e.g. "
        "Europe/Berlin,America/Los_Angeles,Australia/Sydney",
    )
    g.add_argument(
        "--clinic-weekdays",
        type=_ints,
        default=d.clinic_weekdays,
        help="local weekdays the clinics open, 0=Monday (default 0,1,2,3,4)",
    )
    g.add_argument(
        "--late-session-prob",
        type=float,
        default=d.late_session_prob,
        help="chance a session starts 23:55-23:59 local (crosses midnight)",
    )
    g.add_argument(
        "--rates-hz",
        type=_floats,
        default=d.rates_hz,
        help="per-machine sample rates, cycled (e.g. 50,100,200)",
    )
    g.add_argument(
        "--frame-sizes",
        type=_ints,
        default=d.frame_sizes,
        help="per-machine samples per frame, cycled (e.g. 20,50,100)",
    )
    g.add_argument(
        "--clock-offset-max-h",
        type=float,
        default=d.clock_offset_max_h,
        help="device clocks off by up to ± this many hours",
    )
    g.add_argument(
        "--clock-drift-max-ppm",
        type=float,
        default=d.clock_drift_max_ppm,
        help="device clocks drift by up to ± this many ppm",
    )
    g.add_argument(
        "--clock-offset-reported",
        type=float,
        default=d.clock_offset_reported,
        help="fraction of agents reporting their clock offset",
    )
    g.add_argument(
        "--lockstep-s",
        type=float,
        default=d.lockstep_s,
        help="backfill: machines advance together, none more than this ahead",
    )
    g.add_argument(
        "--network-delay-max-s",
        type=float,
        default=d.network_delay_max_s,
        help="per-machine network delay up to this (lockstep)",
    )
    g.add_argument(
        "--reconnect-prob",
        type=float,
        default=d.reconnect_prob,
        help="chance per session of a connection loss mid-session (lockstep)",
    )
    g.add_argument(
        "--reconnect-backlog-s",
        type=_pair,
        default=d.reconnect_backlog_s,
        help="MIN,MAX seconds a connection loss lasts",
    )
    g.add_argument(
        "--offline-fraction",
        type=float,
        default=d.offline_fraction,
        help="fraction of machines offline for days, replaying their outbox",
    )
    g.add_argument("--offline-days", type=_pair, default=d.offline_days,
                   help="MIN,MAX days an offline machine's backlog covers")  # fmt: skip


def config_from_args(args: argparse.Namespace) -> FleetConfig:
    return FleetConfig(
        time_zones=args.time_zones,
        clinic_weekdays=args.clinic_weekdays,
        late_session_prob=args.late_session_prob,
        rates_hz=args.rates_hz,
        frame_sizes=args.frame_sizes,
        clock_offset_max_h=args.clock_offset_max_h,
        clock_drift_max_ppm=args.clock_drift_max_ppm,
        clock_offset_reported=args.clock_offset_reported,
        lockstep_s=args.lockstep_s,
        network_delay_max_s=args.network_delay_max_s,
        reconnect_prob=args.reconnect_prob,
        reconnect_backlog_s=args.reconnect_backlog_s,
        offline_fraction=args.offline_fraction,
        offline_days=args.offline_days,
        clinics=args.clinics,
        machines_per_clinic=args.machines_per_clinic,
        patients_per_machine=args.patients_per_machine,
        days=args.days,
        seed=args.seed,
        start_date=args.start_date,
        rate_hz=args.rate_hz,
        mode=args.mode,
        duration_s=args.duration_s,
        id_prefix=args.id_prefix,
    )


def summary(fleet: Fleet) -> dict[str, Any]:
    truth = fleet.truth()
    return {
        "machines": len(fleet.machines),
        "patients": len(fleet.patients),
        "sessions": len(truth["sessions"]),
        "sets": len(truth["sets"]),
        "reps": sum(1 for r in truth["reps"] if r["valid"]),
        "partial_reps": sum(1 for r in truth["reps"] if not r["valid"]),
        "first_ns": min((s["start_ns"] for s in truth["sessions"]), default=None),
        "last_ns": max((s["end_ns"] for s in truth["sessions"]), default=None),
    }


def run_command(args: argparse.Namespace) -> int:
    fleet = build_fleet(config_from_args(args))
    code = publish(fleet) if args.publish else 0
    if args.out:
        counts = fleet.write_ground_truth(args.out)
        log.info("ground truth written to %s: %s", args.out, counts)
    print(json.dumps(summary(fleet)))
    return code


def publish(fleet: Fleet) -> int:
    """Drive every machine through its own edge agent (``edge.fleet_runner``)."""
    from edge.agent_settings import EdgeSettings
    from edge.fleet_runner import FleetRunner
    from edge.settings import MqttSettings, load

    base = load(EdgeSettings)
    runner = FleetRunner(fleet.edge_machines(base), load(MqttSettings))
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: runner.stop())
    stats = runner.run()
    log.info(
        "published: %s frames, %s events, %s acked, %s undelivered, %s dropped",
        stats.frames,
        stats.events,
        stats.acked,
        stats.undelivered_rows,
        stats.dropped_frames,
    )
    return 1 if stats.source_errors else 0
