"""End-to-end capacity: N simulated machines through the whole pipeline on this machine.

For each step (machines × mix × rate per machine) one run, everything real and
co-located: N simulated machines, each with its own edge agent (MQTT client, SQLite
outbox; ``edge.fleet_runner``) in edge processes of ``--edge-per-process`` machines, the
shared Mosquitto and Kafka, and ``sledfleet bridge``, one or more ``sledfleet stream
worker`` and ``sledfleet sink`` as processes (started the way the demo starts them,
``dashboards.demo.pipeline``), writing into a fresh database.

Mixes:
* ``all``    — every machine streams at the rate all the time (sessions back to back, idle
  samples between them): N × rate samples/s offered.
* ``clinic`` — a clinic day: ``--active-fraction`` of the machines (default 20 %) have a
  patient training (sessions back to back, samples only while training); the others are
  idle: their agents are connected (birth state, keep-alives) and send no samples.

Before the steps, the bare component under each stage is measured once on the same servers
(``benchmarks/capacity_bare.py``: Mosquitto publish → subscribe, Kafka produce and consume,
the stream worker on a pre-filled topic, binary COPY of rep rows); each step prints its
stages' rates inside the pipeline beside them.

Per step it prints:
* offered and sustained samples/s (samples framed by the agents over the live window, and
  whether the pipeline kept up: lag at the end of the window and catch-up time after it);
* zero loss, checked against ground truth: every frame the agents framed reached Kafka
  through the bridge and was consumed by the worker (edge ``frames`` = worker frames, each
  (machine, seq) once; the bridge may forward a redelivered frame twice), and every rep of
  the simulator's truth that ended inside the window is in the database exactly once;
* p50/p99 latency from rep end (device time) to stored row;
* consumer lag of the worker (telemetry) and sink over time (max, and at the end);
* CPU per role (% of one core over the live window; Mosquitto and Kafka are the shared
  servers, so their figures include other users of the machine) and CPU µs per frame.

Run under ``nice -n 10``; it takes about (duration + 2 min) per step, plus the catch-up.
Usage: .venv/bin/python benchmarks/capacity.py [--machines 100,300] [--mix all,clinic]
       [--duration-s 120] [--rate-hz 50,100] [--workers 1] [--steps 1000:clinic:100,...]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import math
import multiprocessing as mp
import os
import queue
import random
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import psycopg
from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition

from dashboards.demo import pipeline
from dashboards.demo.processes import RoleFailed
from dashboards.demo.summary import Q_LATENCY
from edge.agent_settings import EdgeSettings
from edge.fleet_runner import FleetRunner
from edge.settings import MqttSettings, load
from edge.simulator import FleetConfig, build_fleet
from stream.topics import TopicsSettings, topic_specs

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))
import capacity_bare  # noqa: E402

SAMPLE_EVERY_S = 5.0
EDGE_MACHINES_PER_PROCESS = 250
"""Agents per edge process (paho waits with poll() since ``edge.paho_fds``: no longer
capped at ~150 by select(); several processes spread the agents over both cores)."""
ACTIVE_FRACTION = 0.2
"""Clinic-day mix: the share of machines with a patient training at any moment."""
MACHINES_PER_CLINIC = 10
CATCHUP_TIMEOUT_S = 600.0
NOTHING_ARRIVED_S = 90.0
"""A step fails when the bridge received nothing this long after the agents started."""
TRUTH_MARGIN_NS = 5 * 10**9
"""Truth reps must end this long before the window's end to be expected in the database."""


