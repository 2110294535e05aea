"""The bridge's producer on confluent-kafka (librdkafka): the default since it costs ~5x
less CPU per record than kafka-python (docs/bridge.md, benchmarks/bridge.py).

Same guarantees as the kafka-python producer (``stream.bridge.kafka_out``): acks=all with
idempotence (librdkafka keeps per-partition order across retries with up to 5 requests in
flight), a delivery timeout of a day so an outage stalls rather than expires records, a
request size that fits the largest dead letter, and the same key placement:
``murmur2_random`` is kafka-python's murmur2 on the key (librdkafka's default, consistent
CRC32, places keys elsewhere; checked on thousands of keys by a test).

librdkafka runs delivery reports only inside ``poll``/``flush``. A dedicated poll thread
calls ``poll`` in a loop, so the reports (``flight.ok`` / ``flight.err``: window update and
PUBACKs) run there, never on paho's network thread, as kafka-python's I/O thread did.
librdkafka's own log lines go to the ``kafka.rdkafka`` logger (rate-limited by the CLI).
"""

from __future__ import annotations

import logging
import threading
from typing import Any, Final, Protocol

from confluent_kafka import KafkaError, KafkaException, Message, Producer

from edge.settings import KafkaSettings
from stream.bridge.core import Record
from stream.bridge.settings import BridgeSettings

log = logging.getLogger(__name__)
rdkafka_log = logging.getLogger("kafka.rdkafka")

POLL_S: Final = 0.05
"""Longest a delivery report waits for the poll thread (it wakes at once when one is due)."""
FULL_QUEUE_WAIT_S: Final = 0.01


class Flight(Protocol):
    """One message between produce and Kafka's answer (``mqtt_in._InFlight``)."""

    def ok(self, metadata: object) -> None: ...
    def err(self, exc: BaseException) -> None: ...
    def delivered(self, error: KafkaError | None, msg: Message) -> None:
        """librdkafka's delivery report: ``ok`` or ``err(DeliveryFailed(error))``."""


class DeliveryFailed(KafkaException):
    """A record librdkafka gave up on; ``name`` is the Kafka error name for metrics."""

    def __init__(self, error: KafkaError) -> None:
        super().__init__(error)
        self.name = str(error.name())


def confluent_config(
    kafka: KafkaSettings, bridge: BridgeSettings, client_id: str
) -> dict[str, Any]:
    """librdkafka configuration for the bridge (pure, unit-tested)."""
    return {
        "bootstrap.servers": ",".join(s.strip() for s in kafka.bootstrap.split(",") if s.strip()),
        "client.id": client_id,
        "acks": "all",
        "enable.idempotence": True,
        "max.in.flight.requests.per.connection": bridge.max_in_flight_requests,
        "message.timeout.ms": bridge.delivery_timeout_ms,
        "linger.ms": bridge.linger_ms,
        "batch.size": bridge.batch_bytes,
        "message.max.bytes": bridge.max_request_bytes,
        "reconnect.backoff.max.ms": bridge.reconnect_backoff_max_ms,
        "partitioner": "murmur2_random",  # kafka-python's placement (see module docstring)
        "queue.buffering.max.messages": max(100_000, 2 * bridge.max_in_flight),
        "logger": rdkafka_log,
        **kafka.librdkafka_auth(),
    }


class ConfluentOut:
    """produce(record, flight) → flight.ok / flight.err from the poll thread."""

    def __init__(self, kafka: KafkaSettings, bridge: BridgeSettings, client_id: str) -> None:
        self._producer = Producer(confluent_config(kafka, bridge, client_id))
        self._closing = threading.Event()
        self._poller = threading.Thread(target=self._poll_loop, name="kafka-poll", daemon=True)
        self._poller.start()

    def produce(self, record: Record, flight: Flight) -> None:
        while True:
            try:
                self._producer.produce(
                    record.topic,
                    record.value,
                    record.key,
                    headers=record.headers,  # type: ignore[arg-type]  # list is invariant
                    on_delivery=flight.delivered,
                )
                return
            except BufferError:  # local queue full: the poll thread drains it
                if self._closing.wait(FULL_QUEUE_WAIT_S):
                    raise

    def has_topic(self, topic: str, timeout_s: float = 2.0) -> bool:
        """Whether Kafka knows ``topic`` with at least one partition."""
        try:
            meta = self._producer.list_topics(topic, timeout=timeout_s)
        except KafkaException:
            return False
        found = meta.topics.get(topic)
        return found is not None and found.error is None and bool(found.partitions)

    def flush(self, timeout_s: float) -> int:
        """Wait up to ``timeout_s`` for outstanding records; returns how many are left."""
        return int(self._producer.flush(timeout_s))

    def close(self, timeout_s: float = 5.0) -> None:
        if timeout_s > 0:
            self.flush(timeout_s)
        self._closing.set()
        self._poller.join(timeout=max(1.0, timeout_s))

    def _poll_loop(self) -> None:
        poll = self._producer.poll
        while not self._closing.is_set():
            try:
                poll(POLL_S)
            except Exception:  # a report callback raised: never kill the poll thread
                log.exception("delivery report failed")
