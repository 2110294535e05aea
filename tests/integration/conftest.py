"""Fixtures for tests against the real servers started by ``services/start``.

Servers are found through the same environment variables the code reads
(SLEDFLEET_MQTT_HOST/PORT, SLEDFLEET_KAFKA_BOOTSTRAP, SLEDFLEET_DATABASE_ADMIN_URL,
SLEDFLEET_TIMESCALE_URL) with the defaults of the local stack. An unreachable server skips
the test locally and FAILS it when CI=true.

Isolation on the shared servers: every test gets its own Kafka topic prefix
(``kafka_settings``), MQTT ids derive from ``unique``, and ``fresh_database`` creates a
database per test module. Never stop the shared servers: use tests/integration/servers.py.
"""

from __future__ import annotations

import os
import socket
import time
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

import pytest

from edge.settings import KafkaSettings, MqttSettings, load

DEFAULT_ADMIN_DSN = "postgresql://postgres:postgres@127.0.0.1:5433/postgres"
DEFAULT_TIMESCALE_DSN = "postgresql://postgres:postgres@127.0.0.1:5434/postgres"
DB_OWNER = "sledfleet"
DB_OWNER_PASSWORD = os.environ.get("SLEDFLEET_DB_PASSWORD", "sledfleet")
REACH_TIMEOUT_S = 2.0
CI = os.environ.get("CI", "").strip().lower() in {"1", "true", "yes", "on"}

_reachable: dict[tuple[str, int], bool] = {}


def _can_connect(host: str, port: int) -> bool:
    key = (host, port)
    if key not in _reachable:
        try:
            with socket.create_connection(key, timeout=REACH_TIMEOUT_S):
                _reachable[key] = True
        except OSError:
            _reachable[key] = False
    return _reachable[key]


def require_service(name: str, host: str, port: int, start_hint: str | None = None) -> None:
    """Skip (locally) or fail (CI=true) when ``name`` does not answer on host:port."""
    if _can_connect(host, port):
        return
    hint = start_hint or "services/start"
    message = f"{name} is not reachable at {host}:{port}; start it with `{hint}`"
    if CI:
        pytest.fail(message + " (CI=true: a missing service is a failure)", pytrace=False)
    pytest.skip(message)


def _host_port(hostport: str, default_port: int) -> tuple[str, int]:
    host, _, port = hostport.rpartition(":")
    return (host or hostport, int(port) if port else default_port)


def dsn_with(dsn: str, **params: str) -> str:
    """The DSN with some connection parameters replaced (dbname=, user=, password=)."""
    from psycopg.conninfo import make_conninfo

    return make_conninfo(dsn, **params)


def _dsn_host_port(dsn: str) -> tuple[str, int]:
    from psycopg.conninfo import conninfo_to_dict

    info = conninfo_to_dict(dsn)
    return str(info.get("host") or "127.0.0.1"), int(info.get("port") or 5432)


# --- MQTT --------------------------------------------------------------------------------


@pytest.fixture
def mqtt_settings() -> MqttSettings:
    """Settings of the shared Mosquitto (skips/fails when it is down)."""
    settings = load(MqttSettings)
    require_service("Mosquitto", settings.host, settings.port, "services/start mosquitto")
    return settings


# --- Kafka -------------------------------------------------------------------------------


@pytest.fixture
def kafka_settings(unique: str) -> Iterator[KafkaSettings]:
    """Settings of the shared Kafka with a topic prefix of this test only (t<unique>.).
    The test's topics (its prefix's, Faust's changelogs included) are deleted after it:
    thousands of leftover partitions slow every later broker start (one with 6,900 took
    over 90 s to recover)."""
    settings = load(KafkaSettings, topic_prefix=f"t{unique}.")
    host, port = _host_port(settings.bootstrap.split(",")[0], 9092)
    require_service("Kafka", host, port, "services/start kafka")
    yield settings
    delete_prefixed_topics(settings.bootstrap, settings.topic_prefix)


def delete_prefixed_topics(bootstrap: str, prefix: str) -> None:
    """Best effort: a broker that a test restarted may refuse; the next run does not
    depend on it (every test has its own prefix)."""
    from kafka import KafkaAdminClient
    from kafka.errors import KafkaError

    try:
        admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="sledfleet-tests")
    except KafkaError:
        return
    try:
        names = [t for t in admin.list_topics() if t.startswith(prefix)]
        if names:
            admin.delete_topics(names, timeout_ms=30_000)
    except KafkaError:
        pass
    finally:
        admin.close()


