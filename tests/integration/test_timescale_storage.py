"""The TimescaleDB flavour on TimescaleDB-on-WASM (pglite): the full schema with
hypertables, continuous aggregates and policies; each policy job run once; the dashboard
views answer exactly as on plain PostgreSQL for the same records.

pglite has ONE backend session shared by every connection (and by other helpers' tests):
one connection at a time, no prepared statements, DISCARD ALL first, and rows isolated by
clinic ids unique to this test."""

from __future__ import annotations

import datetime as dt
import math
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from psycopg import sql

from storage import queries
from storage.migrate import migrate
from storage.rows import record_row
from storage.synth import Fleet, records
from storage.writer import Batch, Writer
from tests.integration.storage_support import migrated_database

pytestmark = [pytest.mark.timescale, pytest.mark.integration]

# Starts ~6 months back: some chunks are older than the 90-day compression threshold.
FLEET = Fleet(
    clinics=2,
    machines_per_clinic=2,
    patients_per_clinic=3,
    weeks=26,
    sets=2,
    reps=4,
    start=dt.date.today() - dt.timedelta(weeks=27, days=dt.date.today().weekday()),
    lapse_patient=2,
)
HYPERTABLES = {
    "reps": "30 days",
    "sets": "30 days",
    "sessions": "30 days",
    "machine_status": "7 days",
    "frames": "1 day",
    "machine_events": "30 days",
}
CAGGS = {
    "agg_patient_15m",
    "agg_clinic_15m",
    "agg_machine_hourly",
    "agg_machine_status_hourly",
}
# clinic-local calendars: one clinic east of UTC (its Monday starts on Sunday, UTC), one west
ZONES = ("Australia/Sydney", "America/Los_Angeles")
# view -> columns that depend on now() or on the write time, not on the data
COMPARED_VIEWS: dict[str, tuple[str, ...]] = {
    "v_patient_daily": (),
    "v_patient_weekly": (),
    "v_clinic_daily": (),
    "v_machine_hourly": (),
    "v_machine_status_hourly": (),
    "v_data_quality": (),
    "v_patient_load_weekly": (),
    "v_sessions": (),
    "v_sets": (),
    "v_patient_adherence": (),
    "v_clinic_adherence": (),
    "v_alerts": ("is_open",),
    "v_alerts_daily": (),
    "v_alerts_open": (),
    "v_machine_status": (),
    "v_prescriptions": ("updated_at",),
    "v_fleet_machines": ("seconds_since_seen",),
    "v_patients": ("first_seen", "days_since_last_session"),
    "v_clinics": ("first_seen",),
}


def tagged_records(tag: str) -> list[dict[str, Any]]:
    out = []
    for original in records(FLEET):
        r = dict(original)
        for key in (
            "clinic_id",
            "machine_id",
            "patient_id",
            "session_id",
            "subject_id",
            "prescription_id",
        ):
            if r.get(key):
                r[key] = f"{tag}{r[key]}"
        out.append(r)
    return out


def batch_of(recs: list[dict[str, Any]]) -> Batch:
    b = Batch()
    for r in recs:
        spec, row = record_row(r)
        b.add(spec, row)
    return b


@pytest.fixture
def ts_conn(timescale_dsn: str) -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(timescale_dsn, autocommit=True, prepare_threshold=None) as conn:
        conn.execute("DISCARD ALL")
        conn.execute("SET search_path = sledfleet, public")
        migrate(conn, "timescale")
        yield conn


def test_full_timescale_schema_hypertables_caggs_policies(ts_conn: psycopg.Connection[Any]) -> None:
    dims = dict(
        ts_conn.execute(
            "SELECT hypertable_name, time_interval::text FROM timescaledb_information.dimensions "
            "WHERE hypertable_schema = 'sledfleet'"
        ).fetchall()
    )
    assert {t: dims.get(t) for t in HYPERTABLES} == HYPERTABLES  # deliberate chunk intervals
    caggs = dict(
        ts_conn.execute(
            "SELECT view_name, materialized_only "
            "FROM timescaledb_information.continuous_aggregates WHERE view_schema = 'sledfleet'"
        ).fetchall()
    )
    assert caggs == dict.fromkeys(CAGGS, False)  # real-time aggregation everywhere
    jobs = ts_conn.execute(
        "SELECT proc_name, hypertable_name FROM timescaledb_information.jobs "
        "WHERE hypertable_schema = 'sledfleet' OR hypertable_name LIKE '_materialized%%'"
    ).fetchall()
    kinds = {(p, h) for p, h in jobs}
    for t in ("reps", "sets", "sessions", "machine_status", "frames", "machine_events"):
        assert ("policy_compression", t) in kinds
    assert ("policy_retention", "frames") in kinds
    assert ("policy_retention", "machine_status") in kinds
    refresh = [h for p, h in jobs if p == "policy_refresh_continuous_aggregate"]
    assert len(refresh) == len(CAGGS)


