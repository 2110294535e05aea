"""docker-compose.yml cannot run here (no Docker): check its shape instead. Images pinned,
every service supervised, ports and variable names agreeing with the code's settings, no
secrets committed."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from psycopg.conninfo import conninfo_to_dict

from edge.cli import COMMANDS
from edge.settings import DatabaseSettings, KafkaSettings, MqttSettings

REPO = Path(__file__).resolve().parents[2]
PACKAGES = ("edge", "stream", "storage", "dashboards")
VAR = re.compile(r"SLEDFLEET_[A-Z0-9_]+")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    assert isinstance(data, dict)
    return data


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return dict(compose["services"])


def env_example() -> dict[str, str]:
    """.env.example (interpolation) and the per-service env templates, merged."""
    out = {}
    texts = [(REPO / ".env.example").read_text()]
    texts += [p.read_text() for p in sorted((REPO / "services/docker/env.example").glob("*.env"))]
    for raw in "\n".join(texts).splitlines():
        line = raw.strip()
        if line and not line.startswith("#"):
            name, _, value = line.partition("=")
            out[name] = value
    return out


def published(service: dict[str, Any], container_port: int) -> int:
    """The host port a service publishes for ``container_port``."""
    for spec in service.get("ports", []):
        parts = str(spec).split(":")
        if int(parts[-1]) == container_port:
            return int(parts[-2])
    raise AssertionError(f"container port {container_port} is not published")


def code_variables() -> tuple[set[str], list[re.Pattern[str]]]:
    """SLEDFLEET_* names in the package sources, and templates like SLEDFLEET_{X}_PASSWORD."""
    names: set[str] = set()
    templates: list[re.Pattern[str]] = []
    for package in PACKAGES:
        for path in (REPO / package).rglob("*"):
            if path.suffix not in {".py", ".toml"}:
                continue
            text = path.read_text()
            names.update(VAR.findall(text))
            for t in re.findall(r"SLEDFLEET_[A-Z0-9_]*\{[A-Za-z_]+\}[A-Z0-9_{}A-Za-z]*", text):
                pattern = re.sub(r"\\\{[A-Za-z_]+\\\}", "[A-Z0-9]+", re.escape(t))
                templates.append(re.compile(pattern + r"\Z"))
    return names, templates


def test_images_are_pinned_to_explicit_versions(services: dict[str, dict[str, Any]]) -> None:
    for name, svc in services.items():
        image = svc.get("image")
        assert image, f"{name} has no image"
        repo, _, tag = image.rpartition(":")
        assert repo, f"{name}: image {image!r} has no repository"
        assert tag, f"{name}: image {image!r} has no tag"
        assert tag != "latest", f"{name}: {image!r} not pinned"
        assert re.search(r"\d+\.\d+", tag), f"{name}: {image!r} not pinned to a version"
        if "build" in svc:
            assert repo == "sledfleet", f"{name} builds the SledFleet image under another name"
    dockerfile = (REPO / "Dockerfile").read_text()
    for base in re.findall(r"^FROM\s+(\S+)", dockerfile, flags=re.M):
        assert re.search(r":\d+\.\d+\.\d+", base), f"Dockerfile base {base!r} not pinned"


def test_expected_services_and_images(services: dict[str, dict[str, Any]]) -> None:
    images = {name: svc["image"].rpartition(":")[0] for name, svc in services.items()}
    assert images["mosquitto"] == "eclipse-mosquitto"
    assert images["kafka"] == "apache/kafka"
    assert images["timescaledb"] == "timescale/timescaledb"
    assert images["grafana"] == "grafana/grafana"
    assert services["timescaledb"]["image"].split(":")[1].startswith("2.")
    built = {name for name, svc in services.items() if "build" in svc}
    assert {"bridge", "stream-worker", "sink", "simulator", "migrate"} <= built
    assert all(services[name]["build"]["dockerfile"] == "Dockerfile" for name in built)


def test_every_service_has_a_healthcheck_or_restart_policy(
    services: dict[str, dict[str, Any]],
) -> None:
    for name, svc in services.items():
        restart = svc.get("restart", "no")
        assert "healthcheck" in svc or restart != "no", f"{name} is not supervised"
    for name in ("mosquitto", "kafka", "timescaledb", "grafana"):
        assert "healthcheck" in services[name], f"{name} has no healthcheck"


def test_sledfleet_commands_exist(services: dict[str, dict[str, Any]]) -> None:
    for name, svc in services.items():
        if "build" in svc:
            assert svc["command"][0] in COMMANDS, (
                f"{name} runs unknown `sledfleet {svc['command']}`"
            )


def test_host_ports_match_the_settings_defaults(services: dict[str, dict[str, Any]]) -> None:
    assert published(services["mosquitto"], 1883) == MqttSettings().port
    kafka_port = int(KafkaSettings().bootstrap.rsplit(":", 1)[1])
    assert published(services["kafka"], kafka_port) == kafka_port
    db = conninfo_to_dict(DatabaseSettings().dsn.reveal())
    assert published(services["timescaledb"], 5432) == int(str(db["port"]))
    # inside the compose network the processes reach the containers' own ports
    env = services["bridge"]["environment"]
    assert env["SLEDFLEET_MQTT_HOST"] == "mosquitto"
    assert int(env["SLEDFLEET_MQTT_PORT"]) == 1883
    host, port = env["SLEDFLEET_KAFKA_BOOTSTRAP"].split(":")
    assert f"://{host}:{port}" in services["kafka"]["environment"]["KAFKA_ADVERTISED_LISTENERS"]
    app_url = conninfo_to_dict(env_example()["SLEDFLEET_DATABASE_URL"])
    assert (app_url["host"], int(str(app_url["port"]))) == ("timescaledb", 5432)


def test_every_sledfleet_variable_exists_in_the_code(compose: dict[str, Any]) -> None:
    used = set(VAR.findall((REPO / "docker-compose.yml").read_text()))
    used |= {name for name in env_example() if name.startswith("SLEDFLEET_")}
    names, templates = code_variables()
    unknown = {v for v in used if v not in names and not any(t.match(v) for t in templates)}
    assert not unknown, f"not read by any SledFleet code: {sorted(unknown)}"
    assert used, "no SLEDFLEET_ variables found: the test is looking in the wrong place"


def test_interpolated_variables_are_in_env_example(compose: dict[str, Any]) -> None:
    text = (REPO / "docker-compose.yml").read_text()
    interpolated = set(re.findall(r"(?<!\$)\$\{([A-Z0-9_]+)", text))
    assert interpolated <= set(env_example()), interpolated - set(env_example())


def test_env_example_holds_no_real_secrets() -> None:
    for name, value in env_example().items():
        if re.search(r"PASSWORD|TOKEN|SECRET|CLUSTER_ID", name):
            assert "change-me" in value, f"{name} in .env.example looks like a real secret"
        if "://" in value:
            password = conninfo_to_dict(value).get("password", "")
            assert "change-me" in str(password), f"{name} carries a real password"
    assert ".env" in (REPO / ".gitignore").read_text().split()


def test_mounted_files_exist(services: dict[str, dict[str, Any]]) -> None:
    for name, svc in services.items():
        for volume in svc.get("volumes", []):
            source = str(volume).split(":")[0]
            if source.startswith("./") and not source.startswith("./secrets"):
                assert (REPO / source).exists(), f"{name} mounts missing {source}"


def test_named_volumes_are_declared(compose: dict[str, Any]) -> None:
    declared = set(compose.get("volumes") or {})
    for svc in compose["services"].values():
        for volume in svc.get("volumes", []):
            source = str(volume).split(":")[0]
            if not source.startswith((".", "/")):
                assert source in declared, f"volume {source} not declared"
