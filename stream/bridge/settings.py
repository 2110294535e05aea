"""Bridge settings: one frozen dataclass read from ``SLEDFLEET_BRIDGE_*`` variables.

The MQTT and Kafka connection settings are the shared ``MqttSettings`` and
``KafkaSettings`` from ``edge.settings``; this module adds what only the bridge
decides: its identity, its shared-subscription group, the in-flight bound and
the producer tuning. Every threshold here is named and documented.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass

from edge.settings import env

MIB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class BridgeSettings:
    instance: int = env("SLEDFLEET_BRIDGE_INSTANCE", 0)
    """Number of this bridge process on its host; part of the default client id."""
    client_id: str = env("SLEDFLEET_BRIDGE_CLIENT_ID", "")
    """Fixed MQTT client id (the persistent session's name). Empty: bridge-<hostname>-<instance>.
    It must stay the same across restarts, or unacknowledged messages wait for a client
    that never comes back until the session expires."""
    share_group: str = env("SLEDFLEET_BRIDGE_SHARE_GROUP", "sledfleet-bridge")
    """MQTT 5 shared-subscription group: bridges in one group split the messages."""
    clinic_filter: str = env("SLEDFLEET_BRIDGE_CLINIC_FILTER", "+")
    """Clinic level of the subscriptions: ``+`` (all clinics) or comma-separated clinic ids."""
    registry_file: str = env("SLEDFLEET_BRIDGE_REGISTRY_FILE", "")
    """Secure mode: the device registry (machine -> clinic, ``registry.json`` rendered by
    ``sledfleet device``). A message whose machine is not registered to its topic's clinic
    is dead-lettered (stream/bridge/registration.py). Empty: no check (dev mode)."""
    session_expiry_s: int = env("SLEDFLEET_BRIDGE_SESSION_EXPIRY_S", 3600)
    """How long the broker keeps the session (queueing QoS 1 messages) while the bridge is down."""
    receive_maximum: int = env("SLEDFLEET_BRIDGE_RECEIVE_MAXIMUM", 2000)
    """MQTT 5 Receive Maximum sent in CONNECT: unacknowledged QoS 1 messages the broker may
    have outstanding to us. Throughput is capped near receive_maximum / Kafka ack latency."""
    max_in_flight: int = env("SLEDFLEET_BRIDGE_MAX_IN_FLIGHT", 4000)
    """Messages handed to the producer and not yet acknowledged by Kafka. The broker's
    Receive Maximum normally bounds this; the bridge blocks its MQTT thread beyond it
    (only reachable across reconnects), so memory stays flat while Kafka is down."""
    metrics_host: str = env("SLEDFLEET_BRIDGE_METRICS_HOST", "127.0.0.1")
    metrics_port: int = env("SLEDFLEET_BRIDGE_METRICS_PORT", 9101)
    """Port of /metrics and /healthz; 0 picks a free port (logged at start)."""
    producer: str = env("SLEDFLEET_BRIDGE_PRODUCER", "confluent")
    """Kafka client: confluent (librdkafka, ~5x less CPU per record) or kafka-python. Both
    use acks=all, idempotence and kafka-python's murmur2 key placement."""
    linger_ms: int = env("SLEDFLEET_BRIDGE_LINGER_MS", 25)
    """Producer batching delay. 25 ms of latency buys large batches: measured on 2 cores,
    5 ms made one produce request (and one GIL hand-off waking the sender) per few frames
    and cost ~40 us/frame in the Kafka thread, 25 ms ~18 us/frame."""
    batch_bytes: int = env("SLEDFLEET_BRIDGE_BATCH_BYTES", 512 * 1024)
    max_request_bytes: int = env("SLEDFLEET_BRIDGE_MAX_REQUEST_BYTES", 16 * MIB)
    """Producer max_request_size; must fit the largest dead letter (see dead_letter_raw_limit)."""
    max_in_flight_requests: int = env("SLEDFLEET_BRIDGE_MAX_IN_FLIGHT_REQUESTS", 5)
    """Kafka requests in flight per connection; at most 5 keeps idempotent ordering."""
    delivery_timeout_ms: int = env("SLEDFLEET_BRIDGE_DELIVERY_TIMEOUT_MS", 86_400_000)
    """How long the producer keeps retrying a record. A day: a Kafka outage must never
    expire records (an expired valid record stops the bridge without acknowledging it)."""
    reconnect_backoff_max_ms: int = env("SLEDFLEET_BRIDGE_RECONNECT_BACKOFF_MAX_MS", 1000)
    """Cap on Kafka reconnect backoff, so traffic resumes within a second of Kafka's return."""
    dead_letter_raw_limit: int = env("SLEDFLEET_BRIDGE_DEAD_LETTER_RAW_LIMIT", 11 * MIB)
    """Largest original payload kept whole in a dead letter (base64 grows it by 4/3 and the
    record must stay under max_request_bytes and the topic's max.message.bytes). Larger ones
    keep their first bytes; the detail says so."""
    gil_switch_interval_ms: float = env("SLEDFLEET_BRIDGE_GIL_SWITCH_INTERVAL_MS", 20.0)
    """Python's thread switch interval (sys.setswitchinterval). The MQTT and Kafka threads
    contend for the GIL; a longer interval means fewer forced hand-offs. Measured on 2 cores
    (benchmarks/bridge.py, 30,000 frames): 5 ms 165-167 us CPU/frame, 20 ms 141-169,
    50 ms 182 (and Kafka ack latency 55 ms at 20 ms vs 90 ms at 50 ms)."""
    kafka_wait_s: float = env("SLEDFLEET_BRIDGE_KAFKA_WAIT_S", 120.0)
    """At start, how long to wait for Kafka and the topics before giving up (exit 1)."""
    shutdown_timeout_s: float = env("SLEDFLEET_BRIDGE_SHUTDOWN_TIMEOUT_S", 30.0)
    """On SIGTERM, how long to wait for Kafka to acknowledge what is in flight."""

    publish_acks: bool = env("SLEDFLEET_BRIDGE_PUBLISH_ACKS", True)
    """End-to-end acknowledgement (docs/contract.md): after Kafka took a machine's frames and
    events (acks=all), publish their seqs on ``sledfleet/v1/<clinic>/<machine>/ack`` (QoS 1,
    retained); agents with ``SLEDFLEET_EDGE_DELETE_ON=ack`` delete outbox rows only then."""
    ack_interval_ms: int = env("SLEDFLEET_BRIDGE_ACK_INTERVAL_MS", 100)
    """Acks are coalesced: at most one message per machine per this many ms (benchmarks/
    e2e_ack.py measured the cost). Longer: fewer messages, outboxes drain later."""

    def resolved_client_id(self) -> str:
        return self.client_id or f"bridge-{socket.gethostname()}-{self.instance}"
