"""docker-compose.yml as the one description of the deployment's wiring.

The rehearsal reads the compose file for the roles' ``SLEDFLEET_*`` variables and the
ports compose wires (Kafka's internal listener and controller, MQTT, the roles' metrics
ports, the database port from ``.env.example``). What the rehearsal changes is listed in
:data:`OVERRIDES` with the reason; ``tests/unit/rehearsal/test_compose_agreement.py`` checks
that every other variable is the same, so a rehearsal that passes proves the compose wiring."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Final
from urllib.parse import urlsplit

import yaml

REPO: Final = Path(__file__).resolve().parents[1]
COMPOSE_FILE: Final = REPO / "docker-compose.yml"
ENV_EXAMPLE: Final = REPO / "services" / "docker" / "env.example" / "sink.env"
"""The sink's secrets template: compose gives each service its own env file (docs/security.md);
the database's host and port are read from it."""

OVERRIDES: Final = {
    "SLEDFLEET_KAFKA_BOOTSTRAP": "three brokers (kafka-1..3) instead of compose's one",
    "SLEDFLEET_KAFKA_SECURITY_PROTOCOL": "no Kafka SASL: the rehearsal's brokers are PLAINTEXT",
    "SLEDFLEET_MQTT_USERNAME": "anonymous MQTT on the rehearsal's private switch",
    "SLEDFLEET_MQTT_PASSWORD": "anonymous MQTT on the rehearsal's private switch",
    "SLEDFLEET_DATABASE_URL": "same host and port as the sink's env template; dev password",
    "SLEDFLEET_DATABASE_ADMIN_URL": "same host and port as the sink's env template; dev password",
    "SLEDFLEET_STREAM_DATA_DIR": "a directory per worker host under the rehearsal's scratch dir",
    "SLEDFLEET_BRIDGE_REGISTRY_FILE": "no device registry: anonymous devices on the private switch",
    "SLEDFLEET_EDGE_OUTBOX_DIR": "a directory under the rehearsal's scratch dir",
}
"""Variables the rehearsal sets differently from compose, with the reason."""


def load() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE_FILE.read_text())
    if not isinstance(data, dict) or "services" not in data:
        raise ValueError(f"{COMPOSE_FILE}: no services")
    return data


def service_env(compose: dict[str, Any], service: str) -> dict[str, str]:
    """The ``SLEDFLEET_*`` environment compose gives ``service`` (anchors merged)."""
    env = compose["services"][service].get("environment") or {}
    return {str(k): str(v) for k, v in env.items() if str(k).startswith("SLEDFLEET_")}


def env_example() -> dict[str, str]:
    out = {}
    for raw in ENV_EXAMPLE.read_text().splitlines():
        line = raw.strip()
        if line and not line.startswith("#"):
            name, _, value = line.partition("=")
            out[name.strip()] = value.strip()
    return out


def _port(hostport: str) -> int:
    return int(hostport.rsplit(":", 1)[1])


def kafka_ports(compose: dict[str, Any]) -> tuple[int, int]:
    """(broker port the roles dial, controller port) of compose's Kafka."""
    bootstrap = service_env(compose, "bridge")["SLEDFLEET_KAFKA_BOOTSTRAP"]
    voters = str(compose["services"]["kafka"]["environment"]["KAFKA_CONTROLLER_QUORUM_VOTERS"])
    return _port(bootstrap.split(",")[0]), _port(voters.split(",", maxsplit=1)[0])


def mqtt_port(compose: dict[str, Any]) -> int:
    return int(service_env(compose, "bridge")["SLEDFLEET_MQTT_PORT"])


def database_port() -> int:
    port = urlsplit(env_example()["SLEDFLEET_DATABASE_URL"]).port
    if port is None:
        raise ValueError(f"{ENV_EXAMPLE}: SLEDFLEET_DATABASE_URL has no port")
    return port
