"""Configuration mistakes give one line (setting, cause, fix) and a non-zero exit; help is plain.

Subprocesses of the real ``sledfleet`` entry point; nothing here needs a server."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from edge.settings import ConfigError, MqttSettings, load
from storage.db_errors import explain, redacted
from stream.bridge.cli import RateLimitFilter
from tests.conftest import REPO_ROOT


def sledfleet(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "edge.cli", *args],
        env={**os.environ, **env},
        cwd=REPO_ROOT,
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
    )


def one_error_line(result: subprocess.CompletedProcess[str], role: str) -> str:
    assert "Traceback" not in result.stderr, result.stderr
    lines = [ln for ln in result.stderr.splitlines() if ln.startswith(f"sledfleet {role}: ")]
    assert len(lines) == 1, result.stderr
    return lines[0]


@pytest.mark.parametrize(
    ("role", "args"),
    [("bridge", ["bridge"]), ("edge", ["edge", "run"]), ("sink", ["sink"])],
)
def test_a_bad_port_is_one_line_naming_the_variable(role: str, args: list[str]) -> None:
    result = sledfleet(*args, SLEDFLEET_MQTT_PORT="abc", SLEDFLEET_SINK_METRICS_PORT="abc")
    assert result.returncode == 2
    line = one_error_line(result, role)
    assert "_PORT: 'abc' is not a whole number; fix: set a number like" in line


def test_a_port_out_of_range_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"SLEDFLEET_MQTT_PORT: '70000' is not a TCP port"):
        load(MqttSettings, {"SLEDFLEET_MQTT_PORT": "70000"})
    with pytest.raises(ConfigError, match=r"SLEDFLEET_MQTT_TLS: 'maybe' is not a yes/no value"):
        load(MqttSettings, {"SLEDFLEET_MQTT_TLS": "maybe"})


def test_a_wrong_dsn_is_one_line_and_db_takes_dsn_after_the_action() -> None:
    result = sledfleet("db", "status", "--dsn", "X")
    assert result.returncode == 2
    line = one_error_line(result, "db")
    assert line.startswith("sledfleet db: SLEDFLEET_DATABASE_URL (or --dsn): 'X' is not a")
    assert "fix: use the form postgresql://" in line


def test_db_error_messages_never_show_the_password() -> None:
    dsn = "postgresql://sledfleet:hunter2@127.0.0.1:1/sledfleet"
    assert "hunter2" not in redacted(dsn)
    assert "hunter2" not in redacted("host=x password=hunter2 dbname=y")
    refused = psycopg.OperationalError("connection failed: ... failed: Connection refused")
    message = str(explain(refused, dsn))
    assert "hunter2" not in message
    assert "no PostgreSQL server answers at 127.0.0.1:1/sledfleet" in message
    assert "fix: start it (services/start postgres)" in message


def test_kafka_library_logs_are_rate_limited() -> None:
    f = RateLimitFilter(every_s=60)
    records = [
        logging.LogRecord(
            "kafka.net.manager", logging.ERROR, "x", 1, "Connection failed: %s", ("e",), None
        )
        for _ in range(50)
    ]
    passed = [r for r in records if f.filter(r)]
    assert len(passed) == 1
    own = logging.LogRecord("stream.bridge.cli", logging.INFO, "x", 1, "hello", (), None)
    assert all(f.filter(own) for _ in range(5))  # only the noisy libraries are limited


@pytest.mark.parametrize(
    "args",
    [[], ["edge"], ["edge", "run"], ["bridge"], ["simulate"], ["prescribe"], ["sink"], ["db"]],
)
def test_help_texts_are_plain(args: list[str]) -> None:
    result = sledfleet(*args, "--help")
    assert result.returncode == 0
    assert "``" not in result.stdout
    assert "edge.agent_settings" not in result.stdout
    assert "edge.fleet_runner" not in result.stdout


def test_demo_help_starts_nothing(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    result = subprocess.run(
        [str(REPO_ROOT / "services" / "demo"), "--help"],
        env={**os.environ, "SLEDFLEET_RUN_DIR": str(run_dir)},
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: services/demo")
    assert "--live-s" in result.stdout  # sledfleet demo's own options follow
    # services/start never ran: no service directory, pid or log in the run dir
    assert not run_dir.exists() or not any(run_dir.iterdir())
