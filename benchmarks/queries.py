"""Dashboard query latency over a generated year of fleet history (plain PostgreSQL).

Run: .venv/bin/python benchmarks/queries.py [--clinics 100 --machines 10 --patients 40]
     [--runs 20] [--keep | --reuse DBNAME]

Generates, with SQL generate_series (no Python row loops), a year up to now of: 100 clinics
x 10 machines, 40 patients per clinic training twice a week (3 sets x 8 reps), lapses,
weekly adherence, prescriptions, outcomes, alerts, machine status every clinic hour, faults
and dead letters. Then refreshes the aggregates, ANALYZEs, and runs every dashboard query of
dashboards/sql (expanded exactly as Grafana would, dashboards.macros) ``--runs`` times with
random clinic / patient / machine selections, printing p50/p95 per query.

Targets: p95 <= 100 ms per-patient (patient_*), <= 300 ms fleet-wide and per clinic.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo

from dashboards import queries as dq
from dashboards.macros import Context, TimeRange, Variable
from storage import queries
from storage.migrate import migrate

ADMIN = os.environ.get(
    "SLEDFLEET_DATABASE_ADMIN_URL", "postgresql://postgres:postgres@127.0.0.1:5433/postgres"
)
PER_PATIENT_P95_MS = 100.0
FLEET_P95_MS = 300.0

# One statement per fact table; %(...)s are the scale parameters. Session times derive
# from (clinic, patient, week, k) only, so reps/sets derive from the sessions table.
GENERATE = {
    "clinics": """
INSERT INTO sledfleet.clinics (clinic_id, name)
SELECT 'c' || c, 'Clinic ' || c FROM generate_series(1, %(clinics)s) c""",
    "machines": """
INSERT INTO sledfleet.machines (machine_id, clinic_id, model, serial, agent_version, firmware,
    config_version, rate_hz, clock_offset_ms, online, status_at, last_seen, frames,
    frames_missing, frames_replayed, edge_dropped)
SELECT format('c%%s-m%%s', c, m), 'c' || c, 'HS-200', format('SN%%s%%s', c, m), '0.1.0',
       'fw-1.4', 3, 100, (c + m) %% 7, (c + m) %% 13 <> 0, now() - interval '5 min',
       now() - make_interval(mins => (c + m) %% 13 * 60), 1000000, c %% 5, c %% 9, 0
FROM generate_series(1, %(clinics)s) c, generate_series(1, %(machines)s) m""",
    "patients": """
INSERT INTO sledfleet.patients (patient_id, clinic_id)
SELECT format('c%%s-p%%s', c, p), 'c' || c
FROM generate_series(1, %(clinics)s) c, generate_series(1, %(patients)s) p""",
    "prescriptions": """
INSERT INTO sledfleet.prescriptions (prescription_id, patient_id, clinic_id, sessions_per_week,
    sets, reps, load_kg, max_velocity_loss_pct, start_date, end_date)
SELECT format('rx-c%%s-p%%s', c, p), format('c%%s-p%%s', c, p), 'c' || c, 2, 3, 8, 50, 20,
       %(base)s::date, NULL
FROM generate_series(1, %(clinics)s) c, generate_series(1, %(patients)s) p""",
    "sessions": """
INSERT INTO sledfleet.sessions (ts, session_id, clinic_id, machine_id, patient_id,
    prescription_id, start_ns, end_ns, end_ts, end_reason, sets, reps, partial_reps,
    volume_load_kg, work_j, mean_asi_pct, mean_mcv_ms, max_velocity_loss_pct, duration_s,
    density_j_per_min, max_load_kg, seat_position, footplate_position,
    completed_as_prescribed, lv_intercept_ms, lv_slope_ms_per_kg, e1rm_kg, emitted_at_ns)
