"""The demo's stages: each a small function, run in order by :func:`run_demo`.

services → database (fresh ``sledfleet_demo``, migrated, clinic and ops roles) → Kafka
topics (a fresh prefix per run) → role processes (bridge, stream worker(s), sink) →
prescriptions → backfill (weeks of simulated history through real edge agents) →
catch-up → live sessions (wall-clock paced) → catch-up → summary, scores, reports.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import secrets
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo

from dashboards.demo.processes import Role, RoleSet, free_port
from edge.settings import DatabaseSettings, KafkaSettings, MqttSettings, load

log = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[2]
SERVICES_START = REPO_ROOT / "services" / "start"
ADMIN_DSN_ENV = "SLEDFLEET_DATABASE_ADMIN_URL"
DEFAULT_ADMIN_DSN = "postgresql://postgres:postgres@127.0.0.1:5433/postgres"
LATENCY_PROFILE = {
    "SLEDFLEET_CORE_BATCH_SAMPLES": "50",
    "SLEDFLEET_SINK_MAX_WAIT_MS": "100",
    "SLEDFLEET_CORE_ECCENTRIC_SETTLE_S": "0.4",
}
"""The demo shows live latency: the core runs its pipeline on every frame (not every 4)
and the sink writes at least every 100 ms (both trade throughput for latency); a rep whose
patient rests at the bottom is closed after 0.4 s of rest instead of 1 s (still above the
260 ms pause rule)."""
LIVE_FRAME_SAMPLES = 25
"""Live edge agents send 4 frames a second (0.25 s of samples each) instead of 2."""
CATCHUP_STABLE_S = 6.0
"""Live catch-up ends when the database's counts have not moved for this long."""


@dataclass(frozen=True, slots=True)
class DemoConfig:
    clinics: int = 3
    machines_per_clinic: int = 2
    patients_per_machine: int = 3
    weeks: int = 4
    live_machines: int = 3
    live_s: float = 120.0
    seed: int = 7
    disorder: bool = True
    """The simulator's disorder knobs (``edge.simulator.scenarios.demo_disorder``): clinics
    in three time zones, mixed rates and frame sizes, clock offsets, network delays
    (``--no-disorder``: every machine at 100 Hz in UTC with an exact clock)."""
    workers: int = 1
    reports: int = 2
    out_dir: Path = Path("out/demo")
    database: str = "sledfleet_demo"
    start_services: bool = True
    secure: bool = False
    """Private secure-mode broker: devices over TLS with their own accounts (demo/secure.py)."""
    catchup_timeout_s: float = 420.0
    id_prefix: str | None = None
    """Prepended to clinic and machine ids (and so to MQTT client ids and topics); None: a
    fresh one per run, so two demos on one broker neither kick each other's agents off nor
    mix their traffic."""


@dataclass
class DemoRun:
    config: DemoConfig
    run_id: str
    kafka: KafkaSettings
    dsn: str
    roles: RoleSet = field(default_factory=RoleSet)
    timings: dict[str, float] = field(default_factory=dict)
    truth: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    backfill_window_ns: tuple[int, int] = (0, 0)
    live_since_ns: int | None = None
    clinic_passwords: dict[str, str] = field(default_factory=dict)
    secure: Any = None  # dashboards.demo.secure.SecureBroker in --secure runs
    id_prefix: str = ""
    """This run's clinic and machine id prefix (``DemoConfig.id_prefix``)."""

    @property
    def clinic_ids(self) -> list[str]:
        return [f"{self.id_prefix}c{c:02d}" for c in range(1, self.config.clinics + 1)]

    @property
    def work_dir(self) -> Path:
        return self.config.out_dir / "run"


class Progress:
    """One line per stage, redrawn in place on a terminal, every few seconds otherwise."""

    def __init__(self, stage: str, total: int | None = None) -> None:
        self.stage, self.total = stage, total
        self.tty = sys.stderr.isatty()
        self._last = 0.0
        self._t0 = time.monotonic()

    def update(self, done: int, note: str = "") -> None:
        now = time.monotonic()
        if not self.tty and now - self._last < 5.0:
            return
        self._last = now
        if self.total:
            frac = min(1.0, done / self.total)
            bar = "#" * int(frac * 30)
            text = f"[{self.stage}] [{bar:<30}] {done}/{self.total} {note}"
        else:
            text = f"[{self.stage}] {done} {note}"
        text += f" ({now - self._t0:.0f} s)"
        sys.stderr.write(("\r" + text.ljust(100)) if self.tty else text + "\n")
        sys.stderr.flush()

    def done(self, note: str = "") -> float:
        elapsed = time.monotonic() - self._t0
        end = "\n" if self.tty else ""
        sys.stderr.write(f"{end}[{self.stage}] done in {elapsed:.1f} s {note}\n")
        return elapsed


