"""Sink write-path throughput beside a bare psycopg binary COPY of the same rows.

Run: .venv/bin/python benchmarks/sink.py [--rows 200000] [--frames 20000]
Uses a fresh database on the PostgreSQL of SLEDFLEET_DATABASE_ADMIN_URL (dropped at exit).

Per table (reps; raw frames of 100 samples x 3 channels) in the same run:
  bare COPY      rows already built as tuples, binary COPY straight into the target table
                 (the ceiling: no staging, no conflict handling, no registry)
  sink write     storage.writer.Writer.write(): binary COPY into staging + INSERT ... ON
                 CONFLICT on the natural key + registry upserts, one transaction per batch
  sink full      the same from raw Kafka message bytes: JSON decode + validation + write
  sink replay    the same batches written again (all duplicates: the idempotent no-op path)
"""

from __future__ import annotations

import argparse
import math
import os
import time
import uuid
from collections.abc import Callable, Sequence
from typing import Any

import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo

from edge.contract import encode
from storage.migrate import migrate
from storage.routing import parse, topics
from storage.rows import FRAME, REP, TableSpec
from storage.writer import Batch, Writer, ns_to_datetime

ADMIN = os.environ.get(
    "SLEDFLEET_DATABASE_ADMIN_URL", "postgresql://postgres:postgres@127.0.0.1:5433/postgres"
)
T0 = (int(time.time()) - 3 * 86400) * 10**9  # recent: frames are within retention


def rep_record(i: int) -> dict[str, Any]:
    machine, session = i // 100_000, i // 240
    start = T0 + i * 3 * 10**9 // 7
    return {
        "v": 1,
        "kind": "rep",
        "clinic_id": f"c{machine % 100}",
        "machine_id": f"m{machine}",
        "patient_id": f"p{session % 5000}",
        "session_id": f"s{session}",
        "set_no": (i % 240) // 8 + 1,
        "rep_no": i % 8 + 1,
        "valid": True,
        "start_ns": start,
        "top_ns": start + 10**9,
        "end_ns": start + 2 * 10**9,
        "load_kg": 60.0 + i % 7,
        "rom_mm": 401.5,
        "concentric_s": 0.81,
        "eccentric_s": 1.2,
        "tut_s": 2.01,
        "mcv_ms": 0.512,
        "mpv_ms": 0.55,
        "pv_ms": 0.83,
        "time_to_pv_s": 0.36,
        "pv_position_pct": 44.0,
        "mean_force_n": 905.5,
        "peak_force_n": 1251.0,
        "mean_power_w": 463.6,
        "peak_power_w": 1038.3,
        "work_j": 235.4,
        "asi_pct": 5.5,
        "weaker_side": "left",
        "sign_changes": 1,
        "jerk_score": 2.4,
        "dropout_samples": 0,
        "replayed": False,
        "emitted_at_ns": start + 3 * 10**9,
    }


def frame_payload(i: int) -> dict[str, Any]:
    machine = i % 200
    seq = i // 200
    ph = [2 * math.pi * (seq * 100 + k) / 150 for k in range(100)]
    return {
        "v": 1,
        "clinic_id": f"c{machine % 100}",
        "machine_id": f"m{machine}",
        "seq": seq,
        "session_id": f"s{machine}",
        "t0_ns": T0 + seq * 10**9,
        "rate_hz": 100.0,
        "load_kg": 80.0,
        "position_mm": [round(300 + 250 * math.sin(p), 1) for p in ph],
        "force_left_n": [round(600 + 150 * math.cos(p), 1) for p in ph],
        "force_right_n": [round(590 + 140 * math.cos(p), 1) for p in ph],
        "replayed": False,
    }


def bare_copy(
    conn: psycopg.Connection[Any], spec: TableSpec, rows: Sequence[tuple[Any, ...]], batch: int
) -> float:
    """Binary COPY of complete target rows (time columns computed beforehand, untimed)."""
    names = [*spec.names, *(t for t, _ in spec.times)]
    src = [spec.names.index(s) for _, s in spec.times]
    full = [(*r, *(ns_to_datetime(r[i]) for i in src)) for r in rows]
    types = [c.pgtype for c in spec.columns] + ["timestamptz"] * len(src)
    stmt = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT BINARY)").format(
        sql.Identifier("sledfleet", spec.table), sql.SQL(", ").join(map(sql.Identifier, names))
    )
    t0 = time.perf_counter()
    for k in range(0, len(full), batch):
        with conn.transaction(), conn.cursor() as cur, cur.copy(stmt) as copy:
            copy.set_types(types)
            for r in full[k : k + batch]:
                copy.write_row(r)
    return time.perf_counter() - t0


def timed(fn: Callable[[], None]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def bench(
    conn: psycopg.Connection[Any], spec: TableSpec, raws: list[bytes], topic: str, batch: int
) -> list[tuple[str, float]]:
    parser = topics("", frames=True, events=False, state=False, dead_letters=False)[topic]
    rows = [parse(parser, r).row for r in raws]
    n = len(rows)
    truncate = sql.SQL("TRUNCATE {}").format(sql.Identifier("sledfleet", spec.table))
    conn.execute(truncate)
    t_bare = bare_copy(conn, spec, rows, batch)
    conn.execute(truncate)
    writer = Writer(conn, "postgres")

    def write_rows() -> None:
        for k in range(0, n, batch):
            b = Batch()
            b.rows[spec.kind] = rows[k : k + batch]
            writer.write(b)

    t_write = timed(write_rows)
    t_replay = timed(write_rows)
    conn.execute(truncate)

    def full() -> None:
        for k in range(0, n, batch):
            b = Batch()
            b.rows[spec.kind] = [parse(parser, r).row for r in raws[k : k + batch]]
            writer.write(b)

    t_full = timed(full)
    got = conn.execute(
        sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier("sledfleet", spec.table))
    ).fetchone()
    assert got == (n,), got
    return [
        ("bare COPY", n / t_bare),
        ("sink write", n / t_write),
        ("sink full (decode+validate+write)", n / t_full),
        ("sink replay (duplicates)", n / t_replay),
    ]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=200_000, help="rep rows")
    ap.add_argument("--frames", type=int, default=20_000, help="raw frames")
    ap.add_argument("--batch", type=int, default=5000, help="records per transaction")
    args = ap.parse_args()
    name = f"bench_sink_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(ADMIN, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        with psycopg.connect(make_conninfo(ADMIN, dbname=name), autocommit=True) as conn:
            migrate(conn)
            conn.execute("SET synchronous_commit = on")
            reps = [encode(rep_record(i)) for i in range(args.rows)]
            frames = [encode(frame_payload(i)) for i in range(args.frames)]
            # partitions and registry rows exist before timing (first-batch effects aside)
            results = {
                "reps": bench(conn, REP, reps, "sledfleet.reps", args.batch),
                "frames (100 samples x 3)": bench(
                    conn, FRAME, frames, "sledfleet.telemetry", min(args.batch, 2000)
                ),
            }
    finally:
        with psycopg.connect(ADMIN, autocommit=True) as admin:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )
    print(
        f"sink write path vs bare binary COPY ({args.rows} reps, {args.frames} frames, "
        f"batch {args.batch})"
    )
    for table, rows in results.items():
        base = rows[0][1]
        print(f"\n{table}")
        for label, rate in rows:
            print(f"  {label:36s} {rate:>11,.0f} rows/s   {rate / base:6.1%} of bare COPY")
    print("\ntarget: sink write >= 50% of bare COPY")


if __name__ == "__main__":
    main()
