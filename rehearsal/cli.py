"""``python -m rehearsal`` (run by ``services/rehearse``): hosts, the Kafka cluster check,
the full rehearsal. Every command removes what it created on exit, Ctrl-C and SIGTERM
included."""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

from rehearsal import netns

log = logging.getLogger("rehearsal")


def _sigterm(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


def cmd_hosts(args: argparse.Namespace) -> int:
    net = netns.Net(args.prefix, args.hosts.split(","))
    net.up()
    try:
        for host in net.hosts.values():
            print(f"{host.name}\t{host.address}\t{net.ns(host.name)}", flush=True)
        print("ready", flush=True)
        if args.hold:
            threading.Event().wait()
    finally:
        netns.teardown(args.prefix, grace_s=5.0)
    return 0


def cmd_teardown(args: argparse.Namespace) -> int:
    netns.teardown(args.prefix, grace_s=5.0)
    left = netns.leftovers(args.prefix)
    if any(left.values()):
        print(f"left behind: {left}", file=sys.stderr)
        return 1
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from rehearsal.deploy import Deployment, FleetSpec
    from rehearsal.faults import FAULTS
    from rehearsal.rehearse import run, table
    from rehearsal.topology import Shape

    faults = [f for f in args.faults.split(",") if f]
    unknown = [f for f in faults if f not in FAULTS]
    if unknown:
        print(f"unknown faults {unknown}; known: {', '.join(FAULTS)}", file=sys.stderr)
        return 2
    shape = Shape(brokers=3, bridges=args.bridges, workers=args.workers, sinks=args.sinks)
    fleet = FleetSpec(args.clinics, args.machines, args.patients, args.weeks, args.seed)
    result = run(Deployment(args.prefix, shape, fleet), faults, args.scale)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1, default=str))
    print(table(result))
    lb = result["loopback"]
    print(f"loopback check: {'PASS' if lb['ok'] else 'FAIL ' + json.dumps(lb)}")
    print(f"deploy {result['timings']['deploy_s']:.0f} s; full result in {out}")
    passed = all(r["score"]["passed"] and r["score"]["missing_reps"] == 0
                 and r["score"]["extra_reps"] == 0 for r in result["segments"])  # fmt: skip
    return 0 if passed and lb["ok"] else 1


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="services/rehearse", description=__doc__)
    p.add_argument("--prefix", default="sfr", help="name prefix of every namespace (default sfr)")
    p.add_argument("-v", "--verbose", action="store_true")
    sub = p.add_subparsers(dest="command", required=True)
    h = sub.add_parser("hosts", help="create hosts on a private switch, print them")
    h.add_argument("--hosts", default="a,b,c", help="comma-separated host names")
    h.add_argument("--hold", action="store_true", help="keep them until Ctrl-C / SIGTERM")
    h.set_defaults(func=cmd_hosts)
    r = sub.add_parser("run", help="deploy, stream the fleet, score (faults: see --faults)")
    r.add_argument("--bridges", type=int, default=2)
    r.add_argument("--workers", type=int, default=3)
    r.add_argument("--sinks", type=int, default=2)
    r.add_argument(
        "--faults",
        default="baseline,kafka-leader,worker-link,bridge,mosquitto,mosquitto-queued,"
        "postgres,clock-skew",
        help="comma-separated, one segment each",
    )
    r.add_argument("--no-scale", dest="scale", action="store_false",
                   help="skip the 1 bridge + 1 worker vs full scale-out segments")
    r.add_argument("--clinics", type=int, default=1, help="per segment")
    r.add_argument("--machines", type=int, default=2, help="per clinic")
    r.add_argument("--patients", type=int, default=2, help="per machine")
    r.add_argument("--weeks", type=int, default=2)
    r.add_argument("--seed", type=int, default=7)
    r.add_argument("--out", default="out/rehearse/result.json")
    r.set_defaults(func=cmd_run)
    t = sub.add_parser("teardown", help="remove every namespace named <prefix>-*")
    t.set_defaults(func=cmd_teardown)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    signal.signal(signal.SIGTERM, _sigterm)
    try:
        result: int = args.func(args)
    except KeyboardInterrupt:
        return 130
    return result
