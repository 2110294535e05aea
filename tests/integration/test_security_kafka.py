"""Issue #13, Kafka layer: SASL/SCRAM-SHA-512 with one user per role and least-privilege
ACLs, on a real secure Kafka started by ``services/start kafka --secure`` in a private run
dir (never the shared 9092 broker). A wrong password is one clear line; each ACL denial is
shown next to the same call succeeding for the user that holds the grant; the bridge process
forwards MQTT as its user, and a day of two machines flows bridge user → worker → sink →
PostgreSQL, each role a real process with its own user."""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import psycopg
import pytest
from bridge_support import BridgeProcess, Publisher, frame, topic_for
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import KafkaAdminClient, NewTopic
from kafka.errors import TopicAuthorizationFailedError
from polling import wait_until
from servers import PrivateSecureKafka
from storage_support import SinkProcess, migrated_database
from stream_support import (
    SLEDFLEET,
    TEST_TOPICS,
    DayPlan,
    Worker,
    dedup,
    prescriptions_for,
    reference,
    synthetic_day,
)

from edge import contract, kafka_login
from edge.settings import KafkaSettings, MqttSettings
from stream.bridge.kafka_out import make_producer
from stream.bridge.settings import BridgeSettings
from stream.kafka_acls import acl_table, apply_acls
from stream.topics import ensure_topics

pytestmark = pytest.mark.integration

APP_ID = "sledfleet-stream"


@pytest.fixture(scope="module")
def secure() -> Iterator[PrivateSecureKafka]:
    """A private secure Kafka for this module (a start failure fails the tests, also
    locally: it is started here, not expected to be running)."""
    with PrivateSecureKafka() as kafka:
        yield kafka


@pytest.fixture
def prefix(secure: PrivateSecureKafka) -> str:
    """This test's topics, created and granted by the admin user."""
    prefix = f"t{uuid.uuid4().hex[:10]}."
    admin = secure.settings_for("admin", prefix)
    ensure_topics(admin, TEST_TOPICS)
    assert apply_acls(admin, acl_table(prefix, APP_ID, f"{prefix}sledfleet-sink")) > 0
    return prefix


def _client_kwargs(kafka: KafkaSettings) -> dict[str, Any]:
    return {"bootstrap_servers": kafka.servers, **kafka.kafka_python_auth()}


def _end_offsets(kafka: KafkaSettings, topic: str) -> dict[TopicPartition, int]:
    consumer = KafkaConsumer(**_client_kwargs(kafka), request_timeout_ms=20_000)
    try:
        return dict(consumer.end_offsets([TopicPartition(topic, 0)]))
    finally:
        consumer.close()


def _fetch(kafka: KafkaSettings, topic: str, want: int) -> int:
    """Read partition 0 of ``topic`` from the start (no group) until ``want`` messages."""
    consumer = KafkaConsumer(**_client_kwargs(kafka), enable_auto_commit=False)
    tp = TopicPartition(topic, 0)
    got = 0
    try:
        consumer.assign([tp])
        consumer.seek_to_beginning(tp)

        def enough() -> bool:
            nonlocal got
            got += sum(len(r) for r in consumer.poll(timeout_ms=500).values())
            return got >= want

        wait_until(enough, 60, f"{want} messages of {topic}")
        return got
    finally:
        consumer.close()


def _send(kafka: KafkaSettings, topic: str) -> None:
    producer = KafkaProducer(**_client_kwargs(kafka), acks="all", max_block_ms=20_000)
    try:
        producer.send(topic, key=b"k", value=b"{}", partition=0).get(timeout=30)
    finally:
        producer.close(timeout=10)


