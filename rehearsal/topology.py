"""Who runs where in the rehearsal, named as in docker-compose.yml.

Host names are the compose service names (``mosquitto``, ``timescaledb``, ``bridge``...);
roles that compose runs once and the rehearsal runs several times get ``-<n>``
(``kafka-1..3``, ``bridge-1..2``, ``stream-worker-1..3``, ``sink-1..2``). Ports come from
the compose file itself (:mod:`rehearsal.compose`), so the rehearsal dials what compose
wires."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

CTL: Final = "ctl"
"""The operator's host: creates topics, prepares the database, scores the run."""
EDGE: Final = "simulator"
"""The edge host (compose's simulator service): a simulated fleet through real edge agents."""
MOSQUITTO: Final = "mosquitto"
DATABASE: Final = "timescaledb"


@dataclass(frozen=True, slots=True)
class Shape:
    brokers: int = 3
    bridges: int = 2
    workers: int = 3
    sinks: int = 2

    @property
    def kafka_hosts(self) -> list[str]:
        return [f"kafka-{i}" for i in range(1, self.brokers + 1)]

    @property
    def bridge_hosts(self) -> list[str]:
        return [f"bridge-{i}" for i in range(1, self.bridges + 1)]

    @property
    def worker_hosts(self) -> list[str]:
        return [f"stream-worker-{i}" for i in range(1, self.workers + 1)]

    @property
    def sink_hosts(self) -> list[str]:
        return [f"sink-{i}" for i in range(1, self.sinks + 1)]

    def hosts(self) -> list[str]:
        return [
            CTL, MOSQUITTO, *self.kafka_hosts, DATABASE, *self.bridge_hosts,
            *self.worker_hosts, *self.sink_hosts, EDGE,
        ]  # fmt: skip
