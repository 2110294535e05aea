"""Helpers for the stream worker's integration tests and benchmark: a synthetic
multi-clinic day framed by the edge's real ``Framer``, topic setup, worker
subprocesses (so kill -9 is real), reading output topics, and an in-process
reference run of ``stream.core`` on the same input. Real Kafka only."""

from __future__ import annotations

import json
import math
import os
import random
import signal
import subprocess
import time
import urllib.request
import uuid
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import polling
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import KafkaAdminClient
from kafka.partitioner.default import murmur2
from servers import free_port

from edge import contract
from edge.framing import DEFAULT_FRAME_SAMPLES, Framer
from edge.samples import Sample, SourceEvent
from edge.settings import KafkaSettings
from stream.app.settings import StreamSettings
from stream.records import natural_key
from stream.topics import TopicsSettings, ensure_topics

REPO = Path(__file__).resolve().parents[2]
SLEDFLEET = str(REPO / ".venv" / "bin" / "sledfleet")
DAY0_NS = 1_763_884_800 * 10**9  # 2025-11-23 08:00 UTC... any fixed day works
TEST_TOPICS = TopicsSettings(partitions=4, low_volume_partitions=1)
OUTPUT_KINDS = ("rep", "set", "session", "alert", "machine_status", "adherence")
wait_until = partial(polling.wait_until, every=0.2)
"""Polls every 0.2 s unless told: the stream waits read Kafka or a worker's HTTP page."""

Input = tuple[str, str, dict[str, Any]]  # (kind, machine_id, payload)


# --- synthetic day ---------------------------------------------------------------------------


@dataclass(frozen=True)
class DayPlan:
    clinics: int = 3
    machines_per_clinic: int = 2
    sessions_per_machine: int = 2
    sets: int = 3
    reps: int = 6
    rate_hz: float = 100.0
    rep_period_s: float = 2.4
    rest_s: float = 70.0  # > the core's set gap (60 s) so sets separate
    rom_mm: float = 300.0
    seed: int = 7
    frame_samples: int = DEFAULT_FRAME_SAMPLES
    start_spread_s: int = 600  # machines' first sessions start within this many seconds


def _machine_day(plan: DayPlan, clinic: str, machine: str, rng: random.Random) -> list[Input]:
    framer = Framer(clinic, machine, plan.rate_hz, frame_samples=plan.frame_samples)
    dt_ns = round(1e9 / plan.rate_hz)
    out: list[Input] = []

    def emit(items: Iterable[Any]) -> None:
        for o in items:
            out.append((o.kind, machine, o.payload))

    t = DAY0_NS + rng.randrange(0, max(1, plan.start_spread_s)) * 10**9
    out.append(
        (
            "state",
            machine,
            {
                "v": 1,
                "clinic_id": clinic,
                "machine_id": machine,
                "status": "online",
                "ts_ns": t,
                "rate_hz": plan.rate_hz,
            },
        )
    )
    for s in range(plan.sessions_per_machine):
        patient = f"p-{machine}-{s}"
        session_id = f"s-{machine}-{s}-{uuid.uuid4().hex[:6]}"
        load = 40.0 + 10 * rng.randrange(0, 5)
        emit(
            framer.feed(
                SourceEvent(t, "session_started", {"patient_id": patient, "session_id": session_id})
            )
        )
        asym = rng.uniform(-0.1, 0.1)

        def still(seconds: float, at: int, load: float = load) -> int:
            for _ in range(int(seconds * plan.rate_hz)):
                emit(framer.feed(Sample(at, 100.0, load * 4.9, load * 4.9, load)))
                at += dt_ns
            return at

        t = still(2.0, t)
        for _set in range(plan.sets):
            for _rep in range(plan.reps):
                n = int(plan.rep_period_s * plan.rate_hz)
                for i in range(n):
                    phase = 2 * math.pi * i / n
                    pos = 100.0 + plan.rom_mm * (1 - math.cos(phase)) / 2
                    f = load * 9.81 * (1 + 0.3 * math.sin(phase))
                    emit(
                        framer.feed(
                            Sample(t, pos, f * (0.5 - asym / 2), f * (0.5 + asym / 2), load)
                        )
                    )
                    t += dt_ns
            t = still(plan.rest_s if _set < plan.sets - 1 else 2.0, t)
        emit(framer.feed(SourceEvent(t, "session_ended", {"session_id": session_id})))
        t += 3600 * 10**9  # an hour until the next patient
    emit(framer.flush())
    return out


