"""Migrations on the real PostgreSQL: from empty, re-applied, concurrently."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid

import psycopg
import pytest
from psycopg.types.json import Jsonb

from storage.migrate import discover, migrate, status
from storage.rows import EVENT, event_row
from storage.writer import Batch, Writer
from tests.integration.storage_support import REPO, fresh_database

pytestmark = pytest.mark.integration

DASHBOARD_VIEWS = {
    "v_patient_daily",
    "v_patient_weekly",
    "v_clinic_daily",
    "v_machine_hourly",
    "v_machine_status_hourly",
    "v_machine_status",
    "v_fleet_machines",
    "v_patients",
    "v_patient_adherence",
    "v_clinic_adherence",
    "v_alerts",
    "v_alerts_open",
    "v_alerts_daily",
    "v_data_quality",
    "v_dead_letters_daily",
    "v_sessions",
    "v_sets",
    "v_patient_load_weekly",
    "v_outcomes",
    "v_prescriptions",
    "v_clinics",
    "v_machine_events",
}


def test_migrate_from_empty_then_reapply_is_a_noop(admin_dsn: str) -> None:
    with fresh_database(admin_dsn) as db, psycopg.connect(db.owner, autocommit=True) as conn:
        applied = migrate(conn)
        assert applied == [m.version for m in discover()]
        assert migrate(conn) == []
        st = status(conn)
        assert st.flavour == "postgres"
        assert not st.pending
        assert not st.changed
        views = {
            r[0]
            for r in conn.execute(
                "SELECT table_name FROM information_schema.views WHERE table_schema='sledfleet'"
            )
        }
        assert views >= DASHBOARD_VIEWS
        # every view answers (empty) and every partitioned table got its partitions
        for v in sorted(DASHBOARD_VIEWS):
            conn.execute(f"SELECT * FROM sledfleet.{v} LIMIT 1").fetchall()
        parts = conn.execute(
            "SELECT count(*) FROM pg_inherits WHERE inhparent = 'sledfleet.reps'::regclass"
        ).fetchone()
        assert parts
        assert parts[0] >= 12


def test_cli_status_and_two_concurrent_migrations(admin_dsn: str) -> None:
    with fresh_database(admin_dsn) as db:
        cmd = [sys.executable, "-m", "edge.cli", "db", "--dsn", db.owner, "migrate"]
        procs = [
            subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
            for _ in range(2)
        ]
        outs = [p.communicate(timeout=120)[0].decode() for p in procs]
        assert [p.returncode for p in procs] == [0, 0], outs
        assert sum("up to date" in o for o in outs) == 1, outs
        with psycopg.connect(db.owner) as conn:
            rows = conn.execute(
                "SELECT version, count(*) FROM sledfleet.schema_version GROUP BY 1"
            ).fetchall()
        assert sorted(rows) == [(m.version, 1) for m in discover()]
        st = subprocess.run(
            [sys.executable, "-m", "edge.cli", "db", "--dsn", db.owner, "status"],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        assert "flavour: postgres" in st.stdout
        assert "pending" not in st.stdout


def test_0015_unwraps_event_payloads_stored_as_json_strings(
    admin_dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Before 0015 the sink stored an event's payload as a JSON string holding the object;
    the migration turns such rows into the object and leaves the rest alone."""
    import storage.migrate as m

    every = m.discover()
    monkeypatch.setattr(m, "discover", lambda: [x for x in every if x.version < 15])
    now_ns = time.time_ns()
    events = [
        {"v": 1, "clinic_id": "uc1", "machine_id": "um1", "type": "fault", "seq": i,
         "event_id": str(uuid.uuid4()), "ts_ns": now_ns + i, "code": "flat_channel",
         "detail": f"event {i}"}
        for i in range(2)
    ]  # fmt: skip
    with fresh_database(admin_dsn) as db, psycopg.connect(db.owner, autocommit=True) as conn:
        assert 15 not in migrate(conn)
        batch = Batch()
        wrapped = list(event_row(events[0]))
        wrapped[EVENT.names.index("payload")] = Jsonb(json.dumps(events[0]))  # the old bug
        batch.add(EVENT, tuple(wrapped))
        batch.add(EVENT, event_row(events[1]))
        Writer(conn, "postgres").write(batch)
        q = "SELECT seq, jsonb_typeof(payload), payload FROM sledfleet.machine_events ORDER BY 1"
        assert [r[1] for r in conn.execute(q)] == ["string", "object"]
        monkeypatch.setattr(m, "discover", lambda: every)
        assert migrate(conn) == [x.version for x in every if x.version >= 15]
        assert conn.execute(q).fetchall() == [(0, "object", events[0]), (1, "object", events[1])]