# --- measurements -------------------------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def find_pids(pattern: str) -> list[int]:
    """Processes whose command line contains ``pattern`` (the shared servers)."""
    out = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                cmd = (d / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if pattern in cmd:
                out.append(int(d.name))
    return out


@dataclass
class Lag:
    """Committed offset of a group → end offset of a topic, summed over partitions."""

    bootstrap: str
    topic: str
    group: str
    _consumer: Any = None

    def read(self) -> int | None:
        admin = KafkaAdminClient(bootstrap_servers=self.bootstrap)
        try:
            committed = admin.list_group_offsets({self.group: None}).get(self.group, {})
        finally:
            admin.close()
        if self._consumer is None:
            self._consumer = KafkaConsumer(bootstrap_servers=self.bootstrap)
        parts = self._consumer.partitions_for_topic(self.topic) or set()
        tps = [TopicPartition(self.topic, p) for p in parts]
        ends = self._consumer.end_offsets(tps)
        total = 0
        for tp in tps:
            meta = committed.get(tp)
            total += ends[tp] - (meta.offset if meta is not None and meta.offset >= 0 else 0)
        return total


@dataclass
class Sampler:
    """Every SAMPLE_EVERY_S: worker and sink lag; CPU of every process measured."""

    lags: dict[str, Lag]
    pids: dict[str, list[int]]
    series: list[dict[str, Any]] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def cpu(self) -> dict[str, dict[int, float]]:
        """CPU seconds per role and pid (a pid gone or new between two reads is left out)."""
        out: dict[str, dict[int, float]] = {}
        for role, pids in self.pids.items():
            out[role] = {}
            for pid in pids:
                with contextlib.suppress(OSError):
                    out[role][pid] = cpu_seconds(pid)
        return out

    def run(self) -> None:
        t0 = time.monotonic()
        while not self.stop.wait(SAMPLE_EVERY_S):
            row: dict[str, Any] = {"t": round(time.monotonic() - t0)}
            for name, lag in self.lags.items():
                try:
                    row[name] = lag.read()
                except Exception as exc:  # a benchmark keeps sampling
                    row[name] = f"error {type(exc).__name__}"
            self.series.append(row)


def http_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as r:
        return json.loads(r.read())


def metrics(url: str) -> dict[str, float]:
    from prometheus_client.parser import text_string_to_metric_families

    with urllib.request.urlopen(url, timeout=10) as r:
        text = r.read().decode()
    out: dict[str, float] = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            key = s.name + ("{" + ",".join(f"{k}={v}" for k, v in sorted(s.labels.items())) + "}")
            out[key] = s.value
            out[s.name] = out.get(s.name, 0.0) + s.value if s.labels else s.value
    return out


# --- one step -------------------------------------------------------------------------------


def run_step(machines: int, mix: str, rate_hz: float, args: argparse.Namespace) -> dict[str, Any]:
    clinics = math.ceil(machines / MACHINES_PER_CLINIC)
    config = pipeline.DemoConfig(
        clinics=clinics,
        machines_per_clinic=MACHINES_PER_CLINIC,
        patients_per_machine=2,
        weeks=1,
        live_machines=machines,
        live_s=args.duration_s,
        workers=args.workers,
        out_dir=REPO / "out" / "capacity" / f"{machines}-{mix}-{rate_hz:g}",
        database="sledfleet_capacity",
        start_services=False,
    )
    run = pipeline.new_run(config)
    tag = f"k{run.run_id[-6:]}{machines}{mix[0]}{rate_hz:g}".replace(".", "_")
    run.kafka = replace(run.kafka, topic_prefix=f"cap{run.run_id}m{machines}{mix}r{rate_hz:g}.")
    prepare_database(run)
    pipeline.create_topics(run)
    result: dict[str, Any] = {"machines": machines, "mix": mix, "rate_hz": rate_hz}
    # ids unique to this run: a demo or test elsewhere on the shared broker uses c01-m01 too
    # (same MQTT client ids would kick each other off, same clinics would mix traffic)
    fleet_cfg = FleetConfig(
        clinics=clinics,
        machines_per_clinic=MACHINES_PER_CLINIC,
        patients_per_machine=2,
        seed=args.seed,
        mode="live",
        duration_s=args.duration_s,
        rate_hz=rate_hz,
        id_prefix=tag,
    )
    try:
        start_roles(run, [f"{tag}c{c + 1:02d}" for c in range(clinics)])
        fleet = build_fleet(fleet_cfg)
        sims = fleet.machines[:machines]
        active = set(range(machines))
        if mix == "clinic":
            k = max(1, round(machines * args.active_fraction))
            active = set(random.Random(args.seed).sample(range(machines), k))
        for i, sim in enumerate(sims):
            sim.fill_idle = mix == "all"
            if i not in active:  # connected, nobody training: no sessions, no samples
                sim.scripts = _no_sessions
        result["active_machines"] = len(active)
        pipeline.publish_prescriptions(run, fleet.prescriptions)
        FLEET_OF_CHILD[:] = [fleet]
        result.update(measure(run, sims, fleet, args))
    finally:
        run.roles.stop()
        delete_topics(run)
    return result


def _no_sessions() -> Any:
    return iter(())


def prepare_database(run: Any) -> None:
    """A fresh, migrated database (no clinic roles: nothing here reads as a clinic)."""
    from psycopg import sql

    from storage.migrate import migrate

    admin = os.environ.get(pipeline.ADMIN_DSN_ENV, pipeline.DEFAULT_ADMIN_DSN)
    owner = psycopg.conninfo.conninfo_to_dict(run.dsn).get("user", "sledfleet")
    with psycopg.connect(admin, autocommit=True) as conn:
        name = sql.Identifier(run.config.database)
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(name))
        conn.execute(
            sql.SQL("CREATE DATABASE {} OWNER {}").format(name, sql.Identifier(str(owner)))
        )
    with psycopg.connect(run.dsn, autocommit=True) as conn:
        migrate(conn)


