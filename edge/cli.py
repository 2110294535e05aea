"""The ``sledfleet`` command line: one entry point, one subcommand per process role.

Subcommands are registered by module path and imported only when used, so
``sledfleet edge run`` works where only the edge dependencies are installed.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Callable, Sequence

from edge.settings import ConfigError

# name -> (module that defines `register(subparsers)`, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "edge": ("edge.agent_cli", "run the edge agent beside one sled (or a simulated fleet)"),
    "device": ("edge.devices_cli", "provision, list and revoke broker accounts (secure mode)"),
    "secrets": ("edge.secrets_check", "refuse placeholder secrets before a deployment starts"),
    "simulate": ("edge.simulator.cli", "simulate a multi-clinic fleet, live or backfilled"),
    "bridge": ("stream.bridge.cli", "move MQTT messages into Kafka, dead-lettering bad input"),
    "stream": ("stream.app.cli", "run the Faust stream worker (reps, sets, sessions, alerts)"),
    "prescribe": ("stream.prescribe", "publish a patient's prescription to Kafka"),
    "topics": ("stream.topics", "create the Kafka topics with their partitions and retention"),
    "sink": ("storage.sink_cli", "write the stream's output topics into the database"),
    "db": ("storage.cli", "database migrations and status"),
    "outcome": ("storage.outcomes", "record a clinical outcome test (T25FW, 5STS, 6MW, MSWS-12)"),
    "note": ("storage.notes", "record a patient's effort (RPE), fatigue or symptom notes"),
    "dashboards": ("dashboards.cli", "build and deploy the Grafana dashboards"),
    "report": ("dashboards.report_cli", "printable progress reports (a patient or a clinic)"),
    "demo": ("dashboards.demo.cli", "run a simulated clinic fleet through the whole pipeline"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sledfleet",
        description=(
            "SledFleet: hip-sled training telemetry for clinic networks. "
            "Each subcommand is one process role; configuration comes from "
            "SLEDFLEET_* environment variables (see README)."
        ),
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (module, help_text) in COMMANDS.items():
        try:
            mod = importlib.import_module(module)
        except ImportError as exc:
            # A role whose dependencies are not installed still shows in --help
            p = sub.add_parser(name, help=f"{help_text} [unavailable: {exc.name}]")
            p.set_defaults(func=_unavailable(name, exc))
            continue
        mod.register(sub, name, help_text)
    return parser


def _unavailable(name: str, exc: ImportError) -> Callable[[argparse.Namespace], int]:
    def run(_: argparse.Namespace) -> int:
        print(
            f"sledfleet {name}: missing dependency {exc.name!r}; "
            "install the matching extra, e.g. pip install 'sledfleet[all]'",
            file=sys.stderr,
        )
        return 2

    return run


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    func: Callable[[argparse.Namespace], int] = args.func
    try:
        return func(args)
    except ConfigError as exc:  # a configuration mistake: one line, no traceback
        print(f"sledfleet {args.command}: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # Ctrl-C outside a role's own signal handling
        print(f"sledfleet {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
