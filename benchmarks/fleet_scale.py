"""1,000 machines through one stream worker: no crash, nothing lost, state bounded.

A simulated day for N machines (default 1,000: 100 clinics × 10 machines) is pre-loaded
into a fresh set of topics with P input partitions (default 12, so ≥ 80 machines share
each partition), every machine mid-session at the same time (their sessions start within
``--spread`` seconds), interleaved by device time as a live fleet's are. One
``sledfleet stream worker`` then processes it; the benchmark checks

* the worker never restarted or crashed (one process, exit code 0 at SIGTERM);
* every rep, set and session equals ``stream.core`` run in-process on the same input
  (``stream_support.reference``): nothing lost, nothing extra;
* the largest machine state value written to the changelog, measured twice: by the
  worker (``state_max_bytes``) and by reading the changelog topic back, next to Kafka's
  default message limit (1 MiB) — the old per-partition value outgrew it at 28 machines.

Prints frames/s and the figures. Real Kafka (SLEDFLEET_KAFKA_BOOTSTRAP, default
127.0.0.1:9092); takes a few minutes on 2 cores.

    .venv/bin/python benchmarks/fleet_scale.py [--clinics 100 --machines 10 --partitions 12]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "integration"))

from kafka import KafkaConsumer, TopicPartition  # noqa: E402
from stream_support import (  # noqa: E402
    DayPlan,
    Worker,
    caught_up,
    dedup,
    dedup_all,
    diff_summary,
    prescriptions_for,
    produce,
    publish_prescriptions,
    read_outputs,
    reference,
    synthetic_day,
    wait_until,
)

from edge.settings import KafkaSettings  # noqa: E402
from stream.topics import TopicsSettings, ensure_topics  # noqa: E402

KAFKA_DEFAULT_MAX_MESSAGE = 1_048_588


def changelog_max_bytes(kafka: KafkaSettings, topic: str) -> tuple[int, int]:
    """(largest value, number of records) of a topic, read back from the start."""
    consumer = KafkaConsumer(
        bootstrap_servers=kafka.servers,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        fetch_max_bytes=64 * 1024 * 1024,
    )
    try:
        parts = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        ends = consumer.end_offsets(parts)
        consumer.assign(parts)
        largest, n = 0, 0
        deadline = time.monotonic() + 300
        while any(consumer.position(tp) < ends[tp] for tp in parts):
            if time.monotonic() > deadline:
                raise TimeoutError(f"could not read {topic} to its end")
            for records in consumer.poll(timeout_ms=500).values():
                for r in records:
                    n += 1
                    largest = max(largest, len(r.value or b""))
        return largest, n
    finally:
        consumer.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clinics", type=int, default=100)
    parser.add_argument("--machines", type=int, default=10, help="machines per clinic")
    parser.add_argument("--partitions", type=int, default=12, help="input partitions")
    parser.add_argument("--sets", type=int, default=2)
    parser.add_argument("--reps", type=int, default=4)
    parser.add_argument("--spread", type=int, default=30, help="session start spread (s)")
    args = parser.parse_args()

    plan = DayPlan(
        clinics=args.clinics,
        machines_per_clinic=args.machines,
        sessions_per_machine=1,
        sets=args.sets,
        reps=args.reps,
        start_spread_s=args.spread,
    )
    machines = plan.clinics * plan.machines_per_clinic
    kafka = KafkaSettings(
        bootstrap=os.environ.get("SLEDFLEET_KAFKA_BOOTSTRAP", "127.0.0.1:9092"),
        topic_prefix=f"scale{uuid.uuid4().hex[:8]}.",
    )
    ensure_topics(kafka, TopicsSettings(partitions=args.partitions, low_volume_partitions=1))
    t = time.perf_counter()
    inputs = synthetic_day(plan)
    rx = prescriptions_for(inputs)
    frames = sum(1 for kind, _, _ in inputs if kind == "telemetry")
    print(
        f"{machines} machines on {args.partitions} partitions "
        f"(≥ {machines // args.partitions} per partition), {frames:,} frames, "
        f"{len(inputs) - frames:,} events/state; built in {time.perf_counter() - t:.0f} s",
        flush=True,
    )
    t = time.perf_counter()
    want = dedup(reference(inputs, rx, args.partitions))
    print(f"reference (stream.core in-process): {time.perf_counter() - t:.0f} s", flush=True)
    t = time.perf_counter()
    publish_prescriptions(kafka, rx)
    produce(kafka, inputs)
    print(f"produced to Kafka in {time.perf_counter() - t:.0f} s", flush=True)

    workdir = Path(tempfile.mkdtemp(prefix="sledfleet-scale-"))
    print(f"worker log: {workdir / 'scale.log'}", flush=True)
    w = Worker(kafka, app_id="scale", workdir=workdir, name="scale").start()
    try:

        def done() -> bool:
            assert w.alive(), f"worker died:\n{w.log_text()[-3000:]}"
            try:
                seen = int(w.stats()["frames"])
            except OSError:  # its web server is not up yet
                return False
            return seen >= frames and caught_up(kafka, w.group)

        wait_until(done, 3600, "the worker to process the fleet", every=1.0)

        def complete() -> bool:
            return dedup_all(read_outputs(kafka)).keys() >= {
                k for k in want if k[0] in ("rep", "set", "session")
            }

        wait_until(complete, 300, "every rep, set and session", every=2.0)
        stats: dict[str, Any] = w.stats()
        got = dedup_all(read_outputs(kafka))
    finally:
        code = w.stop(timeout=120)
    log = w.log_text()
    kinds = ("rep", "set", "session")
    mine = {k: v for k, v in got.items() if k[0] in kinds}
    theirs = {k: v for k, v in want.items() if k[0] in kinds}
    exact = mine == theirs
    largest, n_state = changelog_max_bytes(kafka, f"{kafka.topic_prefix}scale-machines-changelog")
    seconds = (stats["last_batch_ns"] - stats["first_batch_ns"]) / 1e9
    print()
    print(f"worker starts           : {log.count('===== start')} (1 = never restarted)")
    print(f"worker exit code        : {code}")
    print(
        f"frames processed        : {stats['frames']:,} in {seconds:.0f} s "
        f"({stats['frames'] / seconds:,.0f} frames/s)"
    )
    for kind in kinds:
        n_mine = sum(1 for k in mine if k[0] == kind)
        n_want = sum(1 for k in theirs if k[0] == kind)
        print(f"{kind + 's':<24}: {n_mine:,} stored of {n_want:,} expected")
    print(f"outputs equal reference : {exact}")
    print(f"dead letters / errors   : {stats['dead_letters']} / {stats['errors']}")
    print(
        f"largest state value     : {stats['state_max_bytes']:,} B (worker), "
        f"{largest:,} B (read back from {n_state:,} changelog records); "
        f"{largest / KAFKA_DEFAULT_MAX_MESSAGE:.1%} of Kafka's 1 MiB default"
    )
    if not exact:
        print(diff_summary(mine, theirs))
    ok = exact and code == 0 and log.count("===== start") == 1 and not stats["errors"]
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
