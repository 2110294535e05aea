"""``python -m rehearsal`` (run by ``services/rehearse``): hosts, the Kafka cluster check,
the full rehearsal. Every command removes what it created on exit, Ctrl-C and SIGTERM
included."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from collections.abc import Sequence
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


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="services/rehearse", description=__doc__)
    p.add_argument("--prefix", default="sfr", help="name prefix of every namespace (default sfr)")
    p.add_argument("-v", "--verbose", action="store_true")
    sub = p.add_subparsers(dest="command", required=True)
    h = sub.add_parser("hosts", help="create hosts on a private switch, print them")
    h.add_argument("--hosts", default="a,b,c", help="comma-separated host names")
    h.add_argument("--hold", action="store_true", help="keep them until Ctrl-C / SIGTERM")
    h.set_defaults(func=cmd_hosts)
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