SELECT s.ts, format('c%%s-p%%s-w%%s-%%s', c, p, w, k), 'c' || c,
       format('c%%s-m%%s', c, 1 + p %% %(machines)s), format('c%%s-p%%s', c, p),
       format('rx-c%%s-p%%s', c, p), n.ns, n.ns + 600000000000, s.ts + interval '10 min',
       'checkout', 3, %(reps)s * 3, 1, %(reps)s * 3 * (50 + w * 0.5), %(reps)s * 3 * 200.0,
       5 + p %% 7, 0.5 - w * 0.001, 20 + p %% 10, 600, 480, 50 + w * 0.5, 4, 2,
       (p + w) %% 5 <> 0, 1.2, -0.008, 90 + w * 0.3, n.ns + 601000000000
FROM (SELECT c, p, w, k, %(base)s::timestamptz + make_interval(days => w * 7 + k * 3 + p %% 2,
             hours => 8 + p %% 9, mins => (p %% 4) * 15) AS ts
      FROM generate_series(1, %(clinics)s) c, generate_series(1, %(patients)s) p,
           generate_series(0, 52) w, generate_series(0, 1) k
      WHERE NOT (p %% 10 = 0 AND w BETWEEN 30 AND 33)) s
CROSS JOIN LATERAL (SELECT (extract(epoch FROM s.ts) * 1000000)::bigint * 1000 AS ns) n
WHERE s.ts < now()""",
    "sets": """
INSERT INTO sledfleet.sets (ts, machine_id, session_id, set_no, clinic_id, patient_id, start_ns,
    end_ns, load_kg, reps, partial_reps, best_mcv_ms, last_mcv_ms, mean_mcv_ms,
    velocity_loss_pct, mean_power_w, peak_power_w, work_j, tut_s, mean_asi_pct, emitted_at_ns)
SELECT sledfleet.ns_to_ts(x.ns), s.machine_id, s.session_id, st, s.clinic_id, s.patient_id,
       x.ns, x.ns + 30000000000, s.max_load_kg, %(reps)s, 0, 0.55, 0.42, 0.48, 23.6, 450, 1000,
       200.0 * %(reps)s, 2.0 * %(reps)s, 5.5, x.ns + 31000000000
FROM sledfleet.sessions s, generate_series(1, 3) st,
     LATERAL (SELECT s.start_ns + (st - 1) * 150000000000::bigint AS ns) x""",
    "reps": """
INSERT INTO sledfleet.reps (ts, machine_id, session_id, set_no, rep_no, clinic_id, patient_id,
    valid, start_ns, top_ns, end_ns, load_kg, rom_mm, concentric_s, eccentric_s, tut_s, mcv_ms,
    mpv_ms, pv_ms, time_to_pv_s, pv_position_pct, mean_force_n, peak_force_n, mean_power_w,
    peak_power_w, work_j, asi_pct, weaker_side, sign_changes, jerk_score, dropout_samples,
    replayed, emitted_at_ns)
SELECT sledfleet.ns_to_ts(x.ns), s.machine_id, s.session_id, st, r, s.clinic_id, s.patient_id,
       true, x.ns, x.ns + 1000000000, x.ns + 2000000000, s.max_load_kg - (st - 1) * 2.5, 400, 0.8,
       1.2, 2.0, 0.55 - r * 0.015, 0.58 - r * 0.015, 0.9, 0.35, 45, 900, 1250, 450, 1000, 200,
       4 + r %% 5, 'left', 1, 2.5, r %% 3, r = 8 AND st = 3, x.ns + 3000000000
FROM sledfleet.sessions s, generate_series(1, 3) st, generate_series(1, %(reps)s) r,
     LATERAL (SELECT s.start_ns + ((st - 1) * 150 + (r - 1) * 3) * 1000000000::bigint AS ns) x
WHERE hashtext(s.clinic_id) %% %(parts)s = %(part)s""",
    "machine_status": """
INSERT INTO sledfleet.machine_status (ts, machine_id, ts_ns, clinic_id, status, agent_version,
    firmware, rate_hz, config_version, clock_offset_ms, frames, frames_replayed,
    frames_duplicate, frames_missing, edge_dropped, last_seq, emitted_at_ns)
SELECT t.ts, format('c%%s-m%%s', c, m), n.ns, 'c' || c, 'online', '0.1.0', 'fw-1.4', 100, 3,
       (c + m + d) %% 11 - 5, d * 36000 + h * 3600, d, d %% 3, (c + m) %% 4, 0, d * 36000,
       n.ns + 1000000000
