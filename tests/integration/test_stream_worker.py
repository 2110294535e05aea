"""The Faust stream worker on the real Kafka, as a subprocess (`sledfleet stream worker`).

A simulated multi-clinic day is produced to the bridge's topics, the worker turns it
into reps, sets, sessions, machine status, alerts and adherence; the output after
deduplication by natural key must equal ``stream.core`` run in-process on the same
input — also when a worker is killed with SIGKILL mid-day and restarted, and when two
workers split the partitions.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from stream_support import (
    TEST_TOPICS,
    DayPlan,
    Worker,
    caught_up,
    counts,
    dedup,
    dedup_all,
    diff_summary,
    end_offsets,
    group_members,
    lagging,
    prescriptions_for,
    produce,
    publish_prescriptions,
    read_outputs,
    read_topic,
    reference,
    setup_topics,
    synthetic_day,
    wait_until,
)

from edge import contract
from edge.settings import KafkaSettings
from tests.promtext import check_names, scrape, value

pytestmark = pytest.mark.integration

BOOTSTRAP = os.environ.get("SLEDFLEET_KAFKA_BOOTSTRAP", "127.0.0.1:9092")
OUTPUT_TOPICS = [
    contract.KAFKA_REPS,
    contract.KAFKA_SETS,
    contract.KAFKA_SESSIONS,
    contract.KAFKA_ALERTS,
    contract.KAFKA_MACHINE_STATUS,
    contract.KAFKA_ADHERENCE,
    contract.KAFKA_DEADLETTER,
]


def _kafka_up() -> bool:
    host, port = BOOTSTRAP.split(",")[0].rsplit(":", 1)
    try:
        with socket.create_connection((host, int(port)), timeout=2):
            return True
    except OSError:
        return False


@pytest.fixture
def kafka() -> KafkaSettings:
    if not _kafka_up():
        if os.environ.get("CI") == "true":
            pytest.fail(f"Kafka is not reachable at {BOOTSTRAP}")
        pytest.skip(f"Kafka is not reachable at {BOOTSTRAP} (services/start kafka)")
    settings = KafkaSettings(bootstrap=BOOTSTRAP, topic_prefix=f"t{uuid.uuid4().hex[:10]}.")
    setup_topics(settings)
    return settings


@pytest.fixture
def workers(kafka: KafkaSettings, tmp_path: Path) -> Iterator[list[Worker]]:
    started: list[Worker] = []
    yield started
    failures = []
    for w in started:
        if w.alive():
            try:
                w.stop()
            except AssertionError as exc:  # killed instead; still stop the others
                failures.append(str(exc))
    assert not failures, failures


def _worker(kafka: KafkaSettings, tmp_path: Path, started: list[Worker], name: str) -> Worker:
    w = Worker(kafka, app_id="sfstream", workdir=tmp_path, name=name)
    started.append(w)
    return w


def settle(
    kafka: KafkaSettings,
    workers: list[Worker],
    want: dict[Any, dict[str, Any]] | None = None,
    timeout: float = 180.0,
) -> None:
    """Wait until the group committed all input and the outputs, deduplicated by natural
    key, equal ``want`` (without ``want``: stopped growing for ~3 s). A condition with a
    deadline, not a pause: the machine may be loaded."""
    group = workers[0].group
    topics = [kafka.topic_prefix + t for t in OUTPUT_TOPICS]
    last: dict[Any, int] = {}
    stable = 0

    def done() -> bool:
        nonlocal last, stable
        for w in workers:
            assert w.proc is None or w.alive(), f"worker {w.name} died:\n{w.log_text()[-3000:]}"
        if not caught_up(kafka, group):
            stable = 0
            return False
        now = end_offsets(kafka, topics)
        if want is not None:
            if now == last:
                return False
            last = now
            return replay_insensitive(dedup_all(read_outputs(kafka))) == replay_insensitive(want)
        stable = stable + 1 if now == last else 0
        last = now
        return stable >= 6

    try:
        wait_until(done, timeout, "the worker to finish the day", every=0.5)
    except AssertionError as exc:
        lag = lagging(kafka, group)
        raise AssertionError(
            f"{exc}; not committed (committed, end): {lag}; " + worker_states(workers)
        ) from exc


def worker_states(workers: list[Worker]) -> str:
    """Each live worker's counters and consumer state, for a timeout's message: whether
    it handled the input and Faust did not commit it, or never received it."""
    out = []
    for w in workers:
        try:
            out.append(f"{w.name}: stats {w.stats()}; consumer {w.consumer()}")
        except (OSError, ValueError) as e:
            out.append(f"{w.name}: unreachable ({type(e).__name__})")
    return "\n".join(out)


def replay_insensitive(records: dict[Any, dict[str, Any]]) -> dict[Any, dict[str, Any]]:
    """Records without the one field that legitimately differs after at-least-once
    redelivery: a machine's count of duplicate frames it has *seen*."""
    return {k: {f: v for f, v in r.items() if f != "frames_duplicate"} for k, r in records.items()}


