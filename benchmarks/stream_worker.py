"""Throughput of one stream worker beside a trivial Faust agent on the same topic.

N frames (20 and then 50 samples each) of a simulated multi-clinic day are pre-loaded into a fresh
set of topics on the real Kafka (127.0.0.1:9092 unless SLEDFLEET_KAFKA_BOOTSTRAP).
Then, in the same run:

1. ``stream.core`` alone, in-process, on the same frames (the computation's ceiling);
2. a trivial Faust agent (``take_events`` + count, nothing else) as a subprocess;
3. ``sledfleet stream worker`` as a subprocess: decode, validate, core, outputs
   produced and acknowledged, state written to the changelog and acknowledged.

Worker and trivial agent are timed from their first batch to their last (wall clock
inside the process, so start-up and group joins are excluded). Prints frames/s,
samples/s, frames per CPU-second and the ratios, for 20- and 50-sample frames. Target:
≥ 3,000 frames/s (≥ 60,000 samples/s, i.e. 20-sample frames) per worker.

    .venv/bin/python benchmarks/stream_worker.py [--clinics 8 --machines 4 --sessions 3]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "integration"))

from stream_support import (  # noqa: E402
    DayPlan,
    Worker,
    caught_up,
    free_port,
    produce,
    setup_topics,
    synthetic_day,
    wait_until,
)

from edge import contract  # noqa: E402
from edge.settings import KafkaSettings  # noqa: E402

TRIVIAL = """
import json, sys, time, faust
bootstrap, topic, out = sys.argv[1], sys.argv[2], sys.argv[4]
n, port, tuning, datadir = int(sys.argv[3]), int(sys.argv[5]), json.loads(sys.argv[6]), sys.argv[7]
app = faust.App("bench-trivial-" + topic, broker="kafka://" + bootstrap, store="memory://",
                web_port=port, broker_session_timeout=6.0, broker_heartbeat_interval=0.5,
                consumer_auto_offset_reset="earliest", topic_allow_declare=True,
                datadir=datadir, **tuning)
source = app.topic(topic, key_type=bytes, value_type=bytes, key_serializer="raw",
                   value_serializer="raw")
seen = {"n": 0, "first": 0, "samples": 0}

@app.agent(source)
async def count(stream):
    async for events in stream.take_events(1000, 0.1):
        if not seen["first"]:
            seen["first"], seen["cpu_first"] = time.time_ns(), time.process_time_ns()
        seen["n"] += len(events)
        if seen["n"] >= n:
            with open(out, "w") as f:
                json.dump({"first": seen["first"], "last": time.time_ns(), "n": seen["n"],
                           "cpu": time.process_time_ns() - seen["cpu_first"]}, f)

faust.Worker(app, loglevel="warning", quiet=True, redirect_stdouts=False).execute_from_commandline()
"""


def core_alone(inputs: list[Any]) -> tuple[float, float]:
    """(frames/s, frames per CPU-second) of ``MachineProcessor`` in-process, messages in
    produced order."""
    from stream.core.processor import MachineProcessor
    from stream.core.settings import CoreSettings

    proc = MachineProcessor(CoreSettings())
    states: dict[str, Any] = {}
    fn = {"telemetry": proc.on_frame, "event": proc.on_event, "state": proc.on_state}
    frames = 0
    t, cpu = time.perf_counter(), time.process_time()
    for kind, machine, payload in inputs:
        st = states.get(machine) or states.setdefault(
            machine, proc.new_state(payload["clinic_id"], machine)
        )
        now = payload.get("t0_ns") or payload.get("ts_ns")
        fn[kind](st, payload, now)
        frames += kind == "telemetry"
    return frames / (time.perf_counter() - t), frames / (time.process_time() - cpu)


def consumer_tuning() -> dict[str, int]:
    """The worker's Faust consumer settings, so both sides read the topic alike."""
    from stream.app.settings import StreamSettings

    s = StreamSettings()
    return {
        "consumer_max_fetch_size": s.fetch_max_bytes,
        "broker_max_poll_records": s.max_poll_records,
        "stream_buffer_maxsize": s.buffer_max,
    }


