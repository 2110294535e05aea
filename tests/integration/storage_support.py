"""Helpers for the storage integration tests: fresh databases on the shared PostgreSQL,
contract topics under a unique prefix, producing records, a sink subprocess, waits."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import polling
import psycopg
from psycopg.conninfo import make_conninfo
from servers import free_port

from edge.contract import encode
from edge.settings import KafkaSettings
from storage.migrate import migrate
from stream.topics import TopicsSettings, ensure_topics, topic_specs

REPO = Path(__file__).resolve().parents[2]
OWNER, OWNER_PASSWORD = "sledfleet", "sledfleet"
TEST_TOPICS = TopicsSettings(partitions=3, low_volume_partitions=1)
wait_until = partial(polling.wait_until, every=0.2)
"""Polls every 0.2 s unless told: the storage waits query PostgreSQL or Kafka."""


def short_id() -> str:
    return uuid.uuid4().hex[:10]


@dataclass(frozen=True)
class Db:
    name: str
    owner: str  # DSN as the owner role (what the sink and migrations use)
    admin: str  # DSN as the superuser (role management)


def dsn_for(base: str, **kw: Any) -> str:
    return make_conninfo(base, **kw)


@contextmanager
def fresh_database(admin_dsn: str, prefix: str = "st") -> Iterator[Db]:
    name = f"{prefix}_{short_id()}"
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}" OWNER {OWNER}')
    try:
        yield Db(
            name,
            dsn_for(admin_dsn, dbname=name, user=OWNER, password=OWNER_PASSWORD),
            dsn_for(admin_dsn, dbname=name),
        )
    finally:
        with psycopg.connect(admin_dsn, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextmanager
def migrated_database(admin_dsn: str) -> Iterator[Db]:
    with fresh_database(admin_dsn) as db:
        with psycopg.connect(db.owner, autocommit=True) as conn:
            migrate(conn)
        yield db


@contextmanager
def kafka_topics(kafka: KafkaSettings) -> Iterator[KafkaSettings]:
    """Every contract topic under the settings' (test-unique) prefix, deleted afterwards."""
    prefix = kafka.topic_prefix
    ensure_topics(kafka, TEST_TOPICS)
    try:
        yield kafka
    finally:
        from kafka.admin import KafkaAdminClient

        with suppress(Exception):
            admin = KafkaAdminClient(bootstrap_servers=kafka.bootstrap)
            try:
                admin.delete_topics([s.name for s in topic_specs(TEST_TOPICS, prefix)])
            finally:
                admin.close()


TOPIC_OF_KIND = {
    "rep": "sledfleet.reps",
    "set": "sledfleet.sets",
    "session": "sledfleet.sessions",
    "adherence": "sledfleet.adherence",
    "alert": "sledfleet.alerts",
    "machine_status": "sledfleet.machine-status",
    "prescription": "sledfleet.prescriptions",
}


def produce(
    kafka: KafkaSettings, records: Iterable[dict[str, Any]], raw: Iterable[tuple[str, bytes]] = ()
) -> int:
    """Send records to their contract topics (and raw (topic, bytes) pairs); returns count."""
    from kafka import KafkaProducer

    producer = KafkaProducer(
        bootstrap_servers=kafka.bootstrap, acks="all", linger_ms=20, batch_size=256 * 1024
    )
    n = 0
    try:
        for rec in records:
            key = rec.get("machine_id") or rec.get("patient_id") or "k"
            producer.send(
                kafka.topic_prefix + TOPIC_OF_KIND[rec["kind"]], key=key.encode(), value=encode(rec)
            )
            n += 1
        for topic, value in raw:
            producer.send(kafka.topic_prefix + topic, key=b"x", value=value)
            n += 1
        producer.flush()
    finally:
        producer.close()
    return n


def read_topic(kafka: KafkaSettings, topic: str, timeout_s: float = 5) -> list[bytes]:
    from kafka import KafkaConsumer

    consumer = KafkaConsumer(
        kafka.topic_prefix + topic,
        bootstrap_servers=kafka.bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        consumer_timeout_ms=int(timeout_s * 1000),
    )
    try:
        return [m.value for m in consumer]
    finally:
        consumer.close()


def count(dsn: str, query: str) -> int:
    with psycopg.connect(dsn) as conn:
        row = conn.execute(query).fetchone()
        return int(row[0]) if row else 0


class SinkProcess:
    """``sledfleet sink`` as a subprocess."""

    def __init__(
        self,
        dsn: str,
        kafka: KafkaSettings,
        group: str,
        log_dir: Path,
        extra_env: dict[str, str] | None = None,
    ) -> None:
        self.port = free_port()
        self.log_path = log_dir / f"sink-{group}-{self.port}.log"
        self.env = {
            **os.environ,
            "SLEDFLEET_DATABASE_URL": dsn,
            "SLEDFLEET_KAFKA_BOOTSTRAP": kafka.bootstrap,
            "SLEDFLEET_KAFKA_TOPIC_PREFIX": kafka.topic_prefix,
            "SLEDFLEET_SINK_GROUP": group,
            "SLEDFLEET_SINK_METRICS_PORT": str(self.port),
            "SLEDFLEET_SINK_SESSION_TIMEOUT_MS": "6000",
            **(extra_env or {}),
        }
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> SinkProcess:
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "edge.cli", "sink"],
                env=self.env,
                cwd=REPO,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        return self

    def health(self) -> int | None:
        import urllib.error
        import urllib.request

        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/health", timeout=2) as r:
                return int(r.status)
        except urllib.error.HTTPError as exc:
            return int(exc.code)
        except OSError:
            return None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-3000:]

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self, timeout: float = 60) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=timeout)