def start_roles(run: Any, clinic_ids: list[str]) -> None:
    """Bridge, worker(s) and sink as the demo starts them, subscribed to these clinics."""
    from dashboards.demo.processes import Role, free_port

    logs = run.work_dir / "logs"
    common = {"SLEDFLEET_KAFKA_TOPIC_PREFIX": run.kafka.topic_prefix, **pipeline.LATENCY_PROFILE}
    port = free_port()
    bridge_env = {
        **common,
        "SLEDFLEET_BRIDGE_METRICS_PORT": str(port),
        "SLEDFLEET_BRIDGE_SHARE_GROUP": f"cap-{run.run_id}",
        "SLEDFLEET_BRIDGE_CLIENT_ID": f"cap-bridge-{run.run_id}",
        "SLEDFLEET_BRIDGE_SESSION_EXPIRY_S": "600",
        "SLEDFLEET_BRIDGE_CLINIC_FILTER": ",".join(clinic_ids),
    }
    url = f"http://127.0.0.1:{port}/healthz"
    run.roles.start(Role("bridge", ["bridge"], bridge_env, logs / "bridge.log", url))
    for i in range(run.config.workers):
        port = free_port()
        worker_env = {
            **common,
            "SLEDFLEET_STREAM_APP_ID": f"sledfleet-demo-{run.run_id}",
            "SLEDFLEET_STREAM_DATA_DIR": str(run.work_dir / f"stream-{i + 1}"),
            "SLEDFLEET_STREAM_WEB_PORT": str(port),
        }
        name = f"stream-worker-{i + 1}"
        url = f"http://127.0.0.1:{port}/metrics"  # Faust's own "/" page is off
        role = Role(name, ["stream", "worker"], worker_env, logs / f"{name}.log", url)
        run.roles.start(role, timeout_s=180.0)
    port = free_port()
    sink_env = {
        **common,
        "SLEDFLEET_DATABASE_URL": run.dsn,
        "SLEDFLEET_SINK_GROUP": f"demo-sink-{run.run_id}",
        "SLEDFLEET_SINK_METRICS_PORT": str(port),
        "SLEDFLEET_SINK_REFRESH_S": "10",
    }
    url = f"http://127.0.0.1:{port}/health"
    run.roles.start(Role("sink", ["sink"], sink_env, logs / "sink.log", url))


