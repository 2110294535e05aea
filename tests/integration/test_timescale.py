"""The TimescaleDB-on-WASM server (services/start pglite) runs TimescaleDB SQL through
psycopg: extension, hypertable, COPY FROM STDIN, time_bucket."""

from __future__ import annotations

import datetime as dt

import psycopg
import pytest
from psycopg import sql

pytestmark = pytest.mark.timescale


def test_hypertable_copy_and_time_bucket(timescale_dsn: str, unique: str) -> None:
    table = sql.Identifier(f"frames_{unique}")
    t0 = dt.datetime(2026, 1, 5, tzinfo=dt.UTC)
    with psycopg.connect(timescale_dsn, autocommit=True, prepare_threshold=None) as conn:
        conn.execute("SET search_path TO public")  # the session is shared: be explicit
        conn.execute("CREATE EXTENSION IF NOT EXISTS timescaledb")
        conn.execute(
            sql.SQL(
                "CREATE TABLE {} (ts timestamptz NOT NULL, machine_id text, force_n float8)"
            ).format(table)
        )
        try:
            created = conn.execute(
                "SELECT create_hypertable(%s::regclass, by_range('ts'))", (f"frames_{unique}",)
            ).fetchone()
            assert created is not None
            with conn.cursor().copy(
                sql.SQL("COPY {} (ts, machine_id, force_n) FROM STDIN").format(table)
            ) as copy:
                for i in range(7200):
                    copy.write_row((t0 + dt.timedelta(seconds=i), "m1", float(i)))
            buckets = conn.execute(
                sql.SQL(
                    "SELECT time_bucket('1 hour', ts) AS b, count(*) FROM {} GROUP BY b ORDER BY b"
                ).format(table)
            ).fetchall()
            assert [(b.astimezone(dt.UTC), n) for b, n in buckets] == [
                (t0, 3600),
                (t0 + dt.timedelta(hours=1), 3600),
            ]
            hypertables = conn.execute(
                "SELECT count(*) FROM timescaledb_information.hypertables"
                " WHERE hypertable_name = %s",
                (f"frames_{unique}",),
            ).fetchone()
            assert hypertables == (1,)
        finally:
            conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(table))
