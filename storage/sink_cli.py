"""``sledfleet sink``: run the sink until SIGINT/SIGTERM.

Before consuming, it checks what an operator gets wrong: settings (one line naming the
variable), the database (reachable, existing, migrated: ``storage.db_errors``) and Kafka
(a TCP probe, waited for up to ``SLEDFLEET_SINK_KAFKA_WAIT_S``; SIGTERM/Ctrl-C end the wait
at once). Each failure is one line with the fix and exit status 2.
"""

from __future__ import annotations

import argparse
import logging
import signal
import threading
import time
from dataclasses import dataclass
from typing import Any

from edge.kafka_login import check as check_login
from edge.netprobe import RateLimited, reachable
from edge.settings import ConfigError, KafkaSettings, env, load
from storage.db import default_dsn

log = logging.getLogger(__name__)

WAIT_LOG_EVERY_S = 15.0


@dataclass(frozen=True, slots=True)
class SinkStartSettings:
    kafka_wait_s: float = env("SLEDFLEET_SINK_KAFKA_WAIT_S", 120.0)
    """At start, how long to wait for Kafka to accept connections before giving up (exit 2)."""


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
    from storage.db_errors import check_database
    from storage.sink import SinkSettings, run_sink

    # a bad variable is told before anything starts
    load(SinkSettings)
    kafka = load(KafkaSettings)
    start = load(SinkStartSettings)
    dsn = args.dsn or default_dsn()
    check_database(dsn)  # a wrong URL, no server, no database, not migrated: one line, exit 2

    stop = threading.Event()

    def _stop(signum: int, _frame: Any) -> None:
        log.info("signal %d: finishing the current batch and stopping", signum)
        stop.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    if not wait_for_kafka(kafka, start.kafka_wait_s, stop):
        log.info("stopped before Kafka was reachable")
        return 0
    return run_sink(dsn, stop)


def wait_for_kafka(kafka: KafkaSettings, timeout_s: float, stop: threading.Event) -> bool:
    """True once Kafka accepts a connection, False when ``stop`` was set; ConfigError at
    the deadline."""
    started = time.monotonic()
    said = RateLimited(log, WAIT_LOG_EVERY_S)
    while True:
        ok, cause = reachable(kafka.bootstrap)
        if ok:
            try:
                check_login(kafka)  # a refused login: ConfigError, one line
            except ConnectionError as exc:
                cause = str(exc)
            else:
                return True
        waited = time.monotonic() - started
        if waited >= timeout_s:
            raise ConfigError(
                f"SLEDFLEET_KAFKA_BOOTSTRAP={kafka.bootstrap}",
                f"Kafka not reachable after {waited:.0f} s ({cause})",
                "start Kafka (services/start kafka) or correct the address",
            )
        said.warning("waiting for Kafka at %s (%s), %.0f s so far", kafka.bootstrap, cause, waited)
        if stop.wait(1.0):
            return False
