"""Issue 12's disordered fleet through the real pipeline: how exact does it come out?

Runs ``edge.simulator.scenarios.disordered_fleet`` (three time zones, 50/100/200 Hz,
frame sizes 20–100, a quarter of the machines replaying 1–3-day-old backlogs while the
rest stream live, minutes of network delay, one device clock hours ahead with a reported
offset and one hours behind without) through real edge agents, the bridge, one stream
worker and the sink on the local servers (``services/start``), into a fresh database,
and prints the score against the ground truth (``tests/integration/disorder_support.py``):
reps exact, sets exact, sessions attributed, adherence rows exact per clinic-local ISO
week. ``--kill`` kill -9s the worker once a third of the reps are stored. ``--calm`` runs
the same clinics, machines and patients without any disorder (the control: it checks the
harness and the truth, and should come out exact on any working pipeline).

    nice -n 10 .venv/bin/python benchmarks/disorder_score.py [--kill] [--json out.json]

The database and the topics are left for inspection (names printed); ``--drop`` drops
the database afterwards.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
import tempfile
import time
import uuid
from dataclasses import replace
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "integration"))

import psycopg  # noqa: E402
from disorder_support import (  # noqa: E402
    db_counts,
    log,
    pipeline,
    publish_prescriptions,
    register_clinics,
    run_fleet,
    score,
    settle,
)
from psycopg import sql  # noqa: E402
from psycopg.conninfo import make_conninfo  # noqa: E402

from edge.settings import KafkaSettings, load  # noqa: E402
from edge.simulator import build_fleet  # noqa: E402
from edge.simulator.scenarios import calm, disordered_fleet  # noqa: E402

ADMIN_DSN = os.environ.get(
    "SLEDFLEET_DATABASE_ADMIN_URL", "postgresql://postgres:postgres@127.0.0.1:5433/postgres"
)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--kill", action="store_true", help="kill -9 the worker mid-stream")
    p.add_argument("--seed", type=int, default=12)
    p.add_argument("--calm", action="store_true", help="the same fleet without disorder")
    p.add_argument("--json", type=Path, help="write the score here too")
    p.add_argument("--drop", action="store_true", help="drop the database afterwards")
    args = p.parse_args()

    run = uuid.uuid4().hex[:8]
    kafka = replace(load(KafkaSettings), topic_prefix=f"dis{run}.")
    name = f"disorder_{run}"
    with psycopg.connect(ADMIN_DSN, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {} OWNER sledfleet").format(sql.Identifier(name)))
    owner = make_conninfo(ADMIN_DSN, dbname=name, user="sledfleet", password="sledfleet")
    admin = make_conninfo(ADMIN_DSN, dbname=name)
    now = dt.datetime.now(dt.UTC)
    config = disordered_fleet(now, id_prefix=f"b{run[:6]}", seed=args.seed)
    fleet = build_fleet(calm(config) if args.calm else config)
    truth = fleet.truth()
    log(
        f"fleet: {len(fleet.machines)} machines, {len(truth['sessions'])} sessions,"
        f" {len(truth['sets'])} sets, {len(truth['reps'])} reps; database {name},"
        f" topic prefix {kafka.topic_prefix}"
    )
    started = time.monotonic()
    killed: list[int] = []
    try:
        with tempfile.TemporaryDirectory(prefix="disorder-") as tmp:
            clinics = sorted(fleet.clinic_time_zones)
            with pipeline(kafka, owner, admin, Path(tmp), clinics) as pipe:
                register_clinics(pipe, fleet.clinic_time_zones)
                publish_prescriptions(pipe, fleet)

                def maybe_kill() -> None:
                    if args.kill and not killed:
                        reps = db_counts(owner)[1]
                        if reps >= len(truth["reps"]) / 3:
                            pipe.worker.kill9()
                            killed.append(reps)
                            pipe.worker.start()

                stats = run_fleet(pipe, fleet, during=maybe_kill)
                delivered_s = time.monotonic() - started
                counts = settle(pipe, truth)
                result = score(owner, truth, pipe.zones_registered)
    finally:
        if args.drop:
            with psycopg.connect(ADMIN_DSN, autocommit=True) as conn:
                conn.execute(
                    sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
                )
    total_s = time.monotonic() - started
    kill_note = f", kill -9 at {killed[0]} reps" if killed else ""
    print(f"{'calm' if args.calm else 'disordered'} fleet (seed {args.seed}{kill_note})")
    print(
        f"  reps exact            {result.reps_exact:>5} / {result.truth_reps}"
        f"   (missing {result.reps_missing}, extra {result.reps_extra})"
    )
    print(f"  sets exact            {result.sets_exact:>5} / {result.truth_sets}")
    print(
        f"  sessions attributed   {result.sessions_attributed:>5} / {result.truth_sessions}"
        f"   ({result.sessions_stored} stored)"
    )
    print(
        f"  adherence rows exact  {result.adherence_exact:>5} / {result.adherence_rows}"
        f"   (clinic zones registered: {result.zones_registered})"
    )
    print(f"  edge frames {stats.frames}, events {stats.events}; delivered in {delivered_s:.0f} s,"
          f" settled in {total_s:.0f} s; database counts {counts}")  # fmt: skip
    for problem in result.problems[:15]:
        print(f"    {problem}")
    if args.json:
        args.json.write_text(json.dumps({**result.as_dict(), "killed_at": killed}, indent=2))
    return 0 if result.exact else 1


if __name__ == "__main__":
    raise SystemExit(main())