def test_secure_broker_refuses_anonymous_and_keeps_passwords_out_of_argv(
    secure: PrivateSecureKafka,
) -> None:
    ready = subprocess.run(
        ["python3", str(Path("services/kafka/ready.py").resolve()), str(secure.port), "5"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert ready.returncode == 1, ready.stdout  # a PLAINTEXT metadata request gets nothing
    pid = int((secure.run_dir / "kafka-secure" / "kafka-secure.pid").read_text().split()[0])
    argv = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    props = secure.run_dir / "kafka-secure" / "server.properties"
    assert props.stat().st_mode & 0o077 == 0  # it holds the controller's password
    assert (secure.secrets_dir.stat().st_mode & 0o777) == 0o700
    for user in PrivateSecureKafka.USERS:
        assert secure.password(user) not in argv
        assert secure.password_file(user).stat().st_mode & 0o077 == 0
        log = (secure.run_dir / "kafka-secure" / "server.log").read_text(errors="replace")
        assert secure.password(user) not in log
    assert not (secure.run_dir / "kafka-secure" / "format.args").exists()


def test_scram_login_accepts_the_user_and_refuses_a_wrong_password(
    secure: PrivateSecureKafka,
) -> None:
    ok = kafka_login.login(secure.bootstrap, "bridge", secure.password("bridge"))
    assert ok.brokers == 1
    assert ok.controller >= 0
    with pytest.raises(kafka_login.LoginRefused, match="invalid credentials"):
        kafka_login.login(secure.bootstrap, "bridge", secure.password("bridge") + "x")
    with pytest.raises(kafka_login.LoginRefused, match="invalid credentials"):
        kafka_login.login(secure.bootstrap, "nobody", secure.password("bridge"))


@pytest.mark.parametrize(
    ("command", "user"),
    [(["topics", "create"], "admin"), (["stream", "worker"], "worker")],
)
def test_wrong_password_is_one_clear_line(
    secure: PrivateSecureKafka, tmp_path: Path, command: list[str], user: str
) -> None:
    wrong = tmp_path / "wrong.password"
    wrong.write_text("not-" + secure.password(user))
    env = {
        **os.environ,
        **secure.env_for(user),
        "SLEDFLEET_KAFKA_PASSWORD_FILE": str(wrong),
        "SLEDFLEET_KAFKA_TOPIC_PREFIX": f"t{uuid.uuid4().hex[:10]}.",
        "SLEDFLEET_STREAM_DATA_DIR": str(tmp_path / "data"),
    }
    result = subprocess.run(
        [SLEDFLEET, *command],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=tmp_path,
    )
    assert result.returncode == 2, result.stderr[-2000:]
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr[-2000:]
    assert f"refused the SCRAM-SHA-512 login of user '{user}'" in lines[0]
    assert "SLEDFLEET_KAFKA_PASSWORD" in lines[0]
    assert secure.password(user) not in result.stderr + result.stdout


def test_bridge_user_cannot_read_output_or_machine_topics(
    secure: PrivateSecureKafka, prefix: str
) -> None:
    bridge, sink = secure.settings_for("bridge", prefix), secure.settings_for("sink", prefix)
    worker = secure.settings_for("worker", prefix)
    reps, machine = prefix + contract.KAFKA_REPS, prefix + contract.KAFKA_TELEMETRY
    _send(bridge, machine)  # the bridge's grant: write the machine topic
    assert _fetch(worker, machine, 1) == 1  # the worker may read it ...
    with pytest.raises(TopicAuthorizationFailedError):
        _fetch(bridge, machine, 1)  # ... the bridge may not (READ denied, DESCRIBE allowed)
    assert _end_offsets(sink, reps) == {TopicPartition(reps, 0): 0}  # the sink sees reps
    with pytest.raises(TopicAuthorizationFailedError):
        _end_offsets(bridge, reps)  # the bridge does not even see them


def test_sink_user_cannot_write_the_machine_topic(secure: PrivateSecureKafka, prefix: str) -> None:
    sink, bridge = secure.settings_for("sink", prefix), secure.settings_for("bridge", prefix)
    machine, dead = prefix + contract.KAFKA_TELEMETRY, prefix + contract.KAFKA_DEADLETTER
    _send(sink, dead)  # its grant: dead letters
    _send(bridge, machine)
    with pytest.raises(TopicAuthorizationFailedError):
        _send(sink, machine)
    with pytest.raises(TopicAuthorizationFailedError):
        _send(secure.settings_for("worker", prefix), prefix + contract.KAFKA_PRESCRIPTIONS)


def test_only_admin_creates_topics(secure: PrivateSecureKafka, prefix: str) -> None:
    name = f"{prefix}sledfleet.extra"
    for user, allowed in (("bridge", False), ("worker", False), ("admin", True)):
        admin = KafkaAdminClient(**_client_kwargs(secure.settings_for(user, prefix)))
        try:
            result = admin.create_topics(
                [NewTopic(name, 1, 1)], timeout_ms=20_000, raise_errors=False
            )
        finally:
            admin.close()
        codes = {t["name"]: t["error_code"] for t in result["topics"]}
        assert (codes[name] == 0) is allowed, (user, codes)
        if not allowed:
            assert codes[name] == TopicAuthorizationFailedError.errno, (user, codes)


def test_bridge_process_forwards_mqtt_as_its_kafka_user(
    secure: PrivateSecureKafka, prefix: str, tmp_path: Path, mqtt_settings: MqttSettings
) -> None:
    """``sledfleet bridge`` logged in as ``bridge`` forwards MQTT frames to the machine
    topic (the worker user reads them back); nothing is dead-lettered."""
    clinic = f"c{uuid.uuid4().hex[:8]}"
    machine = f"{clinic}-m1"
    bridge = BridgeProcess(
        mqtt_settings,
        secure.settings_for("bridge", prefix),
        client_id=f"bridge-{clinic}",
        group=f"g{clinic}",
        clinic=clinic,
        log_dir=tmp_path,
        extra_env=secure.env_for("bridge"),
    ).start()
    try:
        bridge.wait_healthy(120)
        publisher = Publisher(mqtt_settings, f"pub-{clinic}")
        try:
            for seq in range(5):
                publisher.publish(topic_for(clinic, machine), frame(clinic, machine, seq))
            publisher.wait_all(60)
        finally:
            publisher.close()
        worker = secure.settings_for("worker", prefix)
        machine_topic = prefix + contract.KAFKA_TELEMETRY

        def forwarded() -> int:
            ends = KafkaConsumer(**_client_kwargs(worker))
            try:
                tps = [
                    TopicPartition(machine_topic, p)
                    for p in ends.partitions_for_topic(machine_topic) or ()
                ]
                return sum(ends.end_offsets(tps).values())
            finally:
                ends.close()

        wait_until(lambda: forwarded() >= 5, 120, "5 frames on the machine topic")
        assert forwarded() == 5
        assert _end_offsets(worker, prefix + contract.KAFKA_DEADLETTER) == {
            TopicPartition(prefix + contract.KAFKA_DEADLETTER, 0): 0
        }
    finally:
        bridge.stop_quietly()
    assert "AuthorizationFailed" not in bridge.log(), bridge.log()


def test_day_flows_bridge_to_worker_to_sink_with_per_service_users(
    secure: PrivateSecureKafka, prefix: str, tmp_path: Path, admin_dsn: str
) -> None:
    """The bridge's own producer (user bridge) → ``sledfleet stream worker`` (user worker)
    → ``sledfleet sink`` (user sink) → PostgreSQL: every rep of two machines' day."""
    plan = DayPlan(clinics=1, machines_per_clinic=2, sessions_per_machine=1, sets=2, reps=3)
    inputs = synthetic_day(plan)
    rx = prescriptions_for(inputs)
    want = {k for k in dedup(reference(inputs, rx, TEST_TOPICS.partitions)) if k[0] == "rep"}
    assert len(want) == 2 * 2 * 3

    admin = secure.settings_for("admin", prefix)  # `sledfleet prescribe` runs as admin
    producer = KafkaProducer(**_client_kwargs(admin), acks="all")
    try:
        for r in rx:
            producer.send(
                prefix + contract.KAFKA_PRESCRIPTIONS,
                key=r["patient_id"].encode(),
                value=contract.encode(r),
            )
        producer.flush(timeout=60)
    finally:
        producer.close(timeout=10)

    bridge = make_producer(secure.settings_for("bridge", prefix), BridgeSettings(), "t-bridge")
    try:
        for kind, machine, payload in inputs:
            bridge.send(
                prefix + contract.KAFKA_BY_KIND[kind],
                key=machine.encode(),
                value=contract.encode(payload),
            )
        bridge.flush(timeout=60)
    finally:
        bridge.close(timeout=10)

    cleanup = ExitStack()
    db = cleanup.enter_context(migrated_database(admin_dsn))
    worker_env = {**secure.env_for("worker"), "SLEDFLEET_KAFKA_TOPIC_PREFIX": prefix}
    worker = Worker(
        secure.settings_for("worker", prefix), APP_ID, tmp_path, "secure", extra_env=worker_env
    )
    sink = SinkProcess(
        db.owner,
        secure.settings_for("sink", prefix),
        f"{prefix}sledfleet-sink",
        tmp_path,
        extra_env=secure.env_for("sink"),
    )
    got: set[tuple[Any, ...]] = set()
    try:
        worker.start()
        sink.start()

        def all_reps() -> bool:
            assert worker.alive(), worker.log_text()[-3000:]
            assert sink.proc is not None
            assert sink.proc.poll() is None, sink.log()
            with psycopg.connect(db.owner) as conn:
                rows = conn.execute(
                    "SELECT machine_id, session_id, set_no, rep_no FROM sledfleet.reps"
                ).fetchall()
            got.update(("rep", *row) for row in rows)
            return got >= want

        wait_until(all_reps, 200, f"{len(want)} reps stored by the sink", every=0.5)
    finally:
        sink_code = sink.stop() if sink.proc is not None else 0
        code = worker.stop()
        cleanup.close()
    assert got == want
    assert (code, sink_code) == (0, 0), worker.log_text()[-3000:] + sink.log()
    for log in (worker.log_text(), sink.log()):
        assert "AuthorizationFailed" not in log, log[-3000:]
