"""The edge host's simulated fleet: the demo's backfill through real edge agents (one MQTT
client and SQLite outbox per machine), run on the ``edge`` host with compose's simulator
variables. Prints the fleet runner's statistics as JSON when every frame is delivered."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from dataclasses import asdict

from edge.agent_settings import EdgeSettings
from edge.fleet_runner import FleetRunner
from edge.settings import MqttSettings, load
from rehearsal.probe import _add_fleet_args, _fleet


def main() -> int:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    p = argparse.ArgumentParser(prog="python -m rehearsal.fleet")
    _add_fleet_args(p)
    args = p.parse_args()
    fleet = _fleet(args)
    base = load(EdgeSettings)
    runner = FleetRunner(
        [(base.for_machine(m.clinic_id, m.machine_id), m.source()) for m in fleet.machines],
        load(MqttSettings),
    )
    stats = runner.run()
    print(json.dumps(asdict(stats), default=str), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

