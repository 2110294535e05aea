"""Issue #13, M4, checked on docker-compose.yml and the env templates (no Docker here):
each service gets only its own env file, nothing starts before the placeholder check, Grafana
is served over TLS, the worker's web server stays on loopback, and the check itself works."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from edge.secrets_check import problems
from edge.settings import MqttSettings, load

REPO = Path(__file__).resolve().parents[2]
TEMPLATES = REPO / "services/docker/env.example"


@pytest.fixture(scope="module")
def services() -> dict[str, dict[str, Any]]:
    return dict(yaml.safe_load((REPO / "docker-compose.yml").read_text())["services"])


def _needs(services: dict[str, dict[str, Any]], name: str) -> set[str]:
    """Every service ``name`` waits for, transitively."""
    seen: set[str] = set()
    todo = list(services[name].get("depends_on", {}))
    while todo:
        dep = todo.pop()
        if dep not in seen:
            seen.add(dep)
            todo += list(services[dep].get("depends_on", {}))
    return seen


def test_each_service_reads_only_its_own_env_file(services: dict[str, dict[str, Any]]) -> None:
    for name, svc in services.items():
        files = svc.get("env_file", [])
        files = [files] if isinstance(files, str) else files
        assert ".env" not in files, f"{name} gets the whole .env"
        assert files in ([], [f"secrets/env/{name}.env"]), (name, files)
        if files:
            assert (TEMPLATES / f"{name}.env").is_file(), f"no template for {name}"


def test_nothing_starts_before_the_secrets_check(services: dict[str, dict[str, Any]]) -> None:
    for name in services:
        if name != "secrets-check":
            assert "secrets-check" in _needs(services, name), f"{name} starts unchecked"


def test_grafana_is_served_over_tls(services: dict[str, dict[str, Any]]) -> None:
    env = services["grafana"]["environment"]
    assert env["GF_SERVER_PROTOCOL"] == "https"
    assert "https://" in " ".join(services["grafana"]["healthcheck"]["test"])


def test_the_worker_web_server_stays_on_loopback(services: dict[str, dict[str, Any]]) -> None:
    assert services["stream-worker"]["environment"]["SLEDFLEET_STREAM_WEB_HOST"] == "127.0.0.1"
    assert "ports" not in services["stream-worker"]


def test_the_check_refuses_the_templates_and_accepts_real_values(tmp_path: Path) -> None:
    found = problems(TEMPLATES)
    assert found
    assert all("change-me" in line for line in found)
    filled = tmp_path / "env"
    shutil.copytree(TEMPLATES, filled)
    for path in filled.glob("*.env"):
        path.write_text(path.read_text().replace("change-me", "s3cr3t-XyZ"))
    assert problems(filled) == []
    (filled / "sink.env").write_text("SLEDFLEET_DATABASE_URL=\n")
    assert problems(filled) == ["sink.env: SLEDFLEET_DATABASE_URL is empty"]
    assert problems(tmp_path / "missing")  # no files at all is a failure too


def test_processes_refuse_placeholder_secrets() -> None:
    with pytest.raises(ValueError, match="placeholder") as info:
        load(MqttSettings, {"SLEDFLEET_MQTT_PASSWORD": "change-me-bridge"})
    assert "change-me-bridge" not in str(info.value)
    assert load(MqttSettings, {"SLEDFLEET_MQTT_PASSWORD": "real"}).password.reveal() == "real"
