"""``sledfleet demo``: the README's first command ends here."""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import time
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


def register(subparsers: Any, name: str, help_text: str) -> None:
    from dashboards.demo.pipeline import DemoConfig

    d = DemoConfig()
    p = subparsers.add_parser(
        name,
        help=help_text,
        description=help_text + ": starts or reuses the local services, migrates a fresh "
        "demo database, starts the bridge, stream worker(s) and sink, backfills weeks of "
        "history, streams live sessions, then prints a fleet summary scored against the "
        "simulator's ground truth and writes patient reports. Ctrl-C stops everything.",
    )
    p.add_argument("--clinics", type=int, default=d.clinics, help="clinics to simulate")
    p.add_argument(
        "--machines-per-clinic", type=int, default=d.machines_per_clinic, help="sleds per clinic"
    )
    p.add_argument(
        "--patients-per-machine",
        type=int,
        default=d.patients_per_machine,
        help="patients training on each sled",
    )
    p.add_argument("--weeks", type=int, default=d.weeks, help="weeks of backfilled history")
    p.add_argument(
        "--live-machines", type=int, default=d.live_machines, help="sleds streaming live at the end"
    )
    p.add_argument("--live-s", type=float, default=d.live_s, help="seconds of live streaming")
    p.add_argument("--workers", type=int, default=d.workers, help="stream worker processes")
    p.add_argument("--seed", type=int, default=d.seed, help="random seed of the simulation")
    p.add_argument(
        "--disorder",
        action=argparse.BooleanOptionalAction,
        default=d.disorder,
        help="a disordered fleet: clinics in three time zones, 50/100/200 Hz, clock offsets,"
        " network delays (edge.simulator.scenarios.demo_disorder)",
    )
    p.add_argument("--out", type=Path, default=d.out_dir, help="reports, logs, summary.json")
    p.add_argument("--database", default=d.database, help="demo database (recreated)")
    p.add_argument(
        "--id-prefix",
        default=d.id_prefix,
        help="prefix of clinic and machine ids (default: a new one per run, so demos sharing "
        "a broker stay apart; --id-prefix '' gives c01, c02, ... as the provisioned Grafana "
        "folders expect)",
    )
    p.add_argument(
        "--secure",
        action="store_true",
        help="a private secure-mode Mosquitto: provisioned devices over TLS, device ACLs, "
        "bridge registry check (docs/security.md)",
    )
    p.add_argument(
        "--no-services", action="store_true", help="do not run services/start (use env config)"
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from dashboards.demo import pipeline
    from dashboards.demo.processes import RoleFailed

    config = pipeline.DemoConfig(
        clinics=args.clinics,
        machines_per_clinic=args.machines_per_clinic,
        patients_per_machine=args.patients_per_machine,
        weeks=args.weeks,
        live_machines=args.live_machines,
        live_s=args.live_s,
        workers=args.workers,
        seed=args.seed,
        disorder=args.disorder,
        out_dir=args.out,
        database=args.database,
        start_services=not args.no_services,
        secure=args.secure,
        id_prefix=args.id_prefix,
    )
    logging.getLogger("kafka").setLevel(logging.WARNING)
    signal.signal(signal.SIGTERM, _interrupted)  # SIGTERM stops the roles as Ctrl-C does
    started = time.monotonic()
    if config.start_services:
        pipeline.start_services()
    run_ = pipeline.new_run(config)
    if config.secure:
        from dashboards.demo.secure import SecureBroker

        run_.secure = SecureBroker(run_.work_dir / "secure-broker").start()
    try:
        pipeline.prepare_database(config, run_)
        pipeline.create_topics(run_)
        pipeline.start_roles(run_)
        pipeline.backfill(run_)
        pipeline.live(run_)
        result = report(run_)
        if run_.secure:
            result["secure"] = run_.secure.summary()
    except KeyboardInterrupt:
        print("\ninterrupted: stopping the pipeline", file=sys.stderr)
        return 130
    except RoleFailed as exc:
        print(f"sledfleet demo: {exc}", file=sys.stderr)
        return 1
    finally:
        run_.roles.stop()
        if run_.secure:
            run_.secure.stop()
    result["elapsed_s"] = round(time.monotonic() - started, 1)
    (config.out_dir / "summary.json").write_text(json.dumps(result, indent=2, default=str))
    print(f"\nwhole demo: {result['elapsed_s']} s; summary: {config.out_dir / 'summary.json'}")
    return 0 if result["score"]["passed"] else 1


def _interrupted(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def report(run_: Any) -> dict[str, Any]:
    """Summary, truth scores, patient reports: printed and returned (summary.json)."""
    import psycopg

    from dashboards.demo import summary
    from dashboards.demo.pipeline import backfill_start

    last_week = backfill_start(1)  # the last complete ISO week
    with psycopg.connect(run_.dsn, autocommit=True) as conn:
        s = summary.fleet_summary(conn, last_week, run_.live_since_ns)
        score = summary.score_against_truth(conn, run_.truth, run_.backfill_window_ns)
    reports = write_reports(run_)
    print_summary(s, score, reports, run_)
    return {
        "summary": s,
        "score": _score(score),
        "reports": [str(p) for p in reports],
        "timings_s": run_.timings,
        "live_since_ns": run_.live_since_ns,
        "backfill_window_ns": run_.backfill_window_ns,
        "topic_prefix": run_.kafka.topic_prefix,
        "database": run_.config.database,
    }


def _score(score: Any) -> dict[str, Any]:
    from dataclasses import asdict

    out = asdict(score)
    out["sets_exact_fraction"] = score.sets_exact_fraction
    out["passed"] = score.passed()
    return out


def write_reports(run_: Any) -> list[Path]:
    """Every patient's report, per clinic with its index page (HTML; the A4 PDF comes with
    ``sledfleet report clinic``, whose code this is)."""
    import psycopg

    from dashboards import report as patient_report
    from dashboards.report_cli import ReportSettings, write_clinic

    out_dir = run_.config.out_dir / "reports"
    paths: list[Path] = []
    period = patient_report.period_ending(None, max(12, run_.config.weeks + 1))
    with psycopg.connect(run_.dsn, autocommit=True) as conn:
        clinics = [r[0] for r in conn.execute("SELECT clinic_id FROM v_clinics ORDER BY 1")]
        for clinic_id in clinics:
            written = write_clinic(
                conn, clinic_id, period, out_dir / clinic_id, False, ReportSettings()
            )
            paths += [p for p in written if p.name != "index.html"]
    return paths


def _f(v: Any, fmt: str = "{:.2f}") -> str:
    return "—" if v is None else fmt.format(v)


def print_summary(s: dict[str, Any], score: Any, reports: list[Path], run_: Any) -> None:
    t = s["totals"]
    print("\n=== SledFleet demo: fleet summary (from the database) ===")
    print(
        f"machines {t['machines']} ({t['machines_online']} online) · patients {t['patients']}"
        f" · sessions {t['sessions']} · sets {t['sets']} · reps {t['reps']}"
        f" (+{t['partial_reps']} partial) · open alerts {t['open_alerts']}"
    )
    print(
        f"\n{'clinic':<8}{'machines':>9}{'patients':>9}{'sessions':>9}"
        f"{'adh. last wk':>13}{'adh. 4 wk':>11}{'compl. 4 wk':>12}{'alerts':>8}"
    )
    for c in s["clinics"]:
        print(
            f"{c['clinic_id']:<8}{c['machines']:>9}{c['patients']:>9}{c['sessions']:>9}"
            f"{_f(c['week_adherence']):>13}{_f(c['rolling4_adherence']):>11}"
            f"{_f(c['rolling4_compliance']):>12}{c['open_alerts']:>8}"
        )
    print(
        "\nopen alerts by rule: "
        + (", ".join(f"{k} {v}" for k, v in s["alerts"].items()) or "none")
    )
    lat = s["latency"]
    if lat and lat["n"]:
        print(
            f"end-to-end latency, rep end → row in the database ({lat['n']} live reps): "
            f"p50 {_f(lat['p50'])} s, p95 {_f(lat['p95'])} s, p99 {_f(lat['p99'])} s"
        )
    sc = _score(score)
    print(
        "\nscored against the simulator's ground truth (backfill):\n"
        f"  reps {sc['matched_reps']}/{sc['truth_reps']} found, {sc['missing_reps']} missing,"
        f" {sc['extra_reps']} extra; sets with exact rep count "
        f"{sc['sets_exact']}/{sc['sets']} ({100 * sc['sets_exact_fraction']:.1f} %)\n"
        f"  p95 errors: MCV {sc['mcv_p95']:.4f} m/s, ROM {sc['rom_p95']:.2f} mm,"
        f" ASI {sc['asi_p95']:.2f} pp; adherence rows exact "
        f"{sc['adherence_exact']}/{sc['adherence_rows']} → {'PASS' if sc['passed'] else 'FAIL'}"
    )
    print("\nstage timings: " + ", ".join(f"{k} {v:.0f} s" for k, v in run_.timings.items()))
    print("\npatient reports:")
    for p in reports:
        print(f"  {p}")
    print(
        f'\ndatabase: {run_.config.database} (psql "{_safe_dsn(run_.dsn)}");'
        f" Kafka topic prefix {run_.kafka.topic_prefix!r}; logs in {run_.work_dir / 'logs'}"
        "\nGrafana dashboards: `docker compose up` (see README) provisions them from"
        " dashboards/json; offline copies are in dashboards/json/*.json."
    )


def _safe_dsn(dsn: str) -> str:
    import psycopg

    parts = psycopg.conninfo.conninfo_to_dict(dsn)
    parts.pop("password", None)
    return psycopg.conninfo.make_conninfo(**{k: str(v) for k, v in parts.items()})
