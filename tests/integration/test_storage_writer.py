"""The batch writer on the real PostgreSQL: optimistic COPY, idempotent fallback, newest
emission wins, registry from machine status."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from storage.rows import record_row
from storage.synth import Fleet, machine_status, records
from storage.writer import Batch, Writer
from tests.integration.storage_support import migrated_database

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def conn(admin_dsn: str) -> Iterator[psycopg.Connection[Any]]:
    with migrated_database(admin_dsn) as db, psycopg.connect(db.owner, autocommit=True) as c:
        yield c


def batch_of(recs: list[dict[str, Any]]) -> Batch:
    b = Batch()
    for r in recs:
        spec, row = record_row(r)
        b.add(spec, row)
    return b


def test_rewrite_is_a_noop_and_newer_emission_wins(conn: psycopg.Connection[Any]) -> None:
    recs = [r for r in records(Fleet(clinics=1, weeks=1)) if r["kind"] in ("rep", "session")]
    writer = Writer(conn, "postgres")
    writer.write(batch_of(recs))
    assert writer.fallbacks == 0
    n = conn.execute("SELECT count(*), sum(load_kg) FROM sledfleet.reps").fetchone()
    writer.write(batch_of(recs))  # replay: unique violation → staging + upsert, no change
    assert writer.fallbacks == 2
    assert conn.execute("SELECT count(*), sum(load_kg) FROM sledfleet.reps").fetchone() == n
    first = next(r for r in recs if r["kind"] == "rep")
    newer = {**first, "load_kg": 99.0, "emitted_at_ns": first["emitted_at_ns"] + 1}
    older = {**first, "load_kg": 11.0, "emitted_at_ns": first["emitted_at_ns"] - 1}
    writer.write(batch_of([newer, first]))  # in-batch duplicates: the newest is kept
    writer.write(batch_of([older]))
    got = conn.execute(
        "SELECT load_kg FROM sledfleet.reps WHERE session_id = %s AND set_no = 1 AND rep_no = 1",
        (first["session_id"],),
    ).fetchall()
    assert got == [(99.0,)]


def test_machine_status_updates_the_registry_in_time_order(conn: psycopg.Connection[Any]) -> None:
    writer = Writer(conn, "postgres")
    t = 1_763_900_000 * 10**9
    late = {**machine_status("c9", "m9", t + 10**9, 5), "status": "offline"}
    early = {**machine_status("c9", "m9", t, 4), "firmware": "fw-old"}
    writer.write(batch_of([late, early]))
    writer.write(batch_of([early]))  # an older report arriving later changes nothing
    row = conn.execute(
        "SELECT online, frames, firmware FROM sledfleet.machines WHERE machine_id = 'm9'"
    ).fetchone()
    assert row == (False, 5, "fw-1.4")


def test_partitions_are_created_for_new_periods(conn: psycopg.Connection[Any]) -> None:
    writer = Writer(conn, "postgres")
    far = 4_000_000_000 * 10**9  # 2096: beyond the partitions the migration created
    writer.write(batch_of([machine_status("c9", "m9", far, 1)]))
    assert conn.execute(
        "SELECT count(*) FROM sledfleet.machine_status WHERE ts_ns = %s", (far,)
    ).fetchone() == (1,)


def test_clinic_adherence_summary_follows_every_batch(conn: psycopg.Connection[Any]) -> None:
    fleet = Fleet(clinics=2, patients_per_clinic=5, weeks=3, lapse_patient=3)
    adherence = [r for r in records(fleet) if r["kind"] == "adherence"]
    writer = Writer(conn, "postgres")
    writer.write(batch_of(adherence[::2]))
    writer.write(batch_of(adherence[1::2]))
    changed = {
        **adherence[0],
        "attended": 0,
        "adherence": 0.0,
        "emitted_at_ns": adherence[0]["emitted_at_ns"] + 1,
    }
    writer.write(batch_of([changed]))
    direct = conn.execute(
        "SELECT week_start, clinic_id, count(*), avg(adherence), "
        "count(*) FILTER (WHERE adherence < 0.5), count(*) FILTER (WHERE adherence >= 1) "
        "FROM sledfleet.adherence_weekly GROUP BY 1, 2 ORDER BY 1, 2"
    ).fetchall()
    summary = conn.execute(
        "SELECT week_start, clinic_id, patients, mean_adherence, patients_below_50, "
        "patients_at_100 FROM v_clinic_adherence ORDER BY 1, 2"
    ).fetchall()
    assert summary == direct
    assert any(row[4] == 1 for row in summary)  # the changed patient-week moved band


def test_maintain_drops_only_partitions_past_retention(conn: psycopg.Connection[Any]) -> None:
    from storage import queries

    conn.execute(
        "SELECT sledfleet.ensure_partitions('frames', now() - interval '20 days', "
        "now() - interval '18 days')"
    )

    def frame_parts() -> int:
        row = conn.execute(
            "SELECT count(*) FROM pg_inherits WHERE inhparent = 'sledfleet.frames'::regclass"
        ).fetchone()
        return int(row[0]) if row else 0

    before = frame_parts()
    dropped = queries.maintain(conn, "postgres")  # also machine_status years past 400 days
    assert before - frame_parts() >= 3
    assert dropped >= before - frame_parts()
    recent = conn.execute(
        "SELECT count(*) FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "WHERE i.inhparent = 'sledfleet.frames'::regclass AND c.relname = %s",
        ("frames_p" + dt.datetime.now(dt.UTC).strftime("%Y%m%d"),),
    ).fetchone()
    assert recent == (1,)