def measure(run: Any, sims: list[Any], fleet: Any, args: argparse.Namespace) -> dict[str, Any]:
    roles = {r.name: r for r in run.roles.roles}
    prefix = run.kafka.topic_prefix
    bridge_url = roles["bridge"].health_url.replace("/healthz", "/metrics")
    sink_url = roles["sink"].health_url.replace("/health", "/metrics")
    worker_urls = [
        r.health_url.removesuffix("/metrics") + "/sledfleet/stats/"
        for n, r in roles.items()
        if "stream" in n
    ]
    pids = {n: [r.proc.pid] for n, r in roles.items() if r.proc is not None}
    pids["mosquitto (shared)"] = find_pids("mosquitto -c")
    pids["kafka (shared)"] = find_pids("kafka.Kafka")
    sampler = Sampler(
        {
            "worker lag": Lag(
                run.kafka.bootstrap,
                prefix + "sledfleet.telemetry",
                f"{prefix}sledfleet-demo-{run.run_id}",
            ),
            "sink lag": Lag(
                run.kafka.bootstrap, prefix + "sledfleet.reps", f"demo-sink-{run.run_id}"
            ),
        },
        pids,
    )
    # the agents run in child processes of args.edge_per_process machines (forked
    # before any thread of this one starts); each reports its stats, CPU and truth
    outbox = str(run.work_dir / "outbox")
    ctx = mp.get_context("fork")
    results: Any = ctx.Queue()
    slices = [
        list(range(i, min(i + args.edge_per_process, len(sims))))
        for i in range(0, len(sims), args.edge_per_process)
    ]
    children = [
        ctx.Process(target=edge_child, args=(sims, idx, outbox, results, os.getpid()), daemon=True)
        for idx in slices
    ]
    started_ns = min(m.t0_ns for m in sims)
    bridge0, sink0 = metrics(bridge_url), metrics(sink_url)
    t0 = time.monotonic()
    for child in children:
        child.start()
    threading.Thread(target=sampler.run, daemon=True).start()
    cpu0 = sampler.cpu()
    reports: list[dict[str, Any]] = []
    try:
        while len(reports) < len(children):
            with contextlib.suppress(queue.Empty):
                reports.append(results.get(timeout=2.0))
            run.roles.check()
            if any(c.exitcode not in (None, 0) for c in children):
                raise RoleFailed("an edge process failed")
            quiet_s = time.monotonic() - t0
            if quiet_s > NOTHING_ARRIVED_S and not metrics(bridge_url).get(
                "sledfleet_bridge_received_total"
            ):
                raise RoleFailed(
                    f"nothing reached the bridge in {quiet_s:.0f} s (edge agents not connected?)"
                )
    finally:
        sampler.stop.set()
        for child in children:
            if child.is_alive() and len(reports) < len(children):
                child.terminate()
            child.join(30)
    window_s = time.monotonic() - t0
    cpu1 = sampler.cpu()
    bridge1 = metrics(bridge_url)
    end_ns = started_ns + int(args.duration_s * 1e9)
    lag_at_end = sampler.lags["worker lag"].read()
    c0 = time.monotonic()
    pipeline.wait_for_database(run, "catch-up", None, CATCHUP_TIMEOUT_S)
    catchup_s = time.monotonic() - c0 - pipeline.CATCHUP_STABLE_S
    sink_s = time.monotonic() - t0 - pipeline.CATCHUP_STABLE_S
    sink1 = metrics(sink_url)
    sampler.stop.set()
    stats = {k: sum(r[k] for r in reports) for k in ("samples", "frames", "acked", "dropped")}
    edge_cpu_s = sum(r["cpu_s"] for r in reports)
    bridge = metrics(bridge_url)
    worker_stats = [http_json(u) for u in worker_urls]
    worker_frames = sum(int(w.get("frames", 0)) for w in worker_stats)
    busy_s = max((w["last_batch_ns"] - w["first_batch_ns"]) / 1e9 for w in worker_stats)
    want = {
        (r["machine_id"], r["session_id"], int(r["set_no"]), int(r["rep_no"]))
        for report in reports
        for r in report["truth_reps"]
        if r["end_ns"] <= end_ns - TRUTH_MARGIN_NS and r["start_ns"] >= started_ns
    }
    with psycopg.connect(run.dsn, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT machine_id, session_id, set_no, rep_no FROM sledfleet.reps"
            " WHERE start_ns >= %s",
            (started_ns,),
        ).fetchall()
        lat = conn.execute(Q_LATENCY, {"since_ns": started_ns}).fetchone()
    got = [(r[0], r[1], int(r[2]), int(r[3])) for r in rows]
    forwarded = bridge.get(
        f"sledfleet_bridge_forwarded_total{{topic={prefix}sledfleet.telemetry}}", 0
    )
    cpu = {
        role: sum(cpu1[role][p] - t for p, t in cpu0[role].items() if p in cpu1[role])
        / window_s
        * 100
        for role in cpu0
    }
    cpu[f"edge agents ({len(children)} processes)"] = edge_cpu_s / window_s * 100

    def delta(after: dict[str, float], before: dict[str, float], name: str) -> float:
        return after.get(name, 0.0) - before.get(name, 0.0)

    received = delta(bridge1, bridge0, "sledfleet_bridge_received_total")
    sink_rows = delta(sink1, sink0, "sledfleet_sink_rows_written_total")
    stages = {
        # rate inside the pipeline, the seconds it is taken over, the bare component's key
        "Mosquitto -> bridge (MQTT messages received)": (received / window_s, "mosquitto"),
        "bridge -> Kafka (messages produced, acked)": (
            delta(bridge1, bridge0, "sledfleet_bridge_forwarded_total") / window_s,
            "kafka produce",
        ),
        "stream worker (frames, first batch to last)": (
            worker_frames / busy_s if busy_s > 0 else 0.0,
            "worker",
        ),
        "sink (rows written, window + catch-up)": (sink_rows / sink_s, "sink"),
    }
    return {
        "stages": stages,
        "window_s": args.duration_s,
        "wall_s": window_s,
        "samples": stats["samples"],
        "samples_per_s": stats["samples"] / args.duration_s,
        "frames": stats["frames"],
        "edge_acked": stats["acked"],
        "edge_dropped": stats["dropped"],
        "edge_processes": len(children),
        "bridge_forwarded_telemetry": forwarded,
        "bridge_dead_lettered": bridge.get("sledfleet_bridge_dead_lettered_total", 0),
        "worker_frames": worker_frames,
        "truth_reps": len(want),
        "missing_reps": len(want - set(got)),
        "missing_sample": sorted(want - set(got))[:30],  # for diagnosis (JSON output)
        "duplicate_reps": len(got) - len(set(got)),
        "latency": dict(zip(("n", "p50", "p95", "p99"), lat, strict=True)) if lat else {},
        "lag_at_end": lag_at_end,
        "catchup_s": max(0.0, catchup_s),
        "lag_series": sampler.series,
        "cpu_pct": cpu,
        "cpu_us_per_frame": {
            k: v / 100 * window_s / max(1, stats["frames"]) * 1e6 for k, v in cpu.items()
        },
    }


