"""The sink on real Kafka and PostgreSQL: records in, rows out, duplicates and poison."""

from __future__ import annotations

import base64
import json
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from edge.contract import dead_letter, encode
from edge.settings import KafkaSettings
from storage import queries
from storage.metrics import Metrics
from storage.sink import Sink, SinkSettings
from storage.synth import Fleet, records
from tests.integration.storage_support import (
    count,
    kafka_topics,
    migrated_database,
    produce,
    read_topic,
    short_id,
    wait_until,
)

pytestmark = pytest.mark.integration

FLEET = Fleet(clinics=2, machines_per_clinic=2, patients_per_clinic=3, weeks=3, lapse_patient=1)
TABLE_OF_KIND = {
    "rep": "reps",
    "set": "sets",
    "session": "sessions",
    "adherence": "adherence_weekly",
    "alert": "alerts",
    "machine_status": "machine_status",
    "prescription": "prescriptions",
}


def poison() -> list[tuple[str, bytes]]:
    rec = next(r for r in records(FLEET) if r["kind"] == "rep")
    alert = next(r for r in records(FLEET) if r["kind"] == "alert")
    missing = {k: v for k, v in rec.items() if k != "mcv_ms"}
    return [
        ("sledfleet.reps", b"{not json"),
        ("sledfleet.reps", encode({**rec, "clinic_id": "c1'); DROP TABLE sledfleet.reps; --"})),
        ("sledfleet.reps", encode(missing)),
        ("sledfleet.sets", encode({**rec, "kind": "set", "set_no": "one"})),
        ("sledfleet.alerts", encode({**alert, "message": "nul\x00byte"})),
        ("sledfleet.sessions", encode({**rec, "kind": "session", "v": 99})),
    ]


@pytest.fixture(scope="module")
def db(admin_dsn: str) -> Iterator[Any]:
    with migrated_database(admin_dsn) as d:
        yield d


def run_sink(dsn: str, kafka: Any, group: str) -> tuple[Sink, threading.Event, threading.Thread]:
    settings = SinkSettings(
        group_id=group, metrics_port=0, max_wait_ms=300, refresh_s=0, max_records=700
    )
    sink = Sink(dsn, settings, kafka, Metrics())
    stop = threading.Event()
    thread = threading.Thread(target=sink.run, args=(stop,), daemon=True)
    thread.start()
    return sink, stop, thread