# --- stages -------------------------------------------------------------------------------


def start_services() -> None:
    if not SERVICES_START.exists():
        log.info("no services/start beside this install: using the configured servers")
        return
    subprocess.run([str(SERVICES_START), "mosquitto", "kafka", "postgres"], check=True)


def prepare_database(config: DemoConfig, run: DemoRun) -> None:
    """A fresh, migrated demo database, with a role per clinic and the ops role.

    The clinic roles of the database it replaces are dropped with it (clinic ids, and so
    role names, are new in every run)."""
    from storage import tenants
    from storage.migrate import migrate

    admin = os.environ.get(ADMIN_DSN_ENV, DEFAULT_ADMIN_DSN)
    owner = psycopg.conninfo.conninfo_to_dict(run.dsn).get("user", "sledfleet")
    drop_database(admin, config.database)
    with psycopg.connect(admin, autocommit=True) as conn:
        name = sql.Identifier(config.database)
        conn.execute(
            sql.SQL("CREATE DATABASE {} OWNER {}").format(name, sql.Identifier(str(owner)))
        )
    with psycopg.connect(run.dsn, autocommit=True) as conn:
        migrate(conn)
    with psycopg.connect(make_conninfo(admin, dbname=config.database), autocommit=True) as c:
        for clinic_id in run.clinic_ids:
            _, password = tenants.add_clinic(c, clinic_id)
            run.clinic_passwords[clinic_id] = password
        tenants.ensure_ops_role(c)


def drop_database(admin_dsn: str, database: str) -> None:
    """Drop a demo database and the clinic roles it maps (their names are per run)."""
    old_roles = _clinic_roles(make_conninfo(admin_dsn, dbname=database))
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(database))
        )
        for role in old_roles:
            try:
                conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))
            except psycopg.Error as exc:  # still used in another database: kept, and said so
                log.warning("clinic role %s of the dropped demo database kept: %s", role, exc)


def _clinic_roles(dsn: str) -> list[str]:
    """The clinic roles a previous demo database maps (none if it does not exist)."""
    try:
        with psycopg.connect(dsn, autocommit=True, connect_timeout=10) as conn:
            rows = conn.execute("SELECT role_name FROM sledfleet.clinic_roles").fetchall()
    except psycopg.OperationalError:
        return []  # no such database
    except psycopg.errors.UndefinedTable:
        return []
    return [str(r[0]) for r in rows]


def create_topics(run: DemoRun) -> None:
    from stream.topics import ensure_topics

    ensure_topics(run.kafka)
    if run.config.disorder:
        register_time_zones(run)


def register_time_zones(run: DemoRun) -> None:
    """The fleet's clinic zones in the registry, then on the clinics topic (as
    ``sledfleet db set-clinic-tz`` does)."""
    from storage import registry
    from stream import clinic_zones

    zones = build_fleet_zones(run)
    with psycopg.connect(run.dsn, autocommit=True) as conn:
        for clinic_id, tz in zones.items():
            registry.set_clinic_time_zone(conn, clinic_id, tz)
        rows = registry.clinic_zones(conn, list(zones))
    clinic_zones.publish([clinic_zones.build(c, tz, at) for c, tz, at in rows], run.kafka)


def build_fleet_zones(run: DemoRun) -> dict[str, str]:
    cfg = fleet_config(run.config, "backfill")
    return {clinic: cfg.time_zone(c) for c, clinic in enumerate(run.clinic_ids)}