def edge_child(sims: list[Any], idx: list[int], outbox: str, results: Any, parent: int) -> None:
    """One edge process: agents for ``sims[idx]`` until their data is acknowledged; it
    ends with the benchmark even when that is killed with SIGKILL."""
    from dashboards.demo.processes import die_with_parent

    preexec = die_with_parent(parent)
    if preexec is not None:
        preexec()
    mine = [sims[i] for i in idx]
    base = replace(load(EdgeSettings), outbox_dir=outbox)
    runner = FleetRunner(
        [(base.for_machine(m.clinic_id, m.machine_id), m.source()) for m in mine],
        load(MqttSettings),
    )
    cpu0 = time.process_time()
    st = runner.run()
    ids = {m.machine_id for m in mine}
    truth = _truth_reps(ids)
    results.put(
        {
            "samples": st.samples,
            "frames": st.frames,
            "acked": st.acked,
            "dropped": st.dropped_frames,
            "cpu_s": time.process_time() - cpu0,
            "truth_reps": truth,
        }
    )


def _truth_reps(ids: set[str]) -> list[dict[str, Any]]:
    from edge.simulator.truth import ground_truth

    fleet = FLEET_OF_CHILD[0]
    with fleet._lock:
        reps = ground_truth(fleet)["reps"]
    return [r for r in reps if r["machine_id"] in ids]