def run_trivial(kafka: KafkaSettings, n_frames: int, workdir: Path) -> tuple[float, float]:
    """(frames/s, frames per CPU-second) of the trivial agent."""
    out = workdir / "trivial.json"
    script = workdir / "trivial.py"
    script.write_text(TRIVIAL)
    topic = kafka.topic_prefix + contract.KAFKA_TELEMETRY
    log = (workdir / "trivial.log").open("wb")
    proc = subprocess.Popen(
        [
            sys.executable,
            str(script),
            kafka.bootstrap,
            topic,
            str(n_frames),
            str(out),
            str(free_port()),
            json.dumps(consumer_tuning()),
            str(workdir / "trivial-data"),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_until(out.exists, 300, "the trivial agent to count every frame", every=0.2)
        time.sleep(0.2)
        data = json.loads(out.read_text())
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    return n_frames / ((data["last"] - data["first"]) / 1e9), n_frames / (data["cpu"] / 1e9)


def run_worker(kafka: KafkaSettings, n_frames: int, workdir: Path) -> tuple[float, dict[str, Any]]:
    w = Worker(
        kafka,
        app_id="bench",
        workdir=workdir,
        name="worker",
        extra_env={"SLEDFLEET_STREAM_LOGLEVEL": "warning"},
    )
    w.start()
    try:

        def done() -> bool:
            assert w.alive(), w.log_text()[-3000:]
            try:
                return int(w.stats()["frames"]) >= n_frames and caught_up(kafka, w.group)
            except OSError:
                return False

        wait_until(done, 900, "the worker to handle every frame", every=0.5)
        stats = w.stats()
    finally:
        w.stop()
    seconds = (stats["last_batch_ns"] - stats["first_batch_ns"]) / 1e9
    return n_frames / seconds, stats


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clinics", type=int, default=8)
    parser.add_argument("--machines", type=int, default=4, help="machines per clinic")
    parser.add_argument("--sessions", type=int, default=3, help="sessions per machine")
    parser.add_argument(
        "--frame-samples",
        default="20,50",
        help="samples per frame, comma-separated; one measurement each (default 20,50: the "
        "target's 3,000 frames/s = 60,000 samples/s implies 20; the edge agent sends 50)",
    )
    args = parser.parse_args()
    for size in (int(x) for x in args.frame_samples.split(",")):
        print(f"\n=== {size}-sample frames ===")
        measure(
            DayPlan(
                clinics=args.clinics,
                machines_per_clinic=args.machines,
                sessions_per_machine=args.sessions,
                frame_samples=size,
            )
        )
    return 0


def measure(plan: DayPlan) -> None:
    """Pre-load one simulated day into fresh topics; time core, trivial agent and worker."""
    t = time.perf_counter()
    inputs = synthetic_day(plan)
    frames = [i for i in inputs if i[0] == "telemetry"]
    n = len(frames)
    samples = sum(len(p["position_mm"]) for _, _, p in frames)
    per_frame = samples / n
    print(
        f"input: {n} frames ({samples} samples, {per_frame:.1f}/frame), "
        f"{len(inputs) - n} events/state, {plan.clinics * plan.machines_per_clinic} machines "
        f"(generated in {time.perf_counter() - t:.1f} s)"
    )

    kafka = KafkaSettings(
        bootstrap=os.environ.get("SLEDFLEET_KAFKA_BOOTSTRAP", "127.0.0.1:9092"),
        topic_prefix=f"bench{uuid.uuid4().hex[:8]}.",
    )
    setup_topics(kafka)
    t = time.perf_counter()
    produce(kafka, inputs)
    print(f"pre-loaded into {kafka.topic_prefix}* in {time.perf_counter() - t:.1f} s")

    core_fps, core_cpu_fps = core_alone(inputs)
    with tempfile.TemporaryDirectory(prefix="sf-bench-") as tmp:
        trivial_fps, trivial_cpu_fps = run_trivial(kafka, n, Path(tmp))
        worker_fps, stats = run_worker(kafka, n, Path(tmp))

    cpu_s = (stats["last_batch_cpu_ns"] - stats["first_batch_cpu_ns"]) / 1e9
    worker_cpu_fps = n / cpu_s
    print()
    print("wall: first batch to last; CPU: the process's CPU time (all threads) over the same span")
    print(f"{'':26}{'frames/s':>10}{'samples/s':>11}{'frames/CPU-s':>14}{'us CPU/frame':>14}")
    for name, fps, cpu_fps in (
        ("stream.core alone", core_fps, core_cpu_fps),
        ("trivial Faust agent", trivial_fps, trivial_cpu_fps),
        ("sledfleet stream worker", worker_fps, worker_cpu_fps),
    ):
        print(
            f"{name:26}{fps:10,.0f}{fps * per_frame:11,.0f}{cpu_fps:14,.0f}{1e6 / cpu_fps:14,.0f}"
        )
    print()
    print(
        f"worker / trivial agent: {worker_fps / trivial_fps:.2f} wall, "
        f"{worker_cpu_fps / trivial_cpu_fps:.2f} CPU"
    )
    print(
        f"worker / core alone:    {worker_fps / core_fps:.2f} wall, "
        f"{worker_cpu_fps / core_cpu_fps:.2f} CPU"
    )
    print(
        f"target 3,000 frames/s:  {'met' if worker_fps >= 3000 else 'NOT met'} "
        f"({worker_fps / 3000:.2f}x wall, {worker_cpu_fps / 3000:.2f}x per CPU-second); "
        f"samples/s {worker_fps * per_frame:,.0f} vs 60,000 "
        f"({'met' if worker_fps * per_frame >= 60000 else 'NOT met'})"
    )
    print(
        f"worker: {stats['batches']} batches, {stats['records_out']} records out, "
        f"{stats['dead_letters']} dead letters, {stats['errors']} errors"
    )
    busy = {k: stats[f"{k}_ns"] / 1e9 for k in ("read_ahead", "compute", "flush")}
    total = (stats["last_batch_ns"] - stats["first_batch_ns"]) / 1e9
    print(
        f"worker wall {total:.1f} s: "
        + ", ".join(f"{k} {v:.1f} s ({v / total:.0%})" for k, v in busy.items())
        + f", between batches {total - sum(busy.values()):.1f} s"
    )


if __name__ == "__main__":
    sys.exit(main())