def _time_of(item: Input) -> int:
    kind, _, payload = item
    return int(payload["t0_ns"] if kind == "telemetry" else payload.get("ts_ns", 0))


def synthetic_day(plan: DayPlan | None = None) -> list[Input]:
    """Every clinic's machines, their messages interleaved by device time (as the
    bridge would publish them)."""
    plan = plan or DayPlan()
    rng = random.Random(plan.seed)
    per_machine = [
        _machine_day(plan, f"c{c}", f"c{c}-m{m}", rng)
        for c in range(plan.clinics)
        for m in range(plan.machines_per_clinic)
    ]
    merged = [item for items in per_machine for item in items]
    merged.sort(key=_time_of)  # stable: a machine's own order is kept for equal times
    return merged


def prescriptions_for(inputs: list[Input]) -> list[dict[str, Any]]:
    out = []
    for kind, _, payload in inputs:
        if kind == "event" and payload["type"] == "session_started":
            out.append(
                {
                    "v": 1,
                    "kind": "prescription",
                    "prescription_id": f"rx-{payload['patient_id']}",
                    "patient_id": payload["patient_id"],
                    "clinic_id": payload["clinic_id"],
                    "sessions_per_week": 2,
                    "sets": 3,
                    "reps": 6,
                    "load_kg": 50.0,
                    "max_velocity_loss_pct": 25.0,
                    "start_date": "2025-11-17",
                    "end_date": None,
                }
            )
    return out


# --- Kafka -------------------------------------------------------------------------------------


def setup_topics(kafka: KafkaSettings) -> None:
    ensure_topics(kafka, TEST_TOPICS)


def topic_for(kafka: KafkaSettings, kind: str) -> str:
    return kafka.topic_prefix + contract.KAFKA_BY_KIND[kind]


def produce(
    kafka: KafkaSettings, inputs: Iterable[Input], raw: Iterable[tuple[str, bytes, bytes]] = ()
) -> int:
    """Publish inputs keyed by machine_id (plus raw (topic, key, value) messages)."""
    producer = KafkaProducer(
        bootstrap_servers=kafka.servers, acks="all", linger_ms=5, batch_size=256 * 1024
    )
    n = 0
    try:
        for kind, machine, payload in inputs:
            producer.send(
                topic_for(kafka, kind), key=machine.encode(), value=contract.encode(payload)
            )
            n += 1
        for topic, key, value in raw:
            producer.send(topic, key=key, value=value)
            n += 1
        producer.flush(timeout=60)
    finally:
        producer.close(timeout=10)
    return n


def publish_prescriptions(kafka: KafkaSettings, records: list[dict[str, Any]]) -> None:
    topic = kafka.topic_prefix + contract.KAFKA_PRESCRIPTIONS
    produce(kafka, [], [(topic, r["patient_id"].encode(), contract.encode(r)) for r in records])


def read_topic(kafka: KafkaSettings, topic: str) -> list[tuple[bytes | None, bytes]]:
    """Every message of ``topic`` up to its current end."""
    consumer = KafkaConsumer(bootstrap_servers=kafka.bootstrap, enable_auto_commit=False)
    try:
        parts = consumer.partitions_for_topic(topic) or set()
        tps = [TopicPartition(topic, p) for p in sorted(parts)]
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        end = consumer.end_offsets(tps)
        out: list[tuple[bytes | None, bytes]] = []
        deadline = time.monotonic() + 60
        while any(consumer.position(tp) < end[tp] for tp in tps):
            if time.monotonic() > deadline:
                raise AssertionError(f"could not read {topic} to its end")
            for records in consumer.poll(timeout_ms=500).values():
                out.extend((r.key, r.value) for r in records)
        return out
    finally:
        consumer.close()


