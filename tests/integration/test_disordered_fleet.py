"""Issue 12, "a disordered fleet comes out exact": the real pipeline on a fleet with
every kind of disorder a real clinic network has (``edge.simulator.scenarios``):

- a quarter of the machines offline for 1–3 days, replaying their outbox while the rest
  stream live;
- machines at 50, 100 and 200 Hz with frame sizes of 20–100 samples, interleaved on the
  same partitions, some minutes behind the others (network delays, reconnect bursts);
- one device clock hours ahead whose agent reports the offset, one hours behind whose
  agent does not;
- clinics in Europe/Berlin, America/Los_Angeles and Australia/Sydney, clinic hours in
  local time, some sessions crossing local midnight.

Published through real edge agents, the bridge, a stream worker and the sink, the
database must hold every true rep exactly once, every set with its exact rep count, every
session attributed to its patient and adherence exact per clinic-local ISO week — also
when the worker is killed with SIGKILL mid-stream and restarted.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from disorder_support import (
    DisorderScore,
    db_counts,
    log,
    pipeline,
    publish_prescriptions,
    register_clinics,
    run_fleet,
    score,
    settle,
)
from psycopg import sql

from edge.settings import KafkaSettings, MqttSettings
from edge.simulator import build_fleet
from edge.simulator.scenarios import disordered_fleet
from tests.integration.conftest import DB_OWNER, DB_OWNER_PASSWORD, dsn_with

pytestmark = [pytest.mark.integration, pytest.mark.slow]

KILL_AT_FRACTION = 0.35
"""The worker is killed once this fraction of the true reps is in the database."""


@pytest.fixture
def database(admin_dsn: str) -> Iterator[tuple[str, str]]:
    """A database of this test alone: (owner DSN, superuser DSN)."""
    name = f"test_dis_{uuid.uuid4().hex[:10]}"
    ident = sql.Identifier(name)
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        conn.execute(
            sql.SQL("CREATE DATABASE {} OWNER {}").format(
                ident, sql.Identifier(DB_OWNER)
            )
        )
    try:
        owner = dsn_with(admin_dsn, dbname=name, user=DB_OWNER, password=DB_OWNER_PASSWORD)
        yield owner, dsn_with(admin_dsn, dbname=name)
    finally:
        with psycopg.connect(admin_dsn, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(ident))


def run_disordered(
    unique: str,
    tmp_path: Path,
    kafka: KafkaSettings,
    database: tuple[str, str],
    kill: bool,
) -> DisorderScore:
    fleet = build_fleet(disordered_fleet(id_prefix=f"d{unique[:6]}"))
    truth = fleet.truth()
    clinics = sorted(fleet.clinic_time_zones)
    with pipeline(kafka, database[0], database[1], tmp_path, clinics) as pipe:
        register_clinics(pipe, fleet.clinic_time_zones)
        publish_prescriptions(pipe, fleet)
        killed: list[int] = []

        def maybe_kill() -> None:
            if not kill or killed:
                return
            reps = db_counts(pipe.dsn)[1]
            if reps >= KILL_AT_FRACTION * len(truth["reps"]):
                log(f"kill -9 of the worker at {reps} reps in the database")
                pipe.worker.kill9()
                killed.append(reps)
                pipe.worker.start()

        stats = run_fleet(pipe, fleet, during=maybe_kill)
        assert stats.undelivered_rows == 0, stats
        assert not stats.source_errors, stats.source_errors
        if kill and not killed:  # the fleet was faster than the pipeline: kill it now
            pipe.worker.kill9()
            killed.append(db_counts(pipe.dsn)[1])
            pipe.worker.start()
        counts = settle(pipe, truth)
        result = score(pipe.dsn, truth, pipe.zones_registered)
    log(f"disordered fleet{' (kill -9)' if kill else ''}: {result.line()}; db {counts}")
    for problem in result.problems:
        log(f"  {problem}")
    if kill:
        assert killed, "the worker was never killed"
    return result


def assert_exact(result: DisorderScore) -> None:
    assert result.truth_reps > 300
    assert result.zones_registered, "sledfleet db add-clinic has no --tz"
    assert result.reps_extra == 0, result.line()
    assert result.reps_exact == result.truth_reps, result.line()
    assert result.sets_exact == result.truth_sets, result.line()
    assert result.sessions_attributed == result.truth_sessions, result.line()
    assert result.adherence_exact == result.adherence_rows, result.line()


def test_a_disordered_fleet_comes_out_exact(
    unique: str,
    tmp_path: Path,
    kafka_settings: KafkaSettings,
    mqtt_settings: MqttSettings,
    database: tuple[str, str],
) -> None:
    assert_exact(run_disordered(unique, tmp_path, kafka_settings, database, kill=False))


def test_a_disordered_fleet_comes_out_exact_through_a_worker_kill(
    unique: str,
    tmp_path: Path,
    kafka_settings: KafkaSettings,
    mqtt_settings: MqttSettings,
    database: tuple[str, str],
) -> None:
    assert_exact(run_disordered(unique, tmp_path, kafka_settings, database, kill=True))