def _rows(
    conn: psycopg.Connection[Any], view: str, skip: tuple[str, ...], clinics: list[str]
) -> list[tuple[Any, ...]]:
    cols = [
        r[0]
        for r in conn.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = 'sledfleet' "
            "AND table_name = %s ORDER BY ordinal_position",
            (view,),
        ).fetchall()
    ]
    keep = [c for c in cols if c not in skip]
    got = conn.execute(
        sql.SQL("SELECT {} FROM {} WHERE clinic_id = ANY(%s)").format(
            sql.SQL(", ").join(map(sql.Identifier, keep)), sql.Identifier("sledfleet", view)
        ),
        (clinics,),
    ).fetchall()
    rows = [
        tuple(v.astimezone(dt.UTC) if isinstance(v, dt.datetime) else v for v in row) for row in got
    ]
    # order by the exact (non-float) columns; floats are compared with a tolerance
    return sorted(rows, key=lambda r: repr([v for v in r if not isinstance(v, float)]))


def _same(a: list[tuple[Any, ...]], b: list[tuple[Any, ...]]) -> bool:
    """Equal rows; floats equal to 1e-9 relative (partial aggregates sum in another order)."""
    if len(a) != len(b):
        return False
    for ra, rb in zip(a, b, strict=True):
        for x, y in zip(ra, rb, strict=True):
            if isinstance(x, float) and isinstance(y, float):
                if not math.isclose(x, y, rel_tol=1e-9, abs_tol=1e-9):
                    return False
            elif x != y:
                return False
    return True


def set_zones(conn: psycopg.Connection[Any], clinics: list[str]) -> None:
    for clinic, zone in zip(clinics, ZONES, strict=False):
        conn.execute(
            "UPDATE sledfleet.clinics SET time_zone = %s WHERE clinic_id = %s", (zone, clinic)
        )


def test_policies_run_and_views_match_plain_postgres(
    ts_conn: psycopg.Connection[Any], admin_dsn: str
) -> None:
    tag = f"t{uuid.uuid4().hex[:6]}"
    recs = tagged_records(tag)
    clinics = sorted({r["clinic_id"] for r in recs})
    Writer(ts_conn, "timescale", "insert").write(batch_of(recs))
    set_zones(ts_conn, clinics)
    # every policy job once, as the scheduler would (pglite never runs jobs by itself)
    jobs = ts_conn.execute(
        "SELECT job_id, proc_name FROM timescaledb_information.jobs "
        "WHERE proc_name LIKE 'policy_%%' AND proc_name <> 'policy_job_stat_history_retention'"
        " ORDER BY job_id"
    ).fetchall()
    assert len(jobs) >= len(CAGGS) + 10  # + compression (8) and retention (2)
    for job_id, _proc in jobs:
        ts_conn.execute("CALL run_job(%s)", (job_id,))
    compressed = ts_conn.execute(
        "SELECT count(*) FROM timescaledb_information.chunks WHERE hypertable_schema = "
        "'sledfleet' AND hypertable_name = 'reps' AND is_compressed"
    ).fetchone()
    assert compressed is not None
    assert compressed[0] > 0, "the compression policy compressed old reps"
    # records older than the policies' refresh windows: a full refresh (sledfleet db refresh)
    queries.refresh(ts_conn, "timescale")
    # the same records again after compression: upserts into compressed chunks, no change
    Writer(ts_conn, "timescale", "insert").write(batch_of(recs[: len(recs) // 4]))

    with migrated_database(admin_dsn) as db, psycopg.connect(db.owner, autocommit=True) as pg:
        Writer(pg, "postgres").write(batch_of(recs))
        set_zones(pg, clinics)
        queries.refresh(pg, "postgres")
        for view, skip in COMPARED_VIEWS.items():
            ts_rows = _rows(ts_conn, view, skip, clinics)
            pg_rows = _rows(pg, view, skip, clinics)
            assert _same(ts_rows, pg_rows), (view, ts_rows[:3], pg_rows[:3])
            if view not in ("v_alerts_open",):
                assert pg_rows, f"{view} is empty: the comparison proves nothing"
    n = ts_conn.execute(
        "SELECT count(*) FROM sledfleet.reps WHERE clinic_id = ANY(%s)", (clinics,)
    ).fetchone()
    assert n == (sum(r["kind"] == "rep" for r in recs),)
