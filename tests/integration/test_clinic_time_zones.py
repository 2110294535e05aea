"""Clinic-local calendars end to end: the registry's zone (validated by the database), the
views' local days and ISO weeks on plain PostgreSQL, ``sledfleet db set-clinic-tz``
publishing to the clinics topic, and the real stream worker putting a Sydney clinic's
Monday 08:00 session into that Monday's ISO week. (The TimescaleDB flavour's views are
compared with these in test_timescale_storage.py, with clinics in Sydney and Los Angeles.)
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
import pytest
from psycopg import sql
from storage_support import migrated_database
from stream_support import SLEDFLEET, Worker, produce, read_topic, setup_topics, wait_until

from edge import contract
from edge.settings import KafkaSettings
from storage import tenants
from storage.rows import record_row
from storage.writer import Batch, Writer
from stream.clinic_zones import parse
from tests.unit.stream.core.test_adherence import rx, session

pytestmark = pytest.mark.integration

SYDNEY = "Australia/Sydney"
# Monday 2026-03-02 08:00 in Sydney (AEDT, UTC+11) is Sunday 21:00 UTC: ISO week 2026-W09
# in UTC, 2026-W10 in Sydney.
MONDAY_0800_SYDNEY_NS = int(dt.datetime(2026, 3, 2, 8, tzinfo=ZoneInfo(SYDNEY)).timestamp()) * 10**9


def session_at(clinic: str, patient: str, start_ns: int) -> dict[str, Any]:
    s = session(dt.date(2026, 3, 2), f"s-{patient}", clinic_id=clinic, patient_id=patient)
    s.update(start_ns=start_ns, end_ns=start_ns + 3600 * 10**9, prescription_id=f"rx-{patient}")
    return s


def prescription(clinic: str, patient: str) -> dict[str, Any]:
    r = rx(start="2026-02-16", end=None)
    r.update(clinic_id=clinic, patient_id=patient, prescription_id=f"rx-{patient}")
    return r


def cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [SLEDFLEET, "db", *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture
def db(admin_dsn: str) -> Iterator[Any]:
    with migrated_database(admin_dsn) as d:
        yield d


# --- the registry and the views (plain PostgreSQL) ----------------------------------------
def test_views_bucket_by_the_clinic_local_day_and_week(db: Any) -> None:
    tag = uuid.uuid4().hex[:6]
    syd, utc = f"syd{tag}", f"utc{tag}"
    recs = [session_at(c, f"p{c}", MONDAY_0800_SYDNEY_NS) for c in (syd, utc)]
    with psycopg.connect(db.owner, autocommit=True) as conn:
        b = Batch()
        for r in recs:
            b.add(*record_row(r))
        Writer(conn, "postgres").write(b)  # registers both clinics (UTC by default)
        conn.execute(
            "UPDATE sledfleet.clinics SET time_zone = %s WHERE clinic_id = %s", (SYDNEY, syd)
        )
        conn.execute("REFRESH MATERIALIZED VIEW sledfleet.agg_patient_15m")
        conn.execute("REFRESH MATERIALIZED VIEW sledfleet.agg_clinic_15m")

        def local(view: str, col: str, clinic: str) -> tuple[Any, ...]:
            query = sql.SQL(
                "SELECT {} AT TIME ZONE c.time_zone, v.sessions FROM {} v "
                "JOIN sledfleet.clinics c USING (clinic_id) WHERE clinic_id = %s"
            ).format(sql.Identifier(col), sql.Identifier("sledfleet", view))
            row = conn.execute(query, (clinic,)).fetchall()
            assert len(row) == 1, row
            return tuple(row[0])

        monday, sunday = dt.datetime(2026, 3, 2), dt.datetime(2026, 3, 1)
        assert local("v_patient_daily", "day", syd) == (monday, 1)
        assert local("v_patient_daily", "day", utc) == (sunday, 1)
        assert local("v_clinic_daily", "day", syd) == (monday, 1)
        assert local("v_patient_weekly", "week", syd) == (monday, 1)
        assert local("v_patient_weekly", "week", utc) == (dt.datetime(2026, 2, 23), 1)
        weeks = dict(
            conn.execute(
                "SELECT clinic_id, iso_week FROM sledfleet.v_patient_weekly "
                "WHERE clinic_id = ANY(%s)",
                ([syd, utc],),
            ).fetchall()
        )
        assert weeks == {syd: "2026-W10", utc: "2026-W09"}
        # a zone change takes effect at once, without a refresh
        conn.execute("UPDATE sledfleet.clinics SET time_zone = 'UTC' WHERE clinic_id = %s", (syd,))
        assert local("v_patient_daily", "day", syd) == (sunday, 1)
        assert conn.execute(
            "SELECT time_zone FROM sledfleet.v_clinics WHERE clinic_id = %s", (syd,)
        ).fetchone() == ("UTC",)


def test_the_registry_refuses_zones_the_server_does_not_know(db: Any) -> None:
    with psycopg.connect(db.owner, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO sledfleet.clinics (clinic_id, time_zone) VALUES ('ok', %s)", (SYDNEY,)
        )
        assert (
            conn.execute(
                "SELECT time_zone FROM sledfleet.clinics WHERE clinic_id = 'new'"
            ).fetchone()
            is None
        )
        conn.execute("INSERT INTO sledfleet.clinics (clinic_id) VALUES ('new')")
        assert conn.execute(
            "SELECT time_zone FROM sledfleet.clinics WHERE clinic_id = 'new'"
        ).fetchone() == ("UTC",)
        for bad in ("Mars/Olympus", "UTC+3", "EST5EDT,M3.2.0,M11.1.0", ""):
            with pytest.raises(psycopg.errors.CheckViolation):
                conn.execute(
                    "UPDATE sledfleet.clinics SET time_zone = %s WHERE clinic_id = 'ok'", (bad,)
                )


# --- the CLI and the clinics topic ------------------------------------------------------------
def test_set_clinic_tz_writes_the_registry_then_the_topic(
    db: Any, kafka_settings: KafkaSettings
) -> None:
    setup_topics(kafka_settings)
    env = {
        "SLEDFLEET_DATABASE_URL": db.owner,
        "SLEDFLEET_KAFKA_BOOTSTRAP": kafka_settings.bootstrap,
        "SLEDFLEET_KAFKA_TOPIC_PREFIX": kafka_settings.topic_prefix,
    }
    bad = cli(env, "set-clinic-tz", "c1", "Europe/Atlantis")
    assert bad.returncode == 2, bad.stderr
    assert "Europe/Atlantis" in bad.stderr
    ok = cli(env, "set-clinic-tz", "c1", "Europe/Berlin")
    assert ok.returncode == 0, ok.stderr
    again = cli(env, "set-clinic-tz", "c1", SYDNEY)
    assert again.returncode == 0, again.stderr
    with psycopg.connect(db.owner) as conn:
        assert conn.execute(
            "SELECT time_zone FROM sledfleet.clinics WHERE clinic_id = 'c1'"
        ).fetchone() == (SYDNEY,)
    topic = kafka_settings.topic_prefix + contract.KAFKA_CLINICS
    got = [parse(k, v) for k, v in read_topic(kafka_settings, topic)]
    assert [(r["clinic_id"], r["time_zone"]) for r in got] == [
        ("c1", "Europe/Berlin"),
        ("c1", SYDNEY),
    ]
    assert got[0]["updated_at_ns"] < got[1]["updated_at_ns"]


def test_add_clinic_with_a_zone_creates_role_registry_row_and_topic_record(
    db: Any, kafka_settings: KafkaSettings
) -> None:
    setup_topics(kafka_settings)
    clinic = f"tz{uuid.uuid4().hex[:8]}"  # roles are cluster-wide: a unique id
    env = {
        "SLEDFLEET_DATABASE_URL": db.admin,  # creating roles needs CREATEROLE
        "SLEDFLEET_KAFKA_BOOTSTRAP": kafka_settings.bootstrap,
        "SLEDFLEET_KAFKA_TOPIC_PREFIX": kafka_settings.topic_prefix,
        "SLEDFLEET_ROLE_PASSWORD": "not-a-secret-test-only",
    }
    assert cli(env, "add-clinic", clinic, "--tz", "Nowhere/Atlantis").returncode == 2
    try:
        done = cli(env, "add-clinic", clinic, "--tz", "Europe/Berlin")
        assert done.returncode == 0, done.stderr
        again = cli(env, "add-clinic", clinic)  # no --tz: an existing clinic keeps its zone
        assert again.returncode == 0, again.stderr
        with psycopg.connect(db.admin) as conn:
            assert conn.execute(
                "SELECT time_zone FROM sledfleet.clinics WHERE clinic_id = %s", (clinic,)
            ).fetchone() == ("Europe/Berlin",)
        topic = kafka_settings.topic_prefix + contract.KAFKA_CLINICS
        got = [parse(k, v) for k, v in read_topic(kafka_settings, topic)]
        assert [(r["clinic_id"], r["time_zone"]) for r in got] == [(clinic, "Europe/Berlin")] * 2
    finally:
        role = tenants.clinic_role_name(clinic)
        with psycopg.connect(db.admin, autocommit=True) as admin:
            if admin.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone():
                admin.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(role)))
                admin.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))


# --- through the real worker ------------------------------------------------------------------
def test_worker_puts_a_sydney_monday_morning_session_into_that_monday_week(
    db: Any, kafka_settings: KafkaSettings, tmp_path: Path
) -> None:
    kafka = kafka_settings
    setup_topics(kafka)
    env = {
        "SLEDFLEET_DATABASE_URL": db.owner,
        "SLEDFLEET_KAFKA_BOOTSTRAP": kafka.bootstrap,
        "SLEDFLEET_KAFKA_TOPIC_PREFIX": kafka.topic_prefix,
    }
    done = cli(env, "set-clinic-tz", "syd", SYDNEY)
    assert done.returncode == 0, done.stderr
    # "elsewhere" is in no registry and on no topic: UTC
    rxs = [prescription("syd", "p-syd"), prescription("elsewhere", "p-else")]
    sessions = [
        session_at(c, p, MONDAY_0800_SYDNEY_NS)
        for c, p in (("syd", "p-syd"), ("elsewhere", "p-else"))
    ]
    p = kafka.topic_prefix
    produce(
        kafka,
        [],
        [
            (p + contract.KAFKA_PRESCRIPTIONS, r["patient_id"].encode(), contract.encode(r))
            for r in rxs
        ]
        + [(p + contract.KAFKA_SESSIONS, b"m1", contract.encode(s)) for s in sessions],
    )
    worker = Worker(kafka, app_id="sfcal", workdir=tmp_path, name="cal").start()
    adherence_topic = p + contract.KAFKA_ADHERENCE

    def latest() -> dict[tuple[str, str], dict[str, Any]]:
        assert worker.alive(), worker.log_text()[-3000:]
        rows = [contract.decode(v) for _, v in read_topic(kafka, adherence_topic)]
        return {(r["patient_id"], r["iso_week"]): r for r in rows}

    try:

        def attended(patient: str, week: str, zone: str) -> bool:
            r = latest().get((patient, week))
            return r is not None and r["attended"] == 1 and r["time_zone"] == zone

        wait_until(lambda: attended("p-syd", "2026-W10", SYDNEY), 120, "Sydney's W10 row")
        wait_until(lambda: attended("p-else", "2026-W09", "UTC"), 60, "the UTC clinic's W09 row")
        rows = latest()
        assert rows[("p-syd", "2026-W10")]["week_start"] == "2026-03-02"
        assert rows[("p-syd", "2026-W09")]["attended"] == 0
        assert rows[("p-else", "2026-W09")]["week_start"] == "2026-02-23"
        # the clinic moves to UTC: the worker re-buckets the patient's history on its own
        done = cli(env, "set-clinic-tz", "syd", "UTC")
        assert done.returncode == 0, done.stderr
        wait_until(lambda: attended("p-syd", "2026-W09", "UTC"), 60, "Sydney re-bucketed in UTC")
        assert all(r["time_zone"] == "UTC" for (pt, w), r in latest().items() if w < "2026-W10")
    finally:
        code = worker.stop()
    assert code == 0, worker.log_text()[-3000:]