def read_outputs(kafka: KafkaSettings) -> dict[str, list[dict[str, Any]]]:
    """Output records by kind (duplicates kept)."""
    out: dict[str, list[dict[str, Any]]] = {}
    for kind in OUTPUT_KINDS:
        topic = (
            kafka.topic_prefix
            + {
                "rep": contract.KAFKA_REPS,
                "set": contract.KAFKA_SETS,
                "session": contract.KAFKA_SESSIONS,
                "alert": contract.KAFKA_ALERTS,
                "machine_status": contract.KAFKA_MACHINE_STATUS,
                "adherence": contract.KAFKA_ADHERENCE,
            }[kind]
        )
        out[kind] = [contract.decode(v) for _, v in read_topic(kafka, topic)]
    return out


def end_offsets(kafka: KafkaSettings, topics: list[str]) -> dict[TopicPartition, int]:
    consumer = KafkaConsumer(bootstrap_servers=kafka.servers)
    try:
        tps = [TopicPartition(t, p) for t in topics for p in consumer.partitions_for_topic(t) or ()]
        return dict(consumer.end_offsets(tps))
    finally:
        consumer.close()


def committed(kafka: KafkaSettings, group: str) -> dict[TopicPartition, int]:
    """The group's committed offsets; none while its coordinator is not there yet (a
    fresh broker creates the offsets topic on the first request, then loads it: on a
    loaded machine that takes a while, and the broker answers "load in progress")."""
    from kafka.errors import (
        CoordinatorLoadInProgressError,
        CoordinatorNotAvailableError,
        NotCoordinatorError,
    )

    admin = KafkaAdminClient(bootstrap_servers=kafka.servers)
    try:
        try:
            offsets = admin.list_group_offsets({group: None}).get(group, {})
        except (CoordinatorLoadInProgressError, CoordinatorNotAvailableError, NotCoordinatorError):
            return {}
        return {tp: meta.offset for tp, meta in offsets.items()}
    finally:
        admin.close()


def group_members(kafka: KafkaSettings, group: str) -> int:
    """Members of the consumer group as its coordinator sees them (a killed member stays
    until its session times out)."""
    admin = KafkaAdminClient(bootstrap_servers=kafka.servers)
    try:
        return len(admin.describe_groups([group])[group]["members"])
    finally:
        admin.close()


def input_topics(kafka: KafkaSettings) -> list[str]:
    """The worker's one machine input topic (telemetry, events and state, per machine)."""
    return [kafka.topic_prefix + contract.KAFKA_TELEMETRY]


def caught_up(kafka: KafkaSettings, group: str) -> bool:
    """The group has committed every input message."""
    return not lagging(kafka, group)


def lagging(
    kafka: KafkaSettings, group: str, topics: list[str] | None = None
) -> dict[str, tuple[int, int]]:
    """Partitions of ``topics`` (default: the worker's input) the group has not committed
    to their end: {tp: (committed, end)}."""
    ends = end_offsets(kafka, input_topics(kafka) if topics is None else topics)
    done = committed(kafka, group)
    return {
        f"{tp.topic}:{tp.partition}": (done.get(tp, 0), end)
        for tp, end in ends.items()
        if end > 0 and done.get(tp, 0) < end
    }


# --- worker subprocess ---------------------------------------------------------------------------