def _day(plan: DayPlan | None = None) -> tuple[list[Any], list[dict[str, Any]]]:
    inputs = synthetic_day(plan)
    return inputs, prescriptions_for(inputs)


def test_day_flows_to_output_topics(
    kafka: KafkaSettings, workers: list[Worker], tmp_path: Path
) -> None:
    inputs, rx = _day()
    publish_prescriptions(kafka, rx)
    produce(kafka, inputs)
    want = reference(inputs, rx, TEST_TOPICS.partitions)
    w = _worker(kafka, tmp_path, workers, "single").start()
    settle(kafka, [w], dedup(want))

    got = read_outputs(kafka)
    plan = DayPlan()
    machines = plan.clinics * plan.machines_per_clinic
    n_sessions = machines * plan.sessions_per_machine
    c = counts(got)
    assert c["session"] == n_sessions
    assert c["set"] == n_sessions * plan.sets
    assert c["rep"] == n_sessions * plan.sets * plan.reps
    assert dedup_all(got) == dedup(want), diff_summary(dedup_all(got), dedup(want))
    families, samples = scrape(w.web_port)  # /metrics, parsed by prometheus_client
    check_names(families, "worker")
    frames = sum(1 for kind, _, _ in inputs if kind == "telemetry")
    assert value(samples, "sledfleet_worker_frames_total") == frames
    assert value(samples, "sledfleet_worker_dead_letters_total") == 0
    assert 0 < value(samples, "sledfleet_worker_state_max_bytes") < 1024 * 1024
    assert w.stop() == 0, w.log_text()[-3000:]


@pytest.mark.slow
def test_kill9_mid_day_and_restart_equals_uninterrupted_run(
    kafka: KafkaSettings, workers: list[Worker], tmp_path: Path
) -> None:
    inputs, rx = _day()
    publish_prescriptions(kafka, rx)
    produce(kafka, inputs)
    want = dedup(reference(inputs, rx, TEST_TOPICS.partitions))
    total_reps = sum(1 for k in want if k[0] == "rep")
    w = _worker(kafka, tmp_path, workers, "victim").start()
    reps_topic = kafka.topic_prefix + contract.KAFKA_REPS

    def some_reps() -> bool:
        n = sum(end_offsets(kafka, [reps_topic]).values())
        return total_reps // 4 <= n

    wait_until(some_reps, 120, "a quarter of the day's reps", every=0.05)
    w.kill9()
    assert not caught_up(kafka, w.group), "killed too late: the day was already done"
    # let the dead member's session expire first, so the restarted worker joins an
    # empty group instead of rebalancing mid-backlog (see the two-worker test)
    wait_until(
        lambda: group_members(kafka, w.group) == 0,
        120,
        "the killed worker's session to expire",
        every=0.5,
    )
    w.start()
    settle(kafka, [w], want)

    got = replay_insensitive(dedup_all(read_outputs(kafka)))
    want = replay_insensitive(want)
    assert got == want, diff_summary(got, want)
    assert w.stop() == 0