FLEET_OF_CHILD: list[Any] = []
"""The fleet, set before the edge processes fork (they plan sessions in their own copy)."""


def delete_topics(run: Any) -> None:
    try:
        admin = KafkaAdminClient(bootstrap_servers=run.kafka.bootstrap)
        try:
            admin.delete_topics(
                [s.name for s in topic_specs(TopicsSettings(), run.kafka.topic_prefix)]
            )
        finally:
            admin.close()
    except Exception as exc:  # leftover topics are harmless, a failed cleanup is logged
        logging.warning("deleting topics failed: %s", exc)


# --- report ---------------------------------------------------------------------------------


def report(r: dict[str, Any], bare: dict[str, capacity_bare.Bare]) -> None:
    lat = r["latency"]
    lossless = (
        r["edge_dropped"] == 0
        # the bridge may forward a frame twice (QoS 1 redelivery after an agent's reconnect:
        # at least once); the worker counts each (machine, seq) once
        and r["bridge_forwarded_telemetry"] >= r["frames"] == r["worker_frames"]
        and r["missing_reps"] == 0
        and r["duplicate_reps"] == 0
    )
    lags = [
        row.get("worker lag") for row in r["lag_series"] if isinstance(row.get("worker lag"), int)
    ]
    print(
        f"\n== {r['machines']} machines ({r['active_machines']} training), mix {r['mix']}, "
        f"{r['rate_hz']:g} Hz: {r['samples_per_s']:,.0f} samples/s offered over "
        f"{r['window_s']:.0f} s; zero loss: {'YES' if lossless else 'NO'}"
    )
    print(
        f"   frames: edge {r['frames']:,} (dropped {r['edge_dropped']}), bridge "
        f"{r['bridge_forwarded_telemetry']:,.0f}, worker {r['worker_frames']:,}; reps: truth "
        f"{r['truth_reps']:,}, missing {r['missing_reps']}, duplicates {r['duplicate_reps']}"
    )
    if lat:
        p50, p99 = lat.get("p50"), lat.get("p99")
        print(
            f"   latency rep end -> stored row: n {lat.get('n')}, "
            f"p50 {p50 if p50 is None else round(p50, 2)} s, "
            f"p99 {p99 if p99 is None else round(p99, 2)} s"
        )
    print(
        f"   worker lag (frames): max {max(lags, default=0):,}, at the window's end "
        f"{r['lag_at_end']}; catch-up after the window {r['catchup_s']:.0f} s"
    )
    print(
        "   lag over time: "
        + ", ".join(
            f"{row['t']}s:{row.get('worker lag')}/{row.get('sink lag')}" for row in r["lag_series"]
        )
        + "  (worker/sink)"
    )
    for role, pct in sorted(r["cpu_pct"].items()):
        us = r["cpu_us_per_frame"][role]
        print(f"   CPU {role:32} {pct:6.1f} % of a core  {us:8.0f} us/frame")
    print(
        "   stage in the pipeline vs its bare component (same run); a ratio is the stage's "
        "capacity inside the pipeline only where the stage fell behind (lag), otherwise "
        "it is the share of the bare rate the offered load needed:"
    )
    behind = r["wall_s"] - r["window_s"]
    if behind > 5:
        print(f"   (edge agents were still waiting for acks {behind:.0f} s after the window)")
    for stage, (rate, key) in r["stages"].items():
        b = bare.get(key)
        ratio = f"{rate / b.rate:5.2f}x" if b and b.rate else "  n/a"
        base = f"{b.rate:10,.0f} {b.unit:8} ({b.name})" if b else "not measured"
        print(f"     {stage:46} {rate:10,.0f}/s  {ratio} of bare {base}")