def start_roles(run: DemoRun) -> None:
    logs = run.work_dir / "logs"
    common = {"SLEDFLEET_KAFKA_TOPIC_PREFIX": run.kafka.topic_prefix, **LATENCY_PROFILE}
    bridge_port = free_port()
    run.roles.start(
        Role(
            "bridge",
            ["bridge"],
            {
                **common,
                "SLEDFLEET_BRIDGE_METRICS_PORT": str(bridge_port),
                "SLEDFLEET_BRIDGE_SHARE_GROUP": f"demo-{run.run_id}",
                "SLEDFLEET_BRIDGE_CLIENT_ID": f"demo-bridge-{run.run_id}",
                "SLEDFLEET_BRIDGE_SESSION_EXPIRY_S": "600",
                # only the demo's clinics: other traffic on a shared broker stays out
                "SLEDFLEET_BRIDGE_CLINIC_FILTER": ",".join(run.clinic_ids),
                **(run.secure.bridge_env() if run.secure else {}),
            },
            logs / "bridge.log",
            f"http://127.0.0.1:{bridge_port}/healthz",
        )
    )
    for i in range(run.config.workers):
        web_port = free_port()
        run.roles.start(
            Role(
                f"stream-worker-{i + 1}",
                ["stream", "worker"],
                {
                    **common,
                    "SLEDFLEET_STREAM_APP_ID": f"sledfleet-demo-{run.run_id}",
                    "SLEDFLEET_STREAM_DATA_DIR": str(run.work_dir / f"stream-{i + 1}"),
                    "SLEDFLEET_STREAM_WEB_PORT": str(web_port),
                },
                logs / f"stream-worker-{i + 1}.log",
                f"http://127.0.0.1:{web_port}/sledfleet/stats/",  # "/" is off (hardened)
            ),
            timeout_s=120.0,
        )
    sink_port = free_port()
    run.roles.start(
        Role(
            "sink",
            ["sink"],
            {
                **common,
                "SLEDFLEET_DATABASE_URL": run.dsn,
                "SLEDFLEET_SINK_GROUP": f"demo-sink-{run.run_id}",
                "SLEDFLEET_SINK_METRICS_PORT": str(sink_port),
                "SLEDFLEET_SINK_REFRESH_S": "10",
            },
            logs / "sink.log",
            f"http://127.0.0.1:{sink_port}/health",
        )
    )


def backfill_start(weeks: int, today: dt.date | None = None) -> dt.date:
    """The Monday ``weeks`` whole weeks before the current ISO week."""
    today = today or dt.datetime.now(dt.UTC).date()
    this_monday = today - dt.timedelta(days=today.weekday())
    return this_monday - dt.timedelta(weeks=weeks)


def fleet_config(config: DemoConfig, mode: str, id_prefix: str = "") -> Any:
    from edge.simulator import FleetConfig
    from edge.simulator.scenarios import demo_disorder

    fleet = FleetConfig(
        clinics=config.clinics,
        machines_per_clinic=config.machines_per_clinic,
        patients_per_machine=config.patients_per_machine,
        days=config.weeks * 7,
        seed=config.seed,
        start_date=backfill_start(config.weeks),
        mode=mode,  # type: ignore[arg-type]
        duration_s=config.live_s if mode == "live" else None,
        id_prefix=id_prefix,
    )
    return demo_disorder(fleet) if config.disorder else fleet


def publish_prescriptions(run: DemoRun, prescriptions: list[dict[str, Any]]) -> None:
    """Every prescription keyed by patient (as ``sledfleet prescribe`` sends one), through
    one producer: a fleet of 1,000 machines has 2,000 of them."""
    from kafka import KafkaProducer

    from edge import contract

    topic = run.kafka.topic_prefix + contract.KAFKA_PRESCRIPTIONS
    producer = KafkaProducer(
        bootstrap_servers=run.kafka.bootstrap, acks="all", client_id="sledfleet-demo-prescribe"
    )
    try:
        futures = [
            # the programme goes on after the backfilled weeks: live sessions count too
            producer.send(
                topic,
                key=rx["patient_id"].encode(),
                value=contract.encode({**rx, "end_date": None}),
            )
            for rx in prescriptions
        ]
        for future in futures:
            future.get(timeout=60)
    finally:
        producer.close(timeout=30)


def run_fleet(
    run: DemoRun,
    machines: list[Any],
    stage: str,
    progress: Callable[[], tuple[int, str]],
    frame_samples: int | None = None,
) -> Any:
    """Drive ``machines`` (simulated) through real edge agents until their data is acked."""
    from edge.agent_settings import EdgeSettings
    from edge.fleet_runner import FleetRunner

    outbox = run.work_dir / "outbox"
    base = replace(load(EdgeSettings), outbox_dir=str(outbox))
    if frame_samples is not None:
        base = replace(base, frame_samples=frame_samples)
    mqtt = load(MqttSettings)
    if run.secure:
        run.secure.provision([(m.clinic_id, m.machine_id) for m in machines])
    runner = FleetRunner(
        [(m.edge_settings(base), m.source()) for m in machines],
        mqtt,
        mqtt_for=run.secure.mqtt_for(mqtt) if run.secure else None,
    )
    result: dict[str, Any] = {}
    thread = threading.Thread(target=lambda: result.update(stats=runner.run()), daemon=True)
    thread.start()
    bar = Progress(stage, None)
    try:
        while thread.is_alive():
            thread.join(1.0)
            run.roles.check()
            done, note = progress()
            bar.update(done, note)
    except BaseException:
        runner.stop()
        thread.join(30)
        raise
    run.timings[stage] = bar.done()
    return result.get("stats")