FROM generate_series(1, %(clinics)s) c, generate_series(1, %(machines)s) m,
     generate_series(0, 364) d, generate_series(8, 17) h,
     LATERAL (SELECT %(base)s::timestamptz + make_interval(days => d, hours => h) AS ts) t,
     LATERAL (SELECT (extract(epoch FROM t.ts) * 1000000)::bigint * 1000 AS ns) n
WHERE t.ts < now()""",
    "adherence": """
INSERT INTO sledfleet.adherence_weekly (patient_id, iso_week, week_start, clinic_id,
    prescription_id, prescribed, attended, completed, adherence, compliance,
    relative_compliance, rolling4_prescribed, rolling4_attended, rolling4_completed,
    rolling4_adherence, rolling4_compliance, emitted_at_ns)
SELECT format('c%%s-p%%s', c, p), to_char(wk, 'IYYY-"W"IW'), wk::date, 'c' || c,
       format('rx-c%%s-p%%s', c, p), 2, a.att, a.att, a.att / 2.0, a.att / 2.0, 1.0, 8,
       8 - (p %% 3), 8 - (p %% 3), (8 - p %% 3) / 8.0, (8 - p %% 3) / 8.0, 0
FROM generate_series(1, %(clinics)s) c, generate_series(1, %(patients)s) p,
     generate_series(0, 52) w,
     LATERAL (SELECT %(base)s::timestamp + make_interval(weeks => w) AS wk) x,
     LATERAL (SELECT CASE WHEN p %% 10 = 0 AND w BETWEEN 30 AND 33 THEN 0 ELSE 2 END AS att) a
WHERE x.wk < now()""",
    # the writer keeps this summary current per batch; bulk SQL has to ask for it
    "clinic_adherence": """
SELECT sledfleet.refresh_clinic_adherence(array_agg(clinic_id), array_agg(week_start))
FROM (SELECT DISTINCT clinic_id, week_start FROM sledfleet.adherence_weekly) p""",
    "alerts": """
INSERT INTO sledfleet.alerts (rule, subject_id, window_start_ns, window_start, ts, ts_ns,
    clinic_id, patient_id, machine_id, severity, value, threshold, message, emitted_at_ns)
SELECT r.rule, format('c%%s-p%%s', c, p), n.ns + r.i, sledfleet.ns_to_ts(n.ns + r.i),
       sledfleet.ns_to_ts(n.ns + r.i), n.ns + r.i, 'c' || c, format('c%%s-p%%s', c, p), NULL,
       'warning', 12, 10, 'generated', 0
FROM generate_series(1, %(clinics)s) c, generate_series(1, %(patients)s, 3) p,
     generate_series(0, 52, 4) w,
     LATERAL (SELECT ((extract(epoch FROM %(base)s::timestamptz) + w * 604800 + p * 3600)
                      * 1000000)::bigint * 1000 AS ns) n,
     (VALUES ('asymmetry', 0), ('lapse', 1)) r(rule, i)
WHERE sledfleet.ns_to_ts(n.ns) < now()""",
    "outcomes": """
INSERT INTO sledfleet.outcomes (patient_id, test, measured_on, clinic_id, value, unit)
SELECT format('c%%s-p%%s', c, p), t.test, (%(base)s::date + w * 7), 'c' || c,
       t.v - w * 0.01, t.unit
FROM generate_series(1, %(clinics)s) c, generate_series(1, %(patients)s) p,
     generate_series(0, 52, 12) w,
     (VALUES ('t25fw', 8.0, 's'), ('5sts', 14.0, 's'), ('6mw', 380.0, 'm'),
             ('msws12', 45.0, 'score')) t(test, v, unit)""",
    "machine_events": """
INSERT INTO sledfleet.machine_events (ts, event_id, machine_id, clinic_id, ts_ns, type, seq,
    code, detail, payload)
