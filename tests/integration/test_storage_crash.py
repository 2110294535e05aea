"""Exactly once in effect after kill -9 of the sink mid-batch and across a PostgreSQL
restart (a PRIVATE instance: the shared server is never restarted)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from edge.settings import KafkaSettings
from storage.migrate import migrate
from storage.synth import Fleet, records
from tests.integration.servers import PrivatePostgres
from tests.integration.storage_support import (
    SinkProcess,
    count,
    kafka_topics,
    migrated_database,
    produce,
    short_id,
    wait_until,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]

BIG = Fleet(clinics=3, machines_per_clinic=2, patients_per_clinic=6, weeks=8, reps=10)
TABLES = {
    "rep": "reps",
    "set": "sets",
    "session": "sessions",
    "machine_status": "machine_status",
    "adherence": "adherence_weekly",
}


def assert_exact(dsn: str, expected: Counter[str]) -> None:
    for kind, table in TABLES.items():
        assert count(dsn, f"SELECT count(*) FROM sledfleet.{table}") == expected[kind], table
    # natural keys are unique, so equal counts mean every record stored exactly once
    assert (
        count(
            dsn,
            "SELECT count(*) FROM (SELECT DISTINCT machine_id, session_id, set_no, "
            "rep_no FROM sledfleet.reps) k",
        )
        == expected["rep"]
    )


@pytest.fixture
def db(admin_dsn: str) -> Iterator[Any]:
    with migrated_database(admin_dsn) as d:
        yield d


def test_kill_9_mid_batch_then_restart_is_exactly_once(
    db: Any, kafka_settings: KafkaSettings, tmp_path: Path
) -> None:
    recs = list(records(BIG))
    expected = Counter(r["kind"] for r in recs)
    group = f"g{short_id()}"
    env = {
        "SLEDFLEET_SINK_MAX_RECORDS": "4000",
        "SLEDFLEET_SINK_MAX_WAIT_MS": "2000",
        "SLEDFLEET_SINK_REFRESH_S": "0",
    }
    with kafka_topics(kafka_settings) as kafka:
        produce(kafka, recs)
        sink = SinkProcess(db.owner, kafka, group, tmp_path, env).start()
        try:
            wait_until(
                lambda: count(db.owner, "SELECT count(*) FROM sledfleet.reps") > 0,
                60,
                "the first batch committed",
            )
            sink.kill()  # SIGKILL: no cleanup, no offset commit of the batch in flight
        finally:
            if sink.proc and sink.proc.poll() is None:
                sink.kill()
        at_kill = count(db.owner, "SELECT count(*) FROM sledfleet.reps")
        assert at_kill < expected["rep"], "killed too late to be mid-stream"
        restarted = SinkProcess(db.owner, kafka, group, tmp_path, env).start()
        try:
            wait_until(
                lambda: (
                    count(db.owner, "SELECT count(*) FROM sledfleet.reps") >= expected["rep"]
                    and count(db.owner, "SELECT count(*) FROM sledfleet.machine_status")
                    >= expected["machine_status"]
                ),
                120,
                f"all records after the restart ({restarted.log()})",
            )
        finally:
            assert restarted.stop() == 0, restarted.log()
    assert_exact(db.owner, expected)


def test_postgres_restart_pauses_the_sink_and_resumes_without_loss(
    kafka_settings: KafkaSettings, tmp_path: Path
) -> None:
    recs = list(records(Fleet(clinics=2, machines_per_clinic=2, patients_per_clinic=3, weeks=6)))
    half = len(recs) // 2
    expected = Counter(r["kind"] for r in recs)
    with PrivatePostgres() as pg, kafka_topics(kafka_settings) as kafka:
        with psycopg.connect(pg.dsn, autocommit=True) as conn:
            migrate(conn)
        env = {
            "SLEDFLEET_SINK_MAX_WAIT_MS": "300",
            "SLEDFLEET_SINK_BACKOFF_MAX_S": "1",
            "SLEDFLEET_SINK_REFRESH_S": "1",
        }
        sink = SinkProcess(pg.dsn, kafka, f"g{short_id()}", tmp_path, env).start()
        try:
            produce(kafka, recs[:half])
            wait_until(lambda: sink.health() == 200, 60, "sink healthy")
            wait_until(
                lambda: (
                    count(pg.dsn, "SELECT count(*) FROM sledfleet.reps")
                    == Counter(r["kind"] for r in recs[:half])["rep"]
                ),
                60,
                "first half",
            )
            pg.stop()
            produce(kafka, recs[half:])
            wait_until(lambda: sink.health() == 503, 60, "sink reports the outage")
            assert sink.proc is not None
            assert sink.proc.poll() is None, sink.log()
            pg.start()
            wait_until(
                lambda: (
                    count(pg.dsn, "SELECT count(*) FROM sledfleet.machine_status")
                    == expected["machine_status"]
                    and count(pg.dsn, "SELECT count(*) FROM sledfleet.reps") == expected["rep"]
                ),
                120,
                f"everything after the restart ({sink.log()})",
            )
            wait_until(lambda: sink.health() == 200, 30, "sink healthy again")
        finally:
            assert sink.stop() == 0, sink.log()
        assert_exact(pg.dsn, expected)
