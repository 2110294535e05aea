"""The rehearsal is wired from docker-compose.yml: every role gets compose's SLEDFLEET_*
variables, changed only where rehearsal.compose.OVERRIDES says why, with compose's ports
and its service names as host names. A rehearsal that passes therefore exercises the
compose wiring (no Docker needed to read it)."""

from __future__ import annotations

from typing import Any

import pytest

from rehearsal import compose
from rehearsal.deploy import Deployment
from rehearsal.topology import CTL, DATABASE, EDGE, MOSQUITTO

ROLE_SERVICES = {"bridge": "bridge-1", "stream-worker": "stream-worker-1", "sink": "sink-1",
                 "simulator": EDGE}  # fmt: skip


@pytest.fixture(scope="module")
def deployment() -> Deployment:
    return Deployment("sfunit")


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    return compose.load()


@pytest.mark.parametrize(("service", "host"), ROLE_SERVICES.items())
def test_role_env_is_composes_except_the_documented_overrides(
    deployment: Deployment, spec: dict[str, Any], service: str, host: str
) -> None:
    theirs = compose.service_env(spec, service)
    ours = deployment.role_env(service, host)
    for name, value in theirs.items():
        if name not in compose.OVERRIDES:
            assert ours.get(name) == value, f"{service}: {name}"
    changed = {n for n in set(theirs) | set(ours) if theirs.get(n) != ours.get(n)}
    assert changed <= set(compose.OVERRIDES), f"undocumented differences: {changed}"


def test_hosts_are_compose_service_names(deployment: Deployment, spec: dict[str, Any]) -> None:
    services = set(spec["services"])
    for host in deployment.shape.hosts():
        base = host.rsplit("-", 1)[0] if host[-1].isdigit() else host
        assert base in services or host == CTL, host
    assert {MOSQUITTO, DATABASE} <= services


def test_addresses_point_at_the_rehearsal_hosts(deployment: Deployment) -> None:
    env = deployment.role_env("bridge", "bridge-1")
    assert env["SLEDFLEET_MQTT_HOST"] == MOSQUITTO
    brokers = env["SLEDFLEET_KAFKA_BOOTSTRAP"].split(",")
    assert brokers == [f"kafka-{i}:{deployment.kafka_port}" for i in (1, 2, 3)]
    assert f"@{DATABASE}:{compose.database_port()}/" in env["SLEDFLEET_DATABASE_URL"]
    # what a role dials; a role's own listening address may be loopback on purpose (the
    # worker's web server: health, metrics and stats stay on the host, docs/security.md)
    every_value = " ".join(
        v
        for s in ROLE_SERVICES
        for k, v in deployment.role_env(s, ROLE_SERVICES[s]).items()
        if not k.endswith("_WEB_HOST")
    )
    assert "127.0.0.1" not in every_value
    assert "localhost" not in every_value


def test_ports_are_composes(deployment: Deployment, spec: dict[str, Any]) -> None:
    assert deployment.kafka_port == 29092  # compose's INTERNAL listener
    assert deployment.controller_port == 9093
    assert deployment.mqtt_port == int(spec["services"]["bridge"]["environment"]
                                       ["SLEDFLEET_MQTT_PORT"])  # fmt: skip
    assert deployment.db_port == 5432