@dataclass
class KafkaAdmin:
    """Creates topics on a Kafka whose auto-creation is off, and deletes them afterwards."""

    bootstrap: str
    created: list[str] = field(default_factory=list)

    def create_topics(
        self,
        names: Iterable[str],
        partitions: int = 1,
        compacted: bool = False,
        timeout_s: float = 30.0,
    ) -> list[str]:
        """Create the topics (existing ones are kept) and wait until their leaders serve."""
        from kafka import KafkaAdminClient
        from kafka.admin import NewTopic
        from kafka.errors import TopicAlreadyExistsError

        names = list(names)
        configs = {"cleanup.policy": "compact"} if compacted else {}
        admin = KafkaAdminClient(bootstrap_servers=self.bootstrap, client_id="sledfleet-tests")
        try:
            for name in names:
                topic = NewTopic(name, partitions, 1, topic_configs=configs)
                try:
                    admin.create_topics([topic])
                    self.created.append(name)
                except TopicAlreadyExistsError:
                    pass
            deadline = time.monotonic() + timeout_s
            while True:
                described = admin.describe_topics(names)
                ready = all(
                    t.get("error_code", 0) == 0
                    and t["partitions"]
                    and all(p.get("leader_id", p.get("leader", -1)) >= 0 for p in t["partitions"])
                    for t in described
                )
                if ready:
                    return names
                if time.monotonic() > deadline:
                    raise AssertionError(f"topics {names} have no leaders after {timeout_s} s")
                time.sleep(0.1)
        finally:
            admin.close()

    def delete_created(self) -> None:
        if not self.created:
            return
        from kafka import KafkaAdminClient
        from kafka.errors import KafkaError

        admin = KafkaAdminClient(bootstrap_servers=self.bootstrap, client_id="sledfleet-tests")
        try:
            admin.delete_topics(self.created)
        except KafkaError:
            pass  # best effort: a broker restarting in a test may refuse
        finally:
            admin.close()
            self.created.clear()


@pytest.fixture
def kafka_admin(kafka_settings: KafkaSettings) -> Iterator[KafkaAdmin]:
    """``kafka_admin.create_topics([kafka_settings.topic_prefix + "x"], partitions=3)``."""
    admin = KafkaAdmin(kafka_settings.bootstrap)
    yield admin
    admin.delete_created()


# --- PostgreSQL --------------------------------------------------------------------------


@pytest.fixture(scope="session")
def admin_dsn() -> str:
    """Superuser DSN of the shared PostgreSQL (SLEDFLEET_DATABASE_ADMIN_URL)."""
    dsn = os.environ.get("SLEDFLEET_DATABASE_ADMIN_URL", DEFAULT_ADMIN_DSN)
    require_service("PostgreSQL", *_dsn_host_port(dsn), "services/start postgres")
    return dsn


@pytest.fixture(scope="module")
def fresh_database(admin_dsn: str) -> Iterator[str]:
    """A new database for this test module, owned by role sledfleet; yields its DSN (as
    sledfleet). The superuser DSN of it is ``dsn_with(admin_dsn, dbname=<its name>)``."""
    import psycopg
    from psycopg import sql

    name = f"test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        conn.execute(
            sql.SQL("CREATE DATABASE {} OWNER {}").format(
                sql.Identifier(name), sql.Identifier(DB_OWNER)
            )
        )
    try:
        yield dsn_with(admin_dsn, dbname=name, user=DB_OWNER, password=DB_OWNER_PASSWORD)
    finally:
        with psycopg.connect(admin_dsn, autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


# --- TimescaleDB on WASM (pglite) --------------------------------------------------------


@pytest.fixture
def timescale_dsn() -> Iterator[str]:
    """DSN of the TimescaleDB-on-WASM server (services/start pglite).

    One backend session is shared by every connection (and by every test run using the
    server): use one connection at a time with ``prepare_threshold=None``. So a test holds
    an exclusive lock on the server (a lock file per host and port) from before its reset
    to after it: two suites run side by side take turns instead of resetting or reading
    each other's session mid-test. Before the test the session is reset (DISCARD ALL) and
    its search_path set to ``public`` (where the timescaledb extension lives); after the
    test it is reset again.
    """
    import fcntl
    import tempfile

    import psycopg

    dsn = os.environ.get("SLEDFLEET_TIMESCALE_URL", DEFAULT_TIMESCALE_DSN)
    host, port = _dsn_host_port(dsn)
    require_service("TimescaleDB-on-WASM (pglite)", host, port, "services/start pglite")
    lock_path = os.path.join(tempfile.gettempdir(), f"sledfleet-pglite-{host}-{port}.lock")
    with open(lock_path, "a") as lock:
        deadline = time.monotonic() + PGLITE_LOCK_WAIT_S
        while True:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    pytest.fail(
                        f"pglite at {host}:{port} held by another test for "
                        f"{PGLITE_LOCK_WAIT_S:.0f} s ({lock_path})"
                    )
                time.sleep(0.2)
        try:
            with psycopg.connect(dsn, autocommit=True, prepare_threshold=None) as conn:
                conn.execute("DISCARD ALL")
                conn.execute("SET search_path TO public")
            yield dsn
            try:
                with psycopg.connect(dsn, autocommit=True, prepare_threshold=None) as conn:
                    conn.execute("DISCARD ALL")
            except psycopg.Error:
                pass
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


PGLITE_LOCK_WAIT_S = 240.0
"""How long a test waits for another run's test to release the shared pglite session."""