@dataclass
class Worker:
    """``sledfleet stream worker`` as a child process with its own log file."""

    kafka: KafkaSettings
    app_id: str
    workdir: Path
    name: str = "w"
    extra_env: dict[str, str] = field(default_factory=dict)
    proc: subprocess.Popen[bytes] | None = None
    starts: int = 0
    web_port: int = 0
    env: dict[str, str] = field(default_factory=dict)

    @property
    def group(self) -> str:
        return self.kafka.topic_prefix + self.app_id

    @property
    def log_path(self) -> Path:
        return self.workdir / f"{self.name}.log"

    def start(self) -> Worker:
        self.starts += 1
        self.web_port = free_port()
        env = {
            **os.environ,
            "SLEDFLEET_KAFKA_BOOTSTRAP": self.kafka.bootstrap,
            "SLEDFLEET_KAFKA_TOPIC_PREFIX": self.kafka.topic_prefix,
            "SLEDFLEET_STREAM_APP_ID": self.app_id,
            "SLEDFLEET_STREAM_DATA_DIR": str(self.workdir / f"{self.name}-data"),
            "SLEDFLEET_STREAM_WEB_PORT": str(self.web_port),
            "SLEDFLEET_STREAM_TICK_INTERVAL_S": "1.0",
            "SLEDFLEET_STREAM_SESSION_TIMEOUT_S": "6.0",
            "SLEDFLEET_STREAM_HEARTBEAT_INTERVAL_S": "0.5",
            "SLEDFLEET_STREAM_REBALANCE_TIMEOUT_S": "10.0",
            "SLEDFLEET_STREAM_COMMIT_INTERVAL_S": "0.5",
            **self.extra_env,
        }
        self.env = env
        log = self.log_path.open("ab")
        log.write(f"\n===== start {self.starts} =====\n".encode())
        log.flush()
        self.proc = subprocess.Popen(
            [SLEDFLEET, "stream", "worker"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=self.workdir,
        )
        log.close()
        return self

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self, timeout: float = 30.0) -> int:
        """SIGTERM and wait for a clean exit; returns the exit code."""
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else 0
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)
            raise AssertionError(f"worker {self.name} did not stop on SIGTERM") from None

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stats(self) -> dict[str, Any]:
        """The worker's counters from its web server."""
        url = f"http://127.0.0.1:{self.web_port}/sledfleet/stats/"
        with urllib.request.urlopen(url, timeout=5) as response:
            data: dict[str, Any] = json.loads(response.read())
            return data

    def consumer(self) -> dict[str, Any]:
        """The worker's consumer state (assigned/active/paused partitions)."""
        url = f"http://127.0.0.1:{self.web_port}/sledfleet/consumer/"
        with urllib.request.urlopen(url, timeout=5) as response:
            data: dict[str, Any] = json.loads(response.read())
            return data

    def telemetry_partitions(self) -> set[int]:
        """Telemetry partitions assigned to this worker (empty while it is not up)."""
        try:
            state = self.consumer()
        except OSError:
            return set()
        if state["rebalancing"]:
            return set()
        topic = self.kafka.topic_prefix + contract.KAFKA_TELEMETRY
        return {
            int(tp.rsplit(":", 1)[1]) for tp in state["assigned"] if tp.rsplit(":", 1)[0] == topic
        }

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


# --- comparing ----------------------------------------------------------------------------------


def dedup(records: Iterable[dict[str, Any]]) -> dict[tuple[Any, ...], dict[str, Any]]:
    """Last record per (kind, natural key), without ``emitted_at_ns``."""
    out: dict[tuple[Any, ...], dict[str, Any]] = {}
    for r in records:
        body = {k: v for k, v in r.items() if k != "emitted_at_ns"}
        out[(r["kind"], *natural_key(r))] = body
    return out


def dedup_all(outputs: dict[str, list[dict[str, Any]]]) -> dict[tuple[Any, ...], dict[str, Any]]:
    return dedup(r for records in outputs.values() for r in records)


def partition_of(key: str, partitions: int) -> int:
    return (murmur2(key.encode()) & 0x7FFFFFFF) % partitions