def test_records_in_rows_out_exactly_once_with_poison_dead_lettered(
    db: Any, kafka_settings: KafkaSettings
) -> None:
    recs = list(records(FLEET))
    expected = Counter(r["kind"] for r in recs)
    bad = poison()
    with kafka_topics(kafka_settings) as kafka:
        produce(kafka, recs + recs[: len(recs) // 3], bad)  # a third sent twice
        sink, stop, thread = run_sink(db.owner, kafka, f"g{short_id()}")
        try:
            wait_until(
                lambda: (
                    count(db.owner, "SELECT count(*) FROM sledfleet.reps") == expected["rep"]
                    and sink.metrics.get("dead_letters_total", reason="bad_id") == 1
                ),
                90,
                "all reps stored and the poison dead-lettered",
            )
            wait_until(
                lambda: (
                    sum(sink.metrics.get("records_in_total", topic=t) for t in sink.parsers)
                    >= len(recs) * 4 // 3 + len(bad)
                ),
                60,
                "every record consumed",
            )
            # everything is sent again: nothing changes
            produce(kafka, recs)
            wait_until(
                lambda: (
                    sum(sink.metrics.get("records_in_total", topic=t) for t in sink.parsers)
                    >= len(recs) * 7 // 3 + len(bad)
                ),
                90,
                "the replay consumed",
            )
        finally:
            stop.set()
            thread.join(30)
        for kind, n in expected.items():
            assert count(db.owner, f"SELECT count(*) FROM sledfleet.{TABLE_OF_KIND[kind]}") == n
        dead = [json.loads(v) for v in read_topic(kafka, "sledfleet.deadletter")]
        assert len(dead) == len(bad)
        assert {d["source"] for d in dead} == {"sink"}
        assert Counter(d["reason"] for d in dead) == Counter(
            {
                "malformed_json": 1,
                "bad_id": 1,
                "missing_field": 1,
                "bad_field": 2,
                "unknown_version": 1,
            }
        )
        assert {base64.b64decode(d["payload_b64"]) for d in dead} == {raw for _, raw in bad}

    with psycopg.connect(db.owner, autocommit=True) as conn:
        assert conn.execute("SELECT count(*) FROM sledfleet.clinics").fetchone() == (2,)
        assert conn.execute("SELECT count(*) FROM sledfleet.machines").fetchone() == (4,)
        assert conn.execute("SELECT count(*) FROM sledfleet.patients").fetchone() == (6,)
        m = conn.execute(
            "SELECT online, agent_version, firmware, config_version, last_seen IS NOT NULL "
            "FROM sledfleet.machines WHERE machine_id = 'c1-m1'"
        ).fetchone()
        assert m == (True, "0.1.0", "fw-1.4", 3, True)
        queries.refresh(conn, "postgres")
        weekly = conn.execute(
            "SELECT patient_id, sum(sessions)::int FROM v_patient_weekly GROUP BY 1 ORDER BY 1"
        ).fetchall()
        # 3 weeks x 2 sessions, except the lapse patient (weeks 2-3 skipped: 2 sessions left)
        assert dict(weekly) == {
            f"c{c}-p{p}": (4 if p == 2 else 6) for c in (1, 2) for p in (1, 2, 3)
        }
        daily = conn.execute("SELECT sum(reps)::int FROM v_clinic_daily").fetchone()
        assert daily == (expected["rep"],)
        hourly = conn.execute("SELECT sum(reps)::int FROM v_machine_hourly").fetchone()
        assert hourly == (expected["rep"],)
        assert conn.execute("SELECT count(*) FROM v_alerts_open").fetchone() == (0,)  # old
        assert conn.execute("SELECT count(*) FROM v_alerts").fetchone() == (2,)  # one per clinic


def test_frames_events_state_and_dead_letter_topics(db: Any, kafka_settings: KafkaSettings) -> None:
    now_ns = time.time_ns()
    frames = [
        {
            "v": 1,
            "clinic_id": "fc1",
            "machine_id": "fm1",
            "seq": s,
            "session_id": None,
            "t0_ns": now_ns - (100 - s) * 10**9,
            "rate_hz": 100.0,
            "load_kg": 40.0,
            "position_mm": [float(i) for i in range(20)],
            "force_left_n": [1.0] * 19 + [None],
            "force_right_n": [2.0] * 20,
            "replayed": s % 2 == 0,
        }
        for s in range(50)
    ]
    old_frame = {**frames[0], "seq": 999, "t0_ns": now_ns - 30 * 86400 * 10**9}
    event = {
        "v": 1,
        "clinic_id": "fc1",
        "machine_id": "fm1",
        "type": "fault",
        "event_id": str(uuid.uuid4()),
        "seq": 7,
        "ts_ns": now_ns,
        "code": "flat_channel",
        "detail": "left load cell flat",
    }
    birth = {
        "v": 1,
        "clinic_id": "fc1",
        "machine_id": "fm1",
        "status": "online",
        "ts_ns": now_ns,
        "rate_hz": 100.0,
        "model": "HS-200",
        "serial": "SN1",
        "agent_version": "0.2.0",
        "firmware": "fw-2",
    }
    letter = dead_letter(
        "bridge", "sledfleet/v1/fc1/fm1/telemetry", b"junk", "malformed_json", "x", now_ns
    )
    raw = [("sledfleet.telemetry", encode(f)) for f in [*frames, old_frame, *frames[:10]]]
    raw += [
        ("sledfleet.events", encode(event)),
        ("sledfleet.state", encode(birth)),
        ("sledfleet.deadletter", letter),
        ("sledfleet.telemetry", b'{"v":1}'),
    ]
    with kafka_topics(kafka_settings) as kafka:
        produce(kafka, [], raw)
        settings = SinkSettings(
            group_id=f"g{short_id()}", metrics_port=0, max_wait_ms=300, refresh_s=0, frames=True
        )
        sink = Sink(db.owner, settings, kafka, Metrics())
        stop = threading.Event()
        thread = threading.Thread(target=sink.run, args=(stop,), daemon=True)
        thread.start()
        try:
            wait_until(
                lambda: (
                    sum(sink.metrics.get("records_in_total", topic=t) for t in sink.parsers)
                    >= len(raw)
                ),
                60,
                "all consumed",
            )
            wait_until(
                lambda: count(db.owner, "SELECT count(*) FROM sledfleet.frames") == 50,
                30,
                "frames stored",
            )
        finally:
            stop.set()
            thread.join(30)
        dead = [json.loads(v) for v in read_topic(kafka, "sledfleet.deadletter")]
    assert [d["reason"] for d in dead if d["source"] == "sink"] == ["bad_id"]
    assert sink.metrics.get("frames_expired_total") == 1
    with psycopg.connect(db.owner) as conn:
        row = conn.execute(
            "SELECT force_left_n[20], cardinality(position_mm) FROM sledfleet.frames WHERE seq = 3"
        ).fetchone()
        assert row == (None, 20)
        assert conn.execute("SELECT type, code FROM sledfleet.machine_events").fetchall() == [
            ("fault", "flat_channel")
        ]
        # the payload is the event as a JSON object, not a JSON string holding it
        assert conn.execute(
            "SELECT jsonb_typeof(payload), payload ->> 'detail', (payload ->> 'seq')::int "
            "FROM sledfleet.machine_events"
        ).fetchall() == [("object", "left load cell flat", 7)]
        assert conn.execute(
            "SELECT model, serial, agent_version, firmware, online FROM sledfleet.machines "
            "WHERE machine_id = 'fm1'"
        ).fetchone() == ("HS-200", "SN1", "0.2.0", "fw-2", True)
        assert conn.execute(
            "SELECT source, reason FROM sledfleet.dead_letters WHERE source = 'bridge'"
        ).fetchall() == [("bridge", "malformed_json")]
        assert conn.execute(
            "SELECT count(*) FROM v_fleet_machines WHERE faults_7d = 1"
        ).fetchone() == (1,)
