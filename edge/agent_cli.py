"""``sledfleet edge run``: the edge agent beside one sled, or a simulated fleet in one process.

Settings come from ``SLEDFLEET_EDGE_*`` and ``SLEDFLEET_MQTT_*`` variables
(``edge.agent_settings.EdgeSettings``, ``edge.settings.MqttSettings``); options given
here override them. SIGTERM/SIGINT stop the agent cleanly: the tail is framed and
stored, delivery is attempted for a few seconds, and the retained ``offline`` state is
published. Whatever is not delivered stays in the outbox for the next start.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from collections.abc import Sequence
from typing import Any

from edge.agent_settings import EdgeSettings
from edge.fleet_runner import FleetRunner
from edge.metrics_http import MetricsServer
from edge.samples import SensorSource
from edge.settings import MqttSettings, load

log = logging.getLogger(__name__)

DESCRIPTION = (
    "Run the edge agent beside one sled, or a simulated fleet in one process. Settings come "
    "from the SLEDFLEET_EDGE_* and SLEDFLEET_MQTT_* environment variables; options given "
    "here override them. SIGTERM or Ctrl-C stops the agent cleanly: the tail is framed and "
    "stored, delivery is tried for a few seconds and the retained offline state is "
    "published. What is not delivered stays in the outbox for the next start."
)

_OVERRIDES = {
    "machine_id": "machine_id",
    "clinic_id": "clinic_id",
    "source": "source",
    "outbox_dir": "outbox_dir",
    "frame_samples": "frame_samples",
    "firmware": "firmware",
    "client_id": "client_id",
    "metrics_port": "metrics_port",
}


def register(subparsers: Any, name: str, help_text: str) -> None:
    p = subparsers.add_parser(name, help=help_text, description=DESCRIPTION)
    sub = p.add_subparsers(dest="edge_command", metavar="ACTION", required=True)
    run = sub.add_parser("run", help="run the agent (see SLEDFLEET_EDGE_* variables)")
    run.add_argument("--machine-id", help="machine id (SLEDFLEET_EDGE_MACHINE_ID)")
    run.add_argument("--clinic-id", help="clinic id (SLEDFLEET_EDGE_CLINIC_ID)")
    run.add_argument(
        "--source",
        help="sim | csv:PATH | tcp://HOST:PORT | tcp-listen://HOST:PORT | serial:DEVICE",
    )
    run.add_argument("--rate-hz", type=float, help="sample rate of a line source (default 100)")
    run.add_argument("--realtime", action="store_true", help="replay a CSV at its own pace")
    run.add_argument("--restamp", action="store_true", help="replay a CSV shifted to now")
    run.add_argument("--outbox-dir", help="directory of the outbox files")
    run.add_argument("--frame-samples", type=int, help="samples per frame (10..100)")
    run.add_argument("--firmware", help="firmware version reported in the birth")
    run.add_argument("--client-id", help="MQTT client id (default edge-<machine_id>)")
    run.add_argument(
        "--metrics-port", type=int, help="serve /metrics here (SLEDFLEET_EDGE_METRICS_PORT)"
    )
    run.add_argument("--mqtt-host", help="broker host (SLEDFLEET_MQTT_HOST)")
    run.add_argument("--mqtt-port", type=int, help="broker port (SLEDFLEET_MQTT_PORT)")
    run.add_argument("--machines", type=int, default=1, help="sim only: machines to simulate")
    run.add_argument("--clinics", type=int, default=1, help="sim only: clinics to spread them over")
    run.add_argument("--seed", type=int, default=1, help="sim only: random seed")
    run.add_argument("--duration-s", type=float, help="sim only: stop after this many seconds")
    run.set_defaults(func=run_command)


def run_command(args: argparse.Namespace) -> int:
    overrides = {
        field: getattr(args, opt) for opt, field in _OVERRIDES.items() if getattr(args, opt)
    }
    settings = load(EdgeSettings, **overrides)
    mqtt_over = {
        k: v for k, v in (("host", args.mqtt_host), ("port", args.mqtt_port)) if v is not None
    }
    mqtt_settings = load(MqttSettings, **mqtt_over)
    machines = build_machines(settings, args)
    runner = FleetRunner(machines, mqtt_settings)
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: runner.stop())
    server = _metrics_server(settings, runner)
    try:
        stats = runner.run()
    finally:
        if server is not None:
            server.stop()
    log.info(
        "edge agent stopped: %s machines, %s frames, %s events, %s acked, %s undelivered "
        "(kept in the outbox), %s dropped",
        stats.machines,
        stats.frames,
        stats.events,
        stats.acked,
        stats.undelivered_rows,
        stats.dropped_frames,
    )
    return 1 if stats.source_errors else 0


def _metrics_server(settings: EdgeSettings, runner: FleetRunner) -> MetricsServer | None:
    if not settings.metrics_port:
        return None
    from edge.agent_metrics import EdgeCollector, health

    server = MetricsServer(
        EdgeCollector(runner).registry(),
        lambda: health(runner),
        settings.metrics_host,
        settings.metrics_port,
        "edge",
    ).start()
    log.info("metrics on http://%s:%d/metrics", settings.metrics_host, server.port)
    return server


def build_machines(
    settings: EdgeSettings, args: argparse.Namespace
) -> list[tuple[EdgeSettings, SensorSource]]:
    if settings.source == "sim":
        return _sim_machines(settings, args)
    if args.machines != 1:
        raise SystemExit("--machines applies to --source sim only")
    from edge.sources import open_source

    return [(settings, open_source(settings.source, args.rate_hz, args.realtime, args.restamp))]


def _sim_machines(
    settings: EdgeSettings, args: argparse.Namespace
) -> list[tuple[EdgeSettings, SensorSource]]:
    try:
        from edge.simulator import live_sources  # type: ignore[import-not-found,attr-defined,unused-ignore]
    except ImportError as exc:
        raise SystemExit(f"the simulator is not available: {exc}") from exc
    sources: Sequence[tuple[str, str, SensorSource]] = live_sources(
        machines=args.machines,
        clinics=args.clinics,
        seed=args.seed,
        duration_s=args.duration_s,
        clinic_id=settings.clinic_id if args.machines == 1 else None,
        machine_id=settings.machine_id if args.machines == 1 else None,
    )
    return [(settings.for_machine(cid, mid), src) for cid, mid, src in sources]


if __name__ == "__main__":
    from edge.cli import main

    sys.exit(main(["edge", *sys.argv[1:]]))
