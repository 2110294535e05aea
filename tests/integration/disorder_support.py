"""The disordered fleet through the real pipeline, and its score against the ground truth.

Used by ``test_disordered_fleet.py`` and ``benchmarks/disorder_score.py``. Real processes
on the real servers: a fresh database (migrated), contract topics under the caller's
prefix, the bridge and the sink (``dashboards.demo.processes.Role``) and a stream worker
(``stream_support.Worker``, so kill -9 is real); clinics registered with their IANA zones
(``sledfleet db add-clinic --tz`` where the install has it); the fleet published through
real edge agents (``edge.fleet_runner``, own MQTT client and SQLite outbox each), its
machines streaming together in true time (``FleetConfig.lockstep_s``) while the offline
ones replay their backlog.

The score (:func:`score`) reads only the database:

- reps: a true rep is *exact* when its natural key (machine, session, set_no, rep_no) is
  stored with the right ``valid`` flag; stored reps no true rep explains are *extra*
  (a split set renumbers its reps: they show up as missing + extra);
- sets: exact when the stored reps of (machine, session, set_no) count the true valid
  and partial reps;
- sessions: attributed when stored with the true patient;
- adherence per clinic-local ISO week: ``attended`` and ``completed`` exact for every
  truth row; ``prescribed`` exact for every week but the last (the platform prorates the
  current week up to the latest time it has seen, which the truth does not model); a
  final week without any session may have no stored row yet.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import psycopg
from psycopg.rows import dict_row
from stream_support import SLEDFLEET, Worker, lagging, setup_topics

from dashboards.demo.processes import Role, RoleSet, free_port
from edge.agent_settings import EdgeSettings
from edge.fleet_runner import FleetRunner, FleetStats
from edge.settings import KafkaSettings, MqttSettings, load
from edge.simulator import Fleet

STABLE_S = 45.0
"""After the fleet delivered everything, the database is settled when it matches the
truth, or when its counts have not moved for this long while the worker and the sink have
both consumed their inputs to the end (a pipeline that lost or split data). Time spent
behind (a restarting worker, a loaded machine) never counts towards it."""
SETTLE_TIMEOUT_S = 600.0
LIVE_BACKLOG_ROWS = 40
"""A streaming agent keeps at most this many rows unsent and this many in flight (a live
agent's outbox is near empty): a machine's data reaches the broker within seconds of its
due time, so the lags between machines are the simulated ones (delays, outages,
backlogs), not queues of the harness. Offline machines fill their outbox regardless."""


@dataclass(frozen=True)
class DisorderScore:
    truth_reps: int
    reps_exact: int
    reps_missing: int
    reps_extra: int
    truth_sets: int
    sets_exact: int
    truth_sessions: int
    sessions_attributed: int
    sessions_stored: int
    adherence_rows: int
    adherence_exact: int
    zones_registered: bool
    problems: list[str] = field(default_factory=list)

    @property
    def exact(self) -> bool:
        return (
            self.reps_exact == self.truth_reps
            and self.reps_extra == 0
            and self.sets_exact == self.truth_sets
            and self.sessions_attributed == self.truth_sessions
            and self.adherence_exact == self.adherence_rows
        )

    def line(self) -> str:
        return (
            f"reps exact {self.reps_exact}/{self.truth_reps} (missing {self.reps_missing},"
            f" extra {self.reps_extra}); sets exact {self.sets_exact}/{self.truth_sets};"
            f" sessions attributed {self.sessions_attributed}/{self.truth_sessions}"
            f" ({self.sessions_stored} stored); adherence rows exact"
            f" {self.adherence_exact}/{self.adherence_rows}"
            f"{'' if self.zones_registered else ' (clinic zones NOT registered: no --tz)'}"
        )

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _rep_key(r: dict[str, Any]) -> tuple[str, str, int, int]:
    return (r["machine_id"], r["session_id"], int(r["set_no"]), int(r["rep_no"]))


def score(dsn: str, truth: dict[str, list[dict[str, Any]]], zones: bool = True) -> DisorderScore:
    """The database against the truth (module docstring)."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        cur = conn.cursor(row_factory=dict_row)
        reps = cur.execute(
            "SELECT machine_id, session_id, set_no, rep_no, valid FROM sledfleet.reps"
        ).fetchall()
        sessions = cur.execute("SELECT session_id, patient_id FROM sledfleet.sessions").fetchall()
        adherence = cur.execute(
            # the stream's own weekly rows (as the demo scores them): the truth counts a
            # session complete on sets x reps at the load, as the stream does;
            # v_patient_adherence recounts ``completed`` with the prescription's
            # velocity-loss limit as well (docs/report.md)
            "SELECT patient_id, iso_week, prescribed, attended, completed"
            " FROM sledfleet.adherence_weekly"
        ).fetchall()
    problems: list[str] = []
    stored = {_rep_key(r): bool(r["valid"]) for r in reps}
    true = {_rep_key(r): bool(r["valid"]) for r in truth["reps"]}
    exact = sum(1 for k, v in true.items() if stored.get(k) == v)
    extra = sorted(set(stored) - set(true))
    missing = sorted(set(true) - set(stored))
    problems += [f"missing rep {k}" for k in missing[:5]] + [f"extra rep {k}" for k in extra[:5]]
    per_set: Counter[tuple[str, str, int, bool]] = Counter(
        (k[0], k[1], k[2], v) for k, v in stored.items()
    )
    sets_exact = 0
    for s in truth["sets"]:
        key = (s["machine_id"], s["session_id"], int(s["set_no"]))
        got = (per_set[(*key, True)], per_set[(*key, False)])
        if got == (s["reps"], s["partial_reps"]):
            sets_exact += 1
        elif len(problems) < 20:
            problems.append(f"set {key}: stored {got}, true {(s['reps'], s['partial_reps'])}")
    patient_of = {r["session_id"]: r["patient_id"] for r in sessions}
    attributed = sum(
        1 for s in truth["sessions"] if patient_of.get(s["session_id"]) == s["patient_id"]
    )
    got_adh = {(r["patient_id"], r["iso_week"]): r for r in adherence}
    last_week = max((r["week_start"] for r in truth["adherence"]), default="")
    adh_exact = 0
    for t in truth["adherence"]:
        g = got_adh.get((t["patient_id"], t["iso_week"]))
        keys = ["attended", "completed"] + (["prescribed"] if t["week_start"] < last_week else [])
        if g is not None and all(int(g[k]) == int(t[k]) for k in keys):
            adh_exact += 1
        elif g is None and t["week_start"] == last_week and t["attended"] == 0:
            adh_exact += 1  # no session in the final week: the platform has not reached it
        elif len(problems) < 30:
            want = {k: t[k] for k in keys}
            have = None if g is None else {k: g[k] for k in keys}
            problems.append(f"adherence {t['patient_id']} {t['iso_week']}: {have} != {want}")
    return DisorderScore(
        truth_reps=len(true),
        reps_exact=exact,
        reps_missing=len(missing),
        reps_extra=len(extra),
        truth_sets=len(truth["sets"]),
        sets_exact=sets_exact,
        truth_sessions=len(truth["sessions"]),
        sessions_attributed=attributed,
        sessions_stored=len(sessions),
        adherence_rows=len(truth["adherence"]),
        adherence_exact=adh_exact,
        zones_registered=zones,
        problems=problems,
    )


def db_counts(dsn: str) -> tuple[int, int, int, int]:
    """Stored sessions, reps, and the sums of attended and completed sessions over the
    weekly adherence rows."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.execute(
            "SELECT (SELECT count(*) FROM sledfleet.sessions),"
            " (SELECT count(*) FROM sledfleet.reps),"
            " (SELECT coalesce(sum(attended), 0) FROM sledfleet.adherence_weekly),"
            " (SELECT coalesce(sum(completed), 0) FROM sledfleet.adherence_weekly)"
        ).fetchone()
    return (int(row[0]), int(row[1]), int(row[2]), int(row[3])) if row else (0, 0, 0, 0)


# --- the pipeline ---------------------------------------------------------------------------


@dataclass
class Pipeline:
    kafka: KafkaSettings
    dsn: str  # owner role
    admin_dsn: str  # superuser, same database
    workdir: Path
    worker: Worker
    sink_group: str = ""
    roles: RoleSet = field(default_factory=RoleSet)
    zones_registered: bool = False
    sink_topics: list[str] = field(init=False)
    """The topics the sink reads (its settings as the sink process loads them)."""

    def __post_init__(self) -> None:
        from storage.routing import topics
        from storage.sink import SinkSettings

        s = load(SinkSettings)
        self.sink_topics = list(
            topics(
                self.kafka.topic_prefix,
                frames=s.frames,
                events=s.events,
                state=s.state,
                dead_letters=s.dead_letters,
            )
        )

    def idle(self) -> bool:
        """The worker and the sink have committed every message of their inputs."""
        return not lagging(self.kafka, self.worker.group) and not lagging(
            self.kafka, self.sink_group, self.sink_topics
        )

    def check(self) -> None:
        self.roles.check()
        if not self.worker.alive():
            tail = "\n".join(self.worker.log_text().splitlines()[-30:])
            raise AssertionError(f"stream worker exited; {self.worker.log_path}:\n{tail}")


def _has_tz_option() -> bool:
    out = subprocess.run(
        [SLEDFLEET, "db", "add-clinic", "--help"], capture_output=True, text=True, check=False
    )
    return "--tz" in out.stdout


def register_clinics(pipe: Pipeline, zones: dict[str, str]) -> None:
    """Each clinic with its role and IANA zone (database, then the clinics topic)."""
    with_tz = _has_tz_option()
    env = {
        **os.environ,
        "SLEDFLEET_KAFKA_BOOTSTRAP": pipe.kafka.bootstrap,
        "SLEDFLEET_KAFKA_TOPIC_PREFIX": pipe.kafka.topic_prefix,
    }
    for clinic, tz in zones.items():
        cmd = [SLEDFLEET, "db", "--dsn", pipe.admin_dsn, "add-clinic", clinic]
        cmd += ["--tz", tz] if with_tz else []
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise AssertionError(f"{' '.join(cmd[:4])} {clinic}: {proc.stderr[-2000:]}")
    pipe.zones_registered = with_tz


def _migrate(dsn: str) -> None:
    from storage.migrate import migrate

    with psycopg.connect(dsn, autocommit=True) as conn:
        migrate(conn)


@contextmanager
def pipeline(
    kafka: KafkaSettings, dsn: str, admin_dsn: str, workdir: Path, clinics: list[str]
) -> Iterator[Pipeline]:
    """Topics, a migrated database, bridge + worker + sink as processes; stopped after."""
    setup_topics(kafka)
    _migrate(dsn)
    run_id = kafka.topic_prefix.strip(".")
    logs = workdir / "logs"
    common = {
        "SLEDFLEET_KAFKA_BOOTSTRAP": kafka.bootstrap,
        "SLEDFLEET_KAFKA_TOPIC_PREFIX": kafka.topic_prefix,
    }
    worker = Worker(kafka, app_id="disorder", workdir=workdir, name="worker")
    pipe = Pipeline(kafka, dsn, admin_dsn, workdir, worker, sink_group=f"dis-sink-{run_id}")
    try:
        bridge_port = free_port()
        pipe.roles.start(
            Role(
                "bridge",
                ["bridge"],
                {
                    **common,
                    "SLEDFLEET_BRIDGE_METRICS_PORT": str(bridge_port),
                    "SLEDFLEET_BRIDGE_SHARE_GROUP": f"dis-{run_id}",
                    "SLEDFLEET_BRIDGE_CLIENT_ID": f"dis-bridge-{run_id}",
                    "SLEDFLEET_BRIDGE_SESSION_EXPIRY_S": "600",
                    "SLEDFLEET_BRIDGE_CLINIC_FILTER": ",".join(clinics),
                },
                logs / "bridge.log",
                f"http://127.0.0.1:{bridge_port}/healthz",
            )
        )
        worker.start()
        sink_port = free_port()
        pipe.roles.start(
            Role(
                "sink",
                ["sink"],
                {
                    **common,
                    "SLEDFLEET_DATABASE_URL": dsn,
                    "SLEDFLEET_SINK_GROUP": pipe.sink_group,
                    "SLEDFLEET_SINK_METRICS_PORT": str(sink_port),
                    "SLEDFLEET_SINK_MAX_WAIT_MS": "200",
                },
                logs / "sink.log",
                f"http://127.0.0.1:{sink_port}/health",
            )
        )
        yield pipe
    finally:
        worker.stop() if worker.alive() else None
        pipe.roles.stop()


def publish_prescriptions(pipe: Pipeline, fleet: Fleet) -> None:
    from stream.prescribe import publish

    for rx in fleet.prescriptions:
        publish(rx, pipe.kafka)  # type: ignore[arg-type]


def run_fleet(
    pipe: Pipeline,
    fleet: Fleet,
    during: Callable[[], None] | None = None,
    timeout_s: float = 900.0,
    backlog_rows: int = LIVE_BACKLOG_ROWS,
) -> FleetStats:
    """Every machine through its own edge agent until all is acknowledged by the broker;
    ``during`` is called about once a second meanwhile (e.g. to kill the worker)."""
    base = replace(
        load(EdgeSettings),
        outbox_dir=str(pipe.workdir / "outbox"),
        connect_wait_s=10.0,
        state_interval_s=5.0,
        backpressure_rows=backlog_rows,
    )
    mqtt = replace(load(MqttSettings), max_inflight=backlog_rows)
    runner = FleetRunner(fleet.edge_machines(base), mqtt, drain_timeout_s=60.0)
    result: dict[str, FleetStats] = {}
    thread = threading.Thread(target=lambda: result.update(stats=runner.run()), daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout_s
    try:
        while thread.is_alive():
            thread.join(1.0)
            pipe.check()
            if during is not None:
                during()
            if time.monotonic() > deadline:
                raise AssertionError(f"the fleet did not deliver in {timeout_s:.0f} s")
    finally:
        runner.stop()
        thread.join(60)
    return result["stats"]


def settle(pipe: Pipeline, truth: dict[str, list[dict[str, Any]]]) -> tuple[int, int, int, int]:
    """Wait until the database holds as many sessions, reps, attended and completed
    sessions as the truth (adherence rows are re-emitted after their sessions), or its
    counts stop changing for ``STABLE_S`` of a caught-up pipeline (one that lost or split
    data): a worker still restarting or behind never ends the wait early."""
    adherence = truth["adherence"]
    target = (
        len(truth["sessions"]),
        len(truth["reps"]),
        sum(int(r["attended"]) for r in adherence),
        sum(int(r["completed"]) for r in adherence),
    )
    deadline = time.monotonic() + SETTLE_TIMEOUT_S
    last, since = (-1, -1, -1, -1), time.monotonic()
    while time.monotonic() < deadline:
        pipe.check()
        counts = db_counts(pipe.dsn)
        if counts == target:
            return counts
        if counts != last or not pipe.idle():
            last, since = counts, time.monotonic()
        elif time.monotonic() - since >= STABLE_S:
            return counts
        time.sleep(1.0)  # polling interval, not a wait for correctness
    return last


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)