SELECT t.ts, gen_random_uuid(), format('c%%s-m%%s', c, m), 'c' || c,
       (extract(epoch FROM t.ts) * 1000000)::bigint * 1000, 'fault', d, 'flat_channel',
       'left load cell flat', '{}'::jsonb
FROM generate_series(1, %(clinics)s) c, generate_series(1, %(machines)s) m,
     generate_series(0, 364, 30) d,
     LATERAL (SELECT %(base)s::timestamptz + make_interval(days => d + m, hours => 10) AS ts) t
WHERE t.ts < now()""",
    "dead_letters": """
INSERT INTO sledfleet.dead_letters (payload_sha256, origin, received_at, source, reason,
    detail, payload_size, received_at_ns)
SELECT md5(i::text), 'sledfleet/v1/c1/m1/telemetry', now() - make_interval(mins => i),
       (ARRAY['bridge', 'stream', 'sink'])[1 + i %% 3], 'bad_field', 'generated', 512, 0
FROM generate_series(1, 20000) i""",
}


def _parallel(dsn: str, stmt: str, scale: dict[str, Any], parts: int) -> None:
    errors: list[BaseException] = []

    def part(i: int) -> None:
        try:
            with psycopg.connect(dsn, autocommit=True) as c:
                c.execute("SET synchronous_commit = off")
                c.execute(stmt.encode(), {**scale, "parts": parts, "part": i})
        except BaseException as exc:  # re-raised below
            errors.append(exc)

    threads = [threading.Thread(target=part, args=(i,)) for i in range(parts)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]


def generate(dsn: str, scale: dict[str, Any]) -> dict[str, float]:
    timings: dict[str, float] = {}
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("SET synchronous_commit = off")
        for name, stmt in GENERATE.items():
            t0 = time.perf_counter()
            if name == "reps":  # the big one: two connections, one per core
                _parallel(dsn, stmt, scale, parts=2)
            else:
                conn.execute(stmt.encode(), scale)
            timings[name] = time.perf_counter() - t0
            print(f"  generated {name:15s} in {timings[name]:6.1f} s", flush=True)
        t0 = time.perf_counter()
        for agg in queries.aggregates(conn):
            conn.execute(
                sql.SQL("REFRESH MATERIALIZED VIEW {}").format(sql.Identifier("sledfleet", agg))
            )
        timings["refresh (initial)"] = time.perf_counter() - t0
        conn.execute("VACUUM ANALYZE")
    return timings


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def contexts(
    conn: psycopg.Connection[Any],
    name: str,
    rng: random.Random,
    runs: int,
    clinics: int,
    machines: int,
    patients: int,
) -> list[Context]:
    now = datetime.now(UTC)
    span = {
        "patient": timedelta(days=90),
        "clinic": timedelta(days=28),
        "machine": timedelta(days=7),
        "fleet": timedelta(days=7),
    }.get(name.split("_", maxsplit=1)[0], timedelta(days=30))
    all_clinics = [f"c{c}" for c in range(1, clinics + 1)]
    out = []
    for _ in range(runs):
        c = rng.randint(1, clinics)
        fleet = name.startswith("fleet")
        clinic_var = (
            Variable("clinic", ["$__all"], multi=True, include_all=True, options=all_clinics)
            if fleet
            else Variable("clinic", [f"c{c}"], multi=True, include_all=True, options=all_clinics)
        )
        patient = f"c{c}-p{rng.randint(1, patients)}"
        if name.startswith("clinic"):  # the clinic dashboard: every patient of the clinic
            patient_var = Variable(
                "patient",
                ["$__all"],
                multi=True,
                include_all=True,
                options=[f"c{c}-p{p}" for p in range(1, patients + 1)],
            )
        else:
            patient_var = Variable("patient", patient)
        out.append(
            Context(
                time_range=TimeRange.last(span, now),
                variables=(
                    clinic_var,
                    patient_var,
                    Variable(
                        "machine",
                        [f"c{c}-m{rng.randint(1, machines)}"],
                        multi=True,
                        include_all=True,
                    ),
                ),
                interval=span / 200,
            )
        )
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clinics", type=int, default=100)
    ap.add_argument("--machines", type=int, default=10)
    ap.add_argument("--patients", type=int, default=40)
    ap.add_argument("--reps", type=int, default=8, help="reps per set (3 sets per session)")
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--keep", action="store_true", help="keep the database")
    ap.add_argument("--reuse", help="an existing generated database: skip generation")
    ap.add_argument("--skip-refresh", action="store_true", help="do not time REFRESH")
    ap.add_argument("--only", default="", help="run only queries whose name starts so")
    args = ap.parse_args()
    name = args.reuse or f"bench_queries_{uuid.uuid4().hex[:8]}"
    dsn = make_conninfo(ADMIN, dbname=name)
    scale = {
        "clinics": args.clinics,
        "machines": args.machines,
        "patients": args.patients,
        "reps": args.reps,
        "base": (datetime.now(UTC) - timedelta(days=364)).date().isoformat(),
    }
    if not args.reuse:
        with psycopg.connect(ADMIN, autocommit=True) as admin:
            admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        if not args.reuse:
            with psycopg.connect(dsn, autocommit=True) as conn:
                migrate(conn)
            print(
                f"generating a year into {name} ({args.clinics} clinics x {args.machines} "
                f"machines, {args.patients} patients per clinic)"
            )
            t0 = time.perf_counter()
            gen = generate(dsn, scale)
            print(f"  total {time.perf_counter() - t0:.0f} s")
        with psycopg.connect(dsn, autocommit=True) as conn:
            sizes = {
                t: conn.execute(
                    sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier("sledfleet", t))
                ).fetchone()[0]  # type: ignore[index]
                for t in ("reps", "sets", "sessions", "machine_status", "adherence_weekly")
            }
            print("rows: " + ", ".join(f"{t} {n:,}" for t, n in sizes.items()))
            if not args.skip_refresh:
                total = 0.0
                for agg in queries.aggregates(conn):
                    t0 = time.perf_counter()
                    conn.execute(
                        sql.SQL("REFRESH MATERIALIZED VIEW CONCURRENTLY {}").format(
                            sql.Identifier("sledfleet", agg)
                        )
                    )
                    took = time.perf_counter() - t0
                    total += took
                    print(f"REFRESH ... CONCURRENTLY {agg:26s} {took:6.1f} s")
                print(f"REFRESH ... CONCURRENTLY total (the sink's periodic job) {total:6.1f} s")
            rng = random.Random(1)
            results = []
            for qname, q in sorted(dq.all_queries().items()):
                if not qname.startswith(args.only):
                    continue
                times = []
                rows = 0
                for ctx in contexts(
                    conn, qname, rng, args.runs, args.clinics, args.machines, args.patients
                ):
                    t1 = time.perf_counter()
                    res = dq.run(conn, q, ctx)
                    times.append((time.perf_counter() - t1) * 1000)
                    rows += len(res.rows)
                per_patient = qname.startswith("patient_") or qname == "var_patient"
                target = PER_PATIENT_P95_MS if per_patient else FLEET_P95_MS
                results.append(
                    (
                        qname,
                        statistics.median(times),
                        percentile(times, 0.95),
                        target,
                        rows / len(times),
                    )
                )
    finally:
        if not (args.keep or args.reuse):
            with psycopg.connect(ADMIN, autocommit=True) as admin:
                admin.execute(
                    sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
                )
    print(f"\n{'query':32s} {'p50 ms':>8s} {'p95 ms':>8s} {'target':>7s} {'rows':>7s}")
    misses = 0
    for qname, p50, p95, target, rows in results:
        ok = p95 <= target
        misses += not ok
        print(
            f"{qname:32s} {p50:8.1f} {p95:8.1f} {target:7.0f} {rows:7.0f} {'ok' if ok else 'MISS'}"
        )
    print(
        f"\n{len(results) - misses}/{len(results)} queries within target "
        f"(per-patient p95 <= {PER_PATIENT_P95_MS:.0f} ms, others <= {FLEET_P95_MS:.0f} ms)"
    )
    if not args.reuse and "gen" in locals():
        pass


if __name__ == "__main__":
    main()