def diff_summary(
    got: dict[tuple[Any, ...], dict[str, Any]], want: dict[tuple[Any, ...], dict[str, Any]]
) -> str:
    missing = sorted(set(want) - set(got), key=repr)
    extra = sorted(set(got) - set(want), key=repr)
    changed = [k for k in want if k in got and got[k] != want[k]]
    lines = [f"missing {len(missing)}, extra {len(extra)}, changed {len(changed)}"]
    lines += [f"  missing {k}" for k in missing[:5]]
    lines += [f"  extra {k}" for k in extra[:5]]
    for k in changed[:5]:
        fields = {f for f in want[k] if got[k].get(f) != want[k][f]}
        lines.append(
            f"  changed {k}: "
            + ", ".join(f"{f}: {got[k].get(f)!r} != {want[k][f]!r}" for f in sorted(fields))
        )
    return "\n".join(lines)


def counts(outputs: dict[str, list[dict[str, Any]]]) -> dict[str, int]:
    return {kind: len(dedup(records)) for kind, records in outputs.items()}


def by_machine(inputs: list[Input]) -> dict[str, list[Input]]:
    out: dict[str, list[Input]] = defaultdict(list)
    for item in inputs:
        out[item[1]].append(item)
    return out


# --- in-process reference ------------------------------------------------------------------------


def _reference_machine(
    proc: Any, items: list[Input], tick_event_ns: int, grace_ns: int
) -> list[dict[str, Any]]:
    """One machine's messages in its own order, as the worker runs them: its timeline
    decides steps and "now", and at the end a liveness check (everything held released,
    frames held behind a missing seq given up)."""
    from stream.core.timeline import Timeline

    out: list[dict[str, Any]] = []
    tl = Timeline()
    st: Any = None
    for kind, machine, payload in items:
        if st is None:
            st = proc.new_state(payload["clinic_id"], machine)
        for step in tl.admit(kind, payload, tick_event_ns, grace_ns):
            out.extend(proc.on_step(st, step, 0))
    if st is not None:
        for step in tl.release_quiet():
            out.extend(proc.on_step(st, step, 0))
        out.extend(proc.on_silence(st, tl.now(), int(proc.s.reorder_hold_s * 1e9), 0))
    return out


def reference(
    inputs: list[Input],
    prescriptions: list[dict[str, Any]],
    partitions: int,
    tick_event_ns: int = 60 * 10**9,
    grace_ns: int = 30 * 10**9,
) -> list[dict[str, Any]]:
    """``stream.core`` run directly on ``inputs`` as the worker runs them (see
    ``stream.app.machines``): per machine in its own order (one partition carries all of
    a machine's messages), its own clock as "now", ticks at its own event-time
    boundaries, then a liveness check. Then sessions → adherence."""
    from stream.core.adherence import PatientTracker
    from stream.core.processor import MachineProcessor
    from stream.core.settings import CoreSettings

    core = CoreSettings()
    proc = MachineProcessor(core)
    out: list[dict[str, Any]] = []
    for _, items in sorted(by_machine(inputs).items()):
        out.extend(_reference_machine(proc, items, tick_event_ns, grace_ns))

    tracker = PatientTracker(core)
    patients: dict[str, Any] = {}

    def patient(pid: str, clinic: str) -> Any:
        if pid not in patients:
            patients[pid] = tracker.new_state(pid, clinic)
        return patients[pid]

    for rx in prescriptions:
        out.extend(tracker.on_prescription(patient(rx["patient_id"], rx["clinic_id"]), rx) or [])
    sessions = sorted(
        (r for r in out if r["kind"] == "session" and r.get("patient_id")),
        key=lambda r: (r["end_ns"], r["session_id"]),
    )
    for s in sessions:
        st = patient(s["patient_id"], s["clinic_id"])
        out.extend(tracker.on_session(st, s, int(s["end_ns"])) or [])
    historical = time.time_ns() - int(StreamSettings().historical_alert_age_s * 1e9)
    for r in out:  # as the worker's router marks them (stream.app.agents)
        if r["kind"] == "alert" and r["ts_ns"] < historical:
            r["historical"] = True
    return out