def db_counts(dsn: str) -> tuple[int, int]:
    with psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.execute(
            "SELECT (SELECT count(*) FROM sledfleet.sessions),"
            " (SELECT count(*) FROM sledfleet.reps)"
        ).fetchone()
    return (int(row[0]), int(row[1])) if row else (0, 0)


def wait_for_database(
    run: DemoRun, stage: str, target: tuple[int, int] | None, timeout_s: float
) -> tuple[int, int]:
    """Wait until the database holds ``target`` (sessions, reps), or stops changing."""
    bar = Progress(stage, target[1] if target else None)
    deadline = time.monotonic() + timeout_s
    last, last_change = (-1, -1), time.monotonic()
    while time.monotonic() < deadline:
        run.roles.check()
        counts = db_counts(run.dsn)
        bar.update(counts[1], f"reps, {counts[0]} sessions in the database")
        if target is not None and counts[0] >= target[0] and counts[1] >= target[1]:
            break
        if counts != last:
            last, last_change = counts, time.monotonic()
        elif target is None and time.monotonic() - last_change >= CATCHUP_STABLE_S:
            break
        time.sleep(1.0)
    else:
        log.warning("%s: still catching up after %.0f s: %s", stage, timeout_s, last)
    run.timings[stage] = bar.done()
    return db_counts(run.dsn)


def backfill(run: DemoRun) -> None:
    from edge.simulator import build_fleet

    fleet = build_fleet(fleet_config(run.config, "backfill", run.id_prefix))
    run.truth = fleet.truth()
    publish_prescriptions(run, fleet.prescriptions)
    day_ns = 86_400 * 10**9  # sessions as stored, in device or corrected time: a day of slack
    starts = [s["start_ns"] for s in run.truth["sessions"]] or [
        min(m.t0_ns for m in fleet.machines)
    ]
    run.backfill_window_ns = (min(starts) - day_ns, max(starts) + day_ns)
    target = (len(run.truth["sessions"]), len(run.truth["reps"]))

    def progress() -> tuple[int, str]:
        sessions, reps = db_counts(run.dsn)
        return sessions, f"of {target[0]} sessions, {reps}/{target[1]} reps in the database"

    run_fleet(run, fleet.machines, "backfill: edge agents publish", progress)
    wait_for_database(run, "backfill: pipeline catch-up", target, run.config.catchup_timeout_s)


def live(run: DemoRun) -> None:
    from edge.simulator import build_fleet

    if run.config.live_machines <= 0 or run.config.live_s <= 0:
        return
    fleet = build_fleet(fleet_config(run.config, "live", run.id_prefix))
    machines = fleet.machines[: run.config.live_machines]
    run.live_since_ns = min(m.t0_ns for m in machines)
    started = time.monotonic()

    def progress() -> tuple[int, str]:
        return int(time.monotonic() - started), f"s of {run.config.live_s:.0f} s live"

    run_fleet(run, machines, "live: machines streaming", progress, LIVE_FRAME_SAMPLES)
    wait_for_database(run, "live: pipeline catch-up", None, 120.0)


def new_run(config: DemoConfig) -> DemoRun:
    """A run of its own: run id (Kafka topic prefix, group and MQTT share-group names) and
    id prefix unique even for two demos started in the same second."""
    token = secrets.token_hex(3)
    run_id = dt.datetime.now(dt.UTC).strftime("%Y%m%d%H%M%S") + token
    kafka = replace(load(KafkaSettings), topic_prefix=f"demo{run_id}.")
    base = load(DatabaseSettings).dsn.reveal()
    dsn = make_conninfo(base, dbname=config.database)
    if config.out_dir.exists():
        shutil.rmtree(config.out_dir / "run", ignore_errors=True)
    prefix = f"d{token}-" if config.id_prefix is None else config.id_prefix
    return DemoRun(config, run_id, kafka, dsn, id_prefix=prefix)