def measure_bare(args: argparse.Namespace) -> dict[str, capacity_bare.Bare]:
    """The bare components, on a database of their own (dropped afterwards)."""
    run = pipeline.new_run(
        pipeline.DemoConfig(database="sledfleet_capacity_bare", start_services=False)
    )
    prepare_database(run)
    env = {k: v for k, v in pipeline.LATENCY_PROFILE.items() if k.startswith("SLEDFLEET_CORE")}
    bare = capacity_bare.measure_all(
        load(MqttSettings), run.kafka, run.dsn, env, args.bare_messages
    )
    print("bare components (same servers, this run):")
    for b in bare.values():
        print(f"   {b.name:46} {b.rate:10,.0f} {b.unit} {b.note}")
    return bare


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--machines", default="100,300", help="comma-separated fleet sizes")
    ap.add_argument("--mix", default="all,clinic", help="all (always streaming) and/or clinic")
    ap.add_argument("--duration-s", type=float, default=120.0, help="live window per step")
    ap.add_argument("--rate-hz", default="100", help="comma-separated sample rates per machine")
    ap.add_argument(
        "--steps",
        help="explicit steps machines:mix:rate, comma-separated (instead of the cross product "
        "of --machines, --mix and --rate-hz), e.g. 1000:clinic:100,300:all:50",
    )
    ap.add_argument("--active-fraction", type=float, default=ACTIVE_FRACTION)
    ap.add_argument("--edge-per-process", type=int, default=EDGE_MACHINES_PER_PROCESS)
    ap.add_argument(
        "--bare-messages", type=int, default=20_000, help="messages per bare measurement (0: skip)"
    )
    ap.add_argument("--workers", type=int, default=1, help="stream worker processes")
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--json", type=Path, help="also write the results here")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(message)s")
    logging.getLogger("kafka").setLevel(logging.ERROR)  # retries on fresh topics: noise
    if args.steps:
        steps = [
            (int(n), mix, float(hz)) for n, mix, hz in (x.split(":") for x in args.steps.split(","))
        ]
    else:
        steps = [
            (int(n), mix.strip(), float(hz))
            for n in args.machines.split(",")
            for mix in args.mix.split(",")
            for hz in args.rate_hz.split(",")
        ]
    print(f"load average (1 min) at the start: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    bare = measure_bare(args) if args.bare_messages else {}
    results: list[dict[str, Any]] = [{"bare": {k: vars(v) for k, v in bare.items()}}]
    for n, mix, hz in steps:
        load0 = os.getloadavg()[0]
        try:
            r = run_step(n, mix, hz, args)
        except RoleFailed as exc:  # a role crashed under this load: that is the result
            print(f"\n== {n} machines, mix {mix}, {hz:g} Hz: FAILED: {exc}")
            results.append({"machines": n, "mix": mix, "rate_hz": hz, "failed": str(exc)})
            continue
        r["load_average"] = (load0, os.getloadavg()[0])
        report(r, bare)
        print(
            f"   load average (1 min) at the step's start / end: {load0:.1f} / "
            f"{os.getloadavg()[0]:.1f}"
        )
        results.append(r)
        if args.json:
            args.json.write_text(json.dumps(results, indent=1, default=str))
    print(f"\nload average (1 min) at the end: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
