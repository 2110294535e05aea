"""``sledfleet sink``: run the sink until SIGINT/SIGTERM."""

from __future__ import annotations

import argparse
import logging
import signal
import threading
from typing import Any

from storage.db import default_dsn

log = logging.getLogger(__name__)


def register(subparsers: Any, name: str, help_text: str) -> None:
    p = subparsers.add_parser(
        name,
        help=help_text,
        description=help_text + ". Settings: SLEDFLEET_SINK_* and SLEDFLEET_KAFKA_* "
        "environment variables (see docs/storage.md).",
    )
    p.add_argument("--dsn", help="database URL (default: SLEDFLEET_DATABASE_URL)")
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from edge.settings import KafkaSettings, load
    from storage.db_errors import check_database
    from storage.sink import SinkSettings, run_sink

    load(SinkSettings), load(KafkaSettings)  # a bad variable is told before anything starts
    dsn = args.dsn or default_dsn()
    check_database(dsn)  # a wrong URL, no server, no database, not migrated: one line, exit 2

    stop = threading.Event()

    def _stop(signum: int, _frame: Any) -> None:
        log.info("signal %d: finishing the current batch and stopping", signum)
        stop.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    return run_sink(dsn, stop)
