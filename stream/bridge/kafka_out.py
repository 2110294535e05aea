"""The bridge's Kafka producer: configuration for no loss, and a readiness wait.

acks=all with idempotence (max 5 requests in flight keeps per-partition order
across retries), effectively unbounded retries and delivery timeout (a Kafka
outage must stall the bridge, never expire records), a request size that fits
the largest dead letter, and no topic auto-creation (``sledfleet topics create``
owns the topics).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable
from typing import Any, Final, Protocol

from kafka import KafkaProducer
from kafka.errors import KafkaError, KafkaTimeoutError
from kafka.partitioner import DefaultPartitioner

from edge.kafka_login import check as check_login
from edge.netprobe import RateLimited
from edge.netprobe import reachable as probe
from edge.settings import ConfigError, KafkaSettings
from stream.bridge.core import Record
from stream.bridge.settings import BridgeSettings

log = logging.getLogger(__name__)

METADATA_BLOCK_MS: Final = 10_000
"""How long one send() may block waiting for topic metadata (only unknown topics wait)."""
MAX_IDEMPOTENT_IN_FLIGHT: Final = 5
PARTITION_CACHE_SIZE: Final = 100_000
"""Keys remembered by CachingPartitioner (machines of a fleet; cleared when exceeded)."""


class CachingPartitioner(DefaultPartitioner):  # type: ignore[misc]
    """kafka-python's default murmur2 key partitioning, remembered per (topic, key, count).

    The pure-Python murmur2 and the partition-list sorting cost about a tenth of the bridge's
    time per frame; machines are few and send thousands of frames, so the answer is cached.
    The partition count is part of the cache key, so adding partitions re-partitions exactly
    as the default partitioner would.
    """

    def __init__(self) -> None:
        super().__init__()
        self._cache: dict[tuple[str, bytes, int], int] = {}

    def partition(
        self,
        topic: str,
        key: Any,
        serialized_key: bytes | None,
        value: Any,
        serialized_value: bytes | None,
        cluster: Any,
    ) -> int:
        partitions = cluster.partitions_for_topic(topic)
        if serialized_key is None or not partitions:
            return int(
                super().partition(topic, key, serialized_key, value, serialized_value, cluster)
            )
        cache_key = (topic, serialized_key, len(partitions))
        found = self._cache.get(cache_key)
        if found is None:
            found = int(
                super().partition(topic, key, serialized_key, value, serialized_value, cluster)
            )
            if len(self._cache) >= PARTITION_CACHE_SIZE:
                self._cache.clear()
            self._cache[cache_key] = found
        return found


def producer_config(kafka: KafkaSettings, bridge: BridgeSettings, client_id: str) -> dict[str, Any]:
    """kafka-python KafkaProducer keyword arguments for the bridge (pure, unit-tested)."""
    if not 1 <= bridge.max_in_flight_requests <= MAX_IDEMPOTENT_IN_FLIGHT:
        raise ValueError(
            f"max_in_flight_requests must be 1..{MAX_IDEMPOTENT_IN_FLIGHT} for idempotent order"
        )
    return {
        "bootstrap_servers": [s.strip() for s in kafka.bootstrap.split(",") if s.strip()],
        "client_id": client_id,
        "acks": "all",
        "enable_idempotence": True,
        "max_in_flight_requests_per_connection": bridge.max_in_flight_requests,
        "retries": float("inf"),
        "delivery_timeout_ms": bridge.delivery_timeout_ms,
        "linger_ms": bridge.linger_ms,
        "batch_size": bridge.batch_bytes,
        "max_request_size": bridge.max_request_bytes,
        "max_block_ms": METADATA_BLOCK_MS,
        "allow_auto_create_topics": False,
        "reconnect_backoff_max_ms": bridge.reconnect_backoff_max_ms,
        "metrics_enabled": False,
        "partitioner": CachingPartitioner(),
        **kafka.kafka_python_auth(),
    }


class BridgeProducer(KafkaProducer):  # type: ignore[misc]
    """A KafkaProducer whose ``str()`` is formatted once.

    kafka-python's ``send()`` formats ``str(self)`` eagerly as an argument of two
    ``log.debug`` calls on every record (about a microsecond each); the text depends only
    on the client and transactional ids, which never change.
    """

    _name: str | None = None

    def __str__(self) -> str:
        if self._name is None:
            self._name = str(super().__str__())
        return self._name


def make_producer(kafka: KafkaSettings, bridge: BridgeSettings, client_id: str) -> KafkaProducer:
    return BridgeProducer(**producer_config(kafka, bridge, client_id))


class Flight(Protocol):
    def ok(self, metadata: object) -> None: ...
    def err(self, exc: BaseException) -> None: ...


class Out(Protocol):
    """What the bridge needs of a producer (kafka-python's or confluent-kafka's)."""

    def produce(self, record: Record, flight: Any) -> None: ...
    def has_topic(self, topic: str) -> bool: ...
    def flush(self, timeout_s: float) -> int: ...
    def close(self, timeout_s: float = 5.0) -> None: ...


class KafkaPythonOut:
    """kafka-python's producer behind ``Out``: callbacks run on its I/O thread."""

    def __init__(self, kafka: KafkaSettings, bridge: BridgeSettings, client_id: str) -> None:
        self.producer = make_producer(kafka, bridge, client_id)

    def produce(self, record: Record, flight: Flight) -> None:
        future = self.producer.send(
            record.topic, value=record.value, key=record.key, headers=record.headers
        )
        future.add_callback(flight.ok)
        future.add_errback(flight.err)

    def has_topic(self, topic: str) -> bool:
        return _has_partitions(self.producer, topic)

    def flush(self, timeout_s: float) -> int:
        """0 when everything was answered, else 1 (kafka-python does not say how many)."""
        try:
            self.producer.flush(timeout=timeout_s)
        except KafkaTimeoutError:
            return 1
        return 0

    def close(self, timeout_s: float = 5.0) -> None:
        self.producer.close(timeout=timeout_s)


