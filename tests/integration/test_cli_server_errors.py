"""Unreachable servers, missing or unmigrated databases and wrong credentials: one line
naming the setting, the cause and the fix, a non-zero exit; and a bridge waiting for Kafka
stops on SIGTERM. Real ``sledfleet`` subprocesses against the shared PostgreSQL and closed
loopback ports (nothing listens on a fresh free port)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import dsn_with
from polling import wait_until
from servers import free_port

from tests.conftest import REPO_ROOT
from tests.integration.storage_support import migrated_database
from tests.unit.test_cli_errors import one_error_line, sledfleet

pytestmark = pytest.mark.integration


def test_db_status_with_no_server_at_the_port(fresh_database: str) -> None:
    port = free_port()
    result = sledfleet("db", "status", "--dsn", dsn_with(fresh_database, port=str(port)))
    assert result.returncode == 2
    line = one_error_line(result, "db")
    assert f"no PostgreSQL server answers at 127.0.0.1:{port}/" in line
    assert "fix: start it (services/start postgres) or correct host and port" in line


def test_db_status_of_a_missing_database(fresh_database: str) -> None:
    result = sledfleet("db", "status", "--dsn", dsn_with(fresh_database, dbname="no_such_db_x"))
    assert result.returncode == 2
    line = one_error_line(result, "db")
    assert "database missing at 127.0.0.1:5433/no_such_db_x; fix: create it" in line


def test_wrong_password_is_told_without_showing_it(fresh_database: str) -> None:
    result = sledfleet("db", "status", "--dsn", dsn_with(fresh_database, password="hunter2x"))
    assert result.returncode == 2
    line = one_error_line(result, "db")
    assert "refused the user name or password; fix: correct the credentials" in line
    assert "hunter2x" not in result.stderr


def test_sink_on_an_unmigrated_database(fresh_database: str) -> None:
    result = sledfleet("sink", SLEDFLEET_DATABASE_URL=fresh_database)
    assert result.returncode == 2
    line = one_error_line(result, "sink")
    assert "is not migrated; fix: run sledfleet db migrate" in line


def test_bridge_with_kafka_unreachable_says_so_in_one_line() -> None:
    port = free_port()
    result = sledfleet(
        "bridge",
        SLEDFLEET_KAFKA_BOOTSTRAP=f"127.0.0.1:{port}",
        SLEDFLEET_BRIDGE_KAFKA_WAIT_S="3",
        SLEDFLEET_BRIDGE_METRICS_PORT="0",
    )
    assert result.returncode == 2
    line = one_error_line(result, "bridge")
    assert line.startswith(f"sledfleet bridge: SLEDFLEET_KAFKA_BOOTSTRAP=127.0.0.1:{port}: ")
    assert "not ready after 3 s" in line
    assert "Connection refused" in line
    assert "fix: start Kafka (services/start kafka)" in line
    # the retry log is rate-limited: one line for the 3 s, no library connection spam
    assert result.stderr.count("waiting for Kafka") == 1, result.stderr
    assert "kafka.net" not in result.stderr


def test_bridge_waiting_for_kafka_stops_on_sigterm(tmp_path: Path) -> None:
    log_path = tmp_path / "bridge.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "edge.cli", "bridge"],
            env={
                **os.environ,
                "SLEDFLEET_KAFKA_BOOTSTRAP": f"127.0.0.1:{free_port()}",
                "SLEDFLEET_BRIDGE_KAFKA_WAIT_S": "600",
                "SLEDFLEET_BRIDGE_METRICS_PORT": "0",
            },
            cwd=REPO_ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_until(lambda: "waiting for Kafka" in log_path.read_text(), 60, "the Kafka wait")
        proc.send_signal(signal.SIGTERM)
        # a deadline, not a speed test: without the fix it waits the whole 600 s
        assert proc.wait(timeout=60) == 0
        assert "stopped before Kafka was ready" in log_path.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="module")
def migrated_dsn(admin_dsn: str) -> Iterator[str]:
    with migrated_database(admin_dsn) as db:
        yield db.owner


def test_sink_with_kafka_unreachable_says_so_in_one_line(migrated_dsn: str) -> None:
    port = free_port()
    result = sledfleet(
        "sink",
        SLEDFLEET_DATABASE_URL=migrated_dsn,
        SLEDFLEET_KAFKA_BOOTSTRAP=f"127.0.0.1:{port}",
        SLEDFLEET_SINK_KAFKA_WAIT_S="2",
        SLEDFLEET_SINK_METRICS_PORT="0",
    )
    assert result.returncode == 2
    line = one_error_line(result, "sink")
    assert line.startswith(f"sledfleet sink: SLEDFLEET_KAFKA_BOOTSTRAP=127.0.0.1:{port}: ")
    assert "Kafka not reachable after 2 s" in line
    assert "fix: start Kafka (services/start kafka)" in line
    assert result.stderr.count("waiting for Kafka") == 1, result.stderr


def test_sink_waiting_for_kafka_stops_on_sigterm(migrated_dsn: str, tmp_path: Path) -> None:
    log_path = tmp_path / "sink.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "edge.cli", "sink"],
            env={
                **os.environ,
                "SLEDFLEET_DATABASE_URL": migrated_dsn,
                "SLEDFLEET_KAFKA_BOOTSTRAP": f"127.0.0.1:{free_port()}",
                "SLEDFLEET_SINK_KAFKA_WAIT_S": "600",
                "SLEDFLEET_SINK_METRICS_PORT": "0",
            },
            cwd=REPO_ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_until(lambda: "waiting for Kafka" in log_path.read_text(), 60, "the Kafka wait")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0  # a deadline: without the fix it waits 600 s
        assert "stopped before Kafka was reachable" in log_path.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