@pytest.mark.slow
def test_two_workers_split_partitions_and_match_one(
    kafka: KafkaSettings, workers: list[Worker], tmp_path: Path
) -> None:
    inputs, rx = _day()
    a = _worker(kafka, tmp_path, workers, "a").start()
    b = _worker(kafka, tmp_path, workers, "b").start()

    def split() -> bool:
        pa, pb = a.telemetry_partitions(), b.telemetry_partitions()
        return bool(pa) and bool(pb) and not pa & pb and len(pa | pb) == TEST_TOPICS.partitions

    # both in the group before the day arrives: a rebalance in the middle of a backlog
    # can leave a partition unfetched in Faust 0.15 (see stream/app/__init__.py)
    wait_until(split, 60, "the two workers to split the partitions", every=0.5)
    publish_prescriptions(kafka, rx)
    produce(kafka, inputs)
    settle(kafka, [a, b], dedup(reference(inputs, rx, TEST_TOPICS.partitions)))

    frames = [w.stats()["frames"] for w in (a, b)]
    assert all(f > 0 for f in frames), f"one worker got no frames: {frames}"
    got = replay_insensitive(dedup_all(read_outputs(kafka)))
    want = replay_insensitive(dedup(reference(inputs, rx, TEST_TOPICS.partitions)))
    assert got == want, diff_summary(got, want)
    assert a.stop() == 0
    assert b.stop() == 0


def test_duplicates_are_dropped_and_bad_input_is_dead_lettered(
    kafka: KafkaSettings, workers: list[Worker], tmp_path: Path
) -> None:
    plan = DayPlan(clinics=1, machines_per_clinic=2, sessions_per_machine=1, sets=2, reps=4)
    inputs, rx = _day(plan)
    frames = [item for item in inputs if item[0] == "telemetry"]
    machine = frames[0][1]
    dup = [f for f in frames if f[1] == machine][5:25]  # 20 frames sent twice
    telemetry = kafka.topic_prefix + contract.KAFKA_TELEMETRY
    bad_range = dict(frames[0][2], rate_hz=0.0)
    raw = [
        (telemetry, machine.encode(), b"{not json"),
        (telemetry, machine.encode(), contract.encode(bad_range)),
    ]
    publish_prescriptions(kafka, rx)
    produce(kafka, inputs + dup, raw)
    w = _worker(kafka, tmp_path, workers, "dups").start()
    settle(kafka, [w])
    want = dedup(reference(inputs, rx, TEST_TOPICS.partitions))
    kinds = ("rep", "set", "session")
    theirs = {k: v for k, v in want.items() if k[0] in kinds}

    def mine() -> dict[Any, dict[str, Any]]:
        got = read_outputs(kafka)
        return {k: v for kind in kinds for k, v in dedup(got[kind]).items()}

    wait_until(lambda: mine() == theirs, 60, "reps, sets and sessions", every=0.5)
    got = read_outputs(kafka)
    statuses = [s for s in got["machine_status"] if s["machine_id"] == machine]
    assert max(s["frames_duplicate"] for s in statuses) >= len(dup)
    dead = [
        contract.decode(v)
        for _, v in read_topic(kafka, kafka.topic_prefix + contract.KAFKA_DEADLETTER)
    ]
    assert sorted(d["reason"] for d in dead) == ["malformed_json", "out_of_range"]
    assert all(d["source"] == "stream" and d["origin"] == telemetry for d in dead)
    assert w.stats()["dead_letters"] == 2
    assert w.stop() == 0


def test_worker_dials_only_the_configured_kafka(tmp_path: Path) -> None:
    """A private Kafka on another port, named by host name: the worker (Faust, the clinic
    directory's consumer, the metadata and admin clients) must find it there; a client
    that dialled the default 127.0.0.1:9092 would find none of this run's topics. (The
    side reader's address is checked in tests/unit/stream/test_app_machines.py.)"""
    from servers import PrivateKafka

    with PrivateKafka() as private:
        kafka = KafkaSettings(
            bootstrap=f"localhost:{private.port}", topic_prefix=f"t{uuid.uuid4().hex[:10]}."
        )
        setup_topics(kafka)
        plan = DayPlan(clinics=1, machines_per_clinic=2, sessions_per_machine=1, sets=2, reps=4)
        inputs, rx = _day(plan)
        publish_prescriptions(kafka, rx)
        produce(kafka, inputs)
        w = Worker(
            kafka,
            app_id="sfstream",
            workdir=tmp_path,
            name="elsewhere",
            extra_env={"SLEDFLEET_STREAM_REORDER_IDLE_S": "0.5"},
        ).start()
        try:
            settle(kafka, [w], dedup(reference(inputs, rx, TEST_TOPICS.partitions)))
            assert w.stats()["frames"] == sum(1 for i in inputs if i[0] == "telemetry")
        finally:
            code = w.stop()
        assert code == 0, w.log_text()[-3000:]
        log = w.log_text()
        assert "127.0.0.1:9092" not in log
        assert "localhost:9092" not in log