def make_out(kafka: KafkaSettings, bridge: BridgeSettings, client_id: str) -> Out:
    """The producer named by SLEDFLEET_BRIDGE_PRODUCER."""
    if bridge.producer == "confluent":
        from stream.bridge.kafka_confluent import ConfluentOut

        return ConfluentOut(kafka, bridge, client_id)
    if bridge.producer == "kafka-python":
        return KafkaPythonOut(kafka, bridge, client_id)
    raise ConfigError(
        "SLEDFLEET_BRIDGE_PRODUCER",
        f"{bridge.producer!r} is not a producer",
        "set it to confluent or kafka-python",
    )


class KafkaUnavailable(RuntimeError):
    """Kafka or a topic still missing at the start deadline, or the start was interrupted."""


def connect_producer(
    kafka: KafkaSettings,
    bridge: BridgeSettings,
    client_id: str,
    topics: Iterable[str],
    stop: threading.Event | None = None,
) -> Out:
    """A producer that has seen Kafka and the metadata of every topic; waits up to kafka_wait_s.

    A broker must first accept a TCP connection (probed here, cheaply, so the wait ends
    within a second of ``stop`` being set and kafka-python does not log every refused
    attempt). Raises KafkaUnavailable when Kafka or a topic is still missing at the deadline
    (run ``sledfleet topics create``; the broker never auto-creates them) or ``stop`` is set.
    """
    stop = stop or threading.Event()
    started = time.monotonic()
    deadline = started + bridge.kafka_wait_s
    producer: Out | None = None
    missing: list[str] = list(topics)
    cause = ""
    said = RateLimited(log, KAFKA_WAIT_LOG_EVERY_S)
    try:
        while True:
            reachable, cause = probe(kafka.bootstrap)
            if reachable:
                try:
                    if producer is None:
                        check_login(kafka)  # a refused login: ConfigError, one line
                        producer = make_out(kafka, bridge, client_id)
                    missing = [t for t in missing if not producer.has_topic(t)]
                    if not missing:
                        return producer
                    cause = f"topics missing: {', '.join(missing)}"
                except KafkaError as exc:
                    cause = f"{type(exc).__name__}: {exc}"
            waited = time.monotonic() - started
            if time.monotonic() >= deadline:
                raise KafkaUnavailable(
                    f"Kafka at {kafka.bootstrap} not ready after {waited:.0f} s ({cause})"
                )
            said.warning(
                "waiting for Kafka at %s (%s), %.0f s so far", kafka.bootstrap, cause, waited
            )
            if stop.wait(1.0):
                raise KafkaUnavailable(f"stopped while waiting for Kafka at {kafka.bootstrap}")
    except BaseException:
        if producer is not None:
            producer.close(0)
        raise


KAFKA_WAIT_LOG_EVERY_S: Final = 15.0
"""While waiting for Kafka at start, one log line at most this often."""


def _has_partitions(producer: KafkaProducer, topic: str) -> bool:
    try:
        return bool(producer.partitions_for(topic))
    except KafkaError:
        return False
