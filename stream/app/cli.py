"""``sledfleet stream worker``: run one Faust stream worker process."""

from __future__ import annotations

import argparse
import logging
from typing import Any

from edge.settings import KafkaSettings, describe, load
from stream.app.settings import StreamSettings

log = logging.getLogger(__name__)


def register(subparsers: Any, name: str, help_text: str) -> None:
    parser = subparsers.add_parser(
        name,
        help=help_text,
        description=help_text,
        epilog="Environment: "
        + ", ".join(f"{var} (default {default})" for var, default in describe(StreamSettings)),
    )
    sub = parser.add_subparsers(dest="stream_command", metavar="SUBCOMMAND", required=True)
    worker = sub.add_parser(
        "worker",
        help="consume the bridge's topics and write reps, sets, sessions, adherence, alerts",
    )
    worker.add_argument("--loglevel", default=None, help="override SLEDFLEET_STREAM_LOGLEVEL")
    worker.add_argument("--web-port", type=int, default=None, help="override the web port")
    worker.set_defaults(func=run_worker)


def run_worker(args: argparse.Namespace) -> int:
    """Run until SIGINT/SIGTERM (graceful: agents stop, offsets commit, producer flushes)."""
    import faust

    from stream.app.app import create_app

    overrides: dict[str, Any] = {}
    if args.web_port is not None:
        overrides["web_port"] = args.web_port
    if not args.verbose:  # kafka-python's connection chatter (topic lookups at start)
        logging.getLogger("kafka").setLevel(logging.WARNING)
    settings = load(StreamSettings, **overrides)
    kafka = load(KafkaSettings)
    loglevel = args.loglevel or settings.loglevel
    app = create_app(settings, kafka)
    log.info("stream worker %s on %s (prefix %r)", app.conf.id, kafka.bootstrap, kafka.topic_prefix)
    worker = faust.Worker(app, loglevel=loglevel, quiet=True, redirect_stdouts=False)
    try:
        worker.execute_from_commandline()
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 0
    return 0
