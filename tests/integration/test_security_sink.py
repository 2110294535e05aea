"""Issue #13 on real Kafka and PostgreSQL: records that claim a machine or patient of
another clinic are dead-lettered by the sink (reason clinic_mismatch), the machine stays
in its clinic, the other clinic's role sees nothing of it, and only the explicit
``sledfleet db move-machine`` moves it, with an audit row."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections import Counter
from typing import Any

import psycopg
import pytest

from edge.settings import KafkaSettings
from storage import tenants
from storage.metrics import Metrics
from storage.sink import Sink, SinkSettings
from storage.synth import Fleet, records
from tests.integration.storage_support import (
    REPO,
    count,
    kafka_topics,
    migrated_database,
    produce,
    read_topic,
    short_id,
    wait_until,
)

pytestmark = pytest.mark.integration

FLEET = Fleet(clinics=2, machines_per_clinic=1, patients_per_clinic=1, weeks=1)


def _injected(recs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    rep = next(r for r in recs if r["kind"] == "rep" and r["machine_id"] == "c1-m1")
    status = next(r for r in recs if r["kind"] == "machine_status" and r["machine_id"] == "c1-m1")
    return [
        # H1: c1's machine claimed by c2 (a new session, so no natural key collides)
        {**rep, "clinic_id": "c2", "session_id": "inj-1", "patient_id": "c2-p1"},
        {**status, "clinic_id": "c2", "ts_ns": status["ts_ns"] + 10**12},
        # c1's patient on c2's machine under c2
        {**rep, "clinic_id": "c2", "machine_id": "c2-m1", "session_id": "inj-2"},
    ]


def _db(dsn: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "edge.cli", "db", "--dsn", dsn, *args],
        capture_output=True, text=True, timeout=60, check=False, cwd=REPO,
    )  # fmt: skip


def test_the_sink_never_moves_a_machine_and_the_admin_move_is_audited(
    admin_dsn: str, kafka_settings: KafkaSettings
) -> None:
    recs = list(records(FLEET))
    with migrated_database(admin_dsn) as db, kafka_topics(kafka_settings) as kafka:
        produce(kafka, recs)
        settings = SinkSettings(group_id=f"g{short_id()}", metrics_port=0, max_wait_ms=300,
                                refresh_s=0)  # fmt: skip
        sink = Sink(db.owner, settings, kafka, Metrics())
        stop = threading.Event()
        thread = threading.Thread(target=sink.run, args=(stop,), daemon=True)
        thread.start()
        try:
            reps = sum(1 for r in recs if r["kind"] == "rep")
            wait_until(
                lambda: count(db.owner, "SELECT count(*) FROM sledfleet.reps") == reps,
                90,
                "the clean history stored",
            )
            produce(kafka, _injected(recs))
            wait_until(
                lambda: sink.metrics.get("dead_letters_total", reason="clinic_mismatch") == 3,
                90,
                "three clinic_mismatch dead letters",
            )
        finally:
            stop.set()
            thread.join(30)
        dead = [json.loads(v) for v in read_topic(kafka, "sledfleet.deadletter")]
        assert Counter(d["reason"] for d in dead) == {"clinic_mismatch": 3}
        assert count(db.owner, "SELECT count(*) FROM sledfleet.reps") == reps

        with psycopg.connect(db.admin, autocommit=True) as conn:
            _, password = tenants.add_clinic(conn, "c2")
            role = tenants.clinic_role_name("c2")
            machine = conn.execute(
                "SELECT clinic_id FROM sledfleet.machines WHERE machine_id = 'c1-m1'"
            ).fetchone()
        assert machine == ("c1",)
        as_c2 = psycopg.conninfo.make_conninfo(db.admin, user=role, password=password)
        with psycopg.connect(as_c2) as conn:
            assert conn.execute("SELECT count(*) FROM v_sessions WHERE session_id LIKE 'inj%'"
                                ).fetchone() == (0,)  # fmt: skip
            machines = conn.execute("SELECT machine_id FROM v_fleet_machines").fetchall()
            assert machines == [("c2-m1",)]

        refused = _db(db.owner, "move-machine", "c1-m1", "c1", "--reason", "noop")
        assert refused.returncode == 1
        assert "already in clinic c1" in refused.stderr
        assert _db(db.owner, "move-machine", "c1-m1", "c9", "--reason", "x").returncode == 1
        bad = _db(db.owner, "move-machine", "c1-m1'; --", "c2", "--reason", "x")
        assert bad.returncode == 2
        moved = _db(db.owner, "move-machine", "c1-m1", "c2", "--reason", "sold to c2")
        assert moved.returncode == 0, moved.stderr
        with psycopg.connect(db.owner, autocommit=True) as conn:
            assert conn.execute(
                "SELECT clinic_id FROM sledfleet.machines WHERE machine_id = 'c1-m1'"
            ).fetchone() == ("c2",)
            audit = conn.execute(
                "SELECT machine_id, from_clinic, to_clinic, moved_by, reason "
                "FROM sledfleet.machine_moves"
            ).fetchall()
        assert audit == [("c1-m1", "c1", "c2", "sledfleet", "sold to c2")]
