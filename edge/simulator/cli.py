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
    p.add_argument("--out", help="directory for the ground truth JSON Lines files")
    p.add_argument("--publish", action="store_true", help="publish through real edge agents")
    p.set_defaults(func=run_command)


def config_from_args(args: argparse.Namespace) -> FleetConfig:
    return FleetConfig(
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
    machines = [(base.for_machine(m.clinic_id, m.machine_id), m.source()) for m in fleet.machines]
    runner = FleetRunner(machines, load(MqttSettings))
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
