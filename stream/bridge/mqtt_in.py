"""The running bridge: paho MQTT 5 consumer → contract routing → Kafka producer → PUBACK.

Threads and who touches what:

* paho's network thread (``loop_start``) runs ``_on_raw_message`` (plain PUBLISH packets
  parsed by ``BufferedClient``'s fast path) or ``_on_message`` (the rest, parsed by paho):
  it validates and routes the message (pure ``core.route``), registers it in the
  ``AckWindow`` and hands the record to the producer (``kafka_out.Out.produce``,
  non-blocking).
* The producer's own thread reports Kafka's answers: confluent-kafka's poll thread
  (``kafka_confluent``, the default) calls ``_InFlight.delivered``, kafka-python's I/O
  thread completes futures with ``_InFlight.ok``/``err``. Either marks the message done
  and sends the PUBACKs that are now due, in arrival order.
* PUBACKs are queued with ``BufferedClient.ack_many`` (a list under its own lock, plus one
  wake-up byte on paho's socket pair); the network thread alone writes them, in one
  ``send`` per batch. (Plain ``Client.ack`` from another thread would also be safe in paho
  2.2 with ``loop_start``: it appends to a ``collections.deque`` and wakes the loop; only
  the loop thread writes to the socket. It costs a wake-up and a ``send`` per message.)
  Window updates and ``ack_many`` happen under one lock so acks leave in order, and a
  dropped connection resets the window and discards queued acks under the same lock, so
  a packet id of the old connection is never acknowledged on the new one.

A valid message is acknowledged only after Kafka acknowledged it and every message before
it. A Kafka failure that survives the producer's own retries stops the bridge loudly
without acknowledging; the broker redelivers to the next session.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import paho.mqtt.client as mqtt
from confluent_kafka import KafkaError
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from paho.mqtt.subscribeoptions import SubscribeOptions

from edge.contract import KAFKA_BY_KIND, KAFKA_DEADLETTER
from edge.settings import KafkaSettings, MqttSettings
from stream.bridge.ack_out import AckPublisher
from stream.bridge.acks import AckRef, dead_ack_ref
from stream.bridge.core import AckWindow, Record, route, subscriptions
from stream.bridge.kafka_confluent import DeliveryFailed
from stream.bridge.kafka_out import Out, connect_producer
from stream.bridge.metrics import BridgeMetrics
from stream.bridge.paho_buffered import BufferedClient
from stream.bridge.registration import for_bridge
from stream.bridge.settings import BridgeSettings

log = logging.getLogger(__name__)

SLOT_WAIT_S = 0.5
"""How often a blocked MQTT thread re-checks for shutdown while the in-flight bound is full."""
RECONNECT_DELAY_S = (1, 5)
SHUTDOWN_STALL_S = 3.0
"""At shutdown, give up waiting for Kafka after this long without a single answer."""
FLUSH_STEP_S = 0.5


class Bridge:
    """One bridge process's MQTT session, producer and acknowledgement bookkeeping."""

    def __init__(
        self,
        mqtt_settings: MqttSettings,
        kafka_settings: KafkaSettings,
        settings: BridgeSettings,
        metrics: BridgeMetrics | None = None,
    ) -> None:
        self.mqtt_settings = mqtt_settings
        self.kafka_settings = kafka_settings
        self.settings = settings
        self.client_id = settings.resolved_client_id()
        self.metrics = metrics or BridgeMetrics()
        self.fatal = threading.Event()
        self.fatal_reason = ""
        self._stopping = False
        self._lock = threading.Lock()
        self._window = AckWindow()
        self._room = threading.Condition(self._lock)
        self._in_flight = 0
        self._producer: Out | None = None
        self._client: BufferedClient | None = None
        self.acks: AckPublisher | None = None
        """End-to-end acks to the agents (docs/contract.md); None when switched off."""
        if settings.publish_acks:
            self.acks = AckPublisher(
                self.client_id, settings.ack_interval_ms / 1000, self._publish_ack
            )
            self.acks.on_flush = self._count_acks
        prefix = kafka_settings.topic_prefix
        targets = (*dict.fromkeys(KAFKA_BY_KIND.values()), KAFKA_DEADLETTER)
        self.topics = [prefix + t for t in targets]
        self.registration = for_bridge(
            settings.registry_file, prefix, self.client_id, settings.dead_letter_raw_limit
        )  # secure mode: machine must be registered to the topic's clinic (docs/security.md)

    # --- lifecycle ----------------------------------------------------------------------
    def start(self, stop: threading.Event | None = None) -> None:
        """Connect to Kafka first (topics must exist), then open the MQTT session.

        Raises KafkaUnavailable when Kafka is not ready in time or ``stop`` was set."""
        self._producer = connect_producer(
            self.kafka_settings, self.settings, self.client_id, self.topics, stop
        )
        self._client = self._make_client()
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        props.SessionExpiryInterval = self.settings.session_expiry_s
        props.ReceiveMaximum = self.settings.receive_maximum
        s = self.mqtt_settings
        self._client.connect_async(
            s.host, s.port, keepalive=s.keepalive_s, clean_start=False, properties=props
        )
        self._client.loop_start()
        if self.acks is not None:
            self.acks.start()
        log.info(
            "bridge %s: MQTT %s:%d, Kafka %s, topics %s",
            self.client_id,
            s.host,
            s.port,
            self.kafka_settings.bootstrap,
            self.topics,
        )

    def health(self) -> tuple[bool, str]:
        if self.fatal.is_set():
            return False, f"fatal: {self.fatal_reason}"
        if not self.metrics.mqtt_connected:
            return False, "mqtt disconnected"
        if not self.metrics.mqtt_subscribed:
            return False, "mqtt subscribing"  # healthy once the broker granted the filters
        return True, "ok"

    def stop(self) -> bool:
        """Graceful stop: refuse new messages, flush Kafka, send due acks, disconnect.

        Returns True when everything received was acknowledged by Kafka in time.
        """
        self._stopping = True
        drained = True
        if self._producer is not None and not self.fatal.is_set():
            drained = self._flush()
        with self._lock:
            left = len(self._window)
        if left:
            log.warning("%d messages not acknowledged by Kafka at shutdown", left)
            drained = False
        if self.acks is not None:
            self.acks.stop()  # what Kafka took is acknowledged to the agents before we go
        if self._client is not None:
            # DISCONNECT queues behind the PUBACKs already queued, so they reach the broker
            self._client.disconnect()
            self._client.loop_stop()
            log.info("%d messages parsed on the fast path", self._client.fast_messages)
        if self._producer is not None:
            self._producer.close(0 if self.fatal.is_set() or not drained else 5)
        log.info("bridge %s stopped (drained=%s)", self.client_id, drained)
        return drained

    def _flush(self) -> bool:
        """Wait for Kafka to answer what is in flight: at most shutdown_timeout_s, and no
        longer than SHUTDOWN_STALL_S without any answer (Kafka unreachable: stop now, the
        broker redelivers what was not acknowledged)."""
        assert self._producer is not None
        deadline = time.monotonic() + self.settings.shutdown_timeout_s
        last, last_change = self.metrics.in_flight, time.monotonic()
        while self.metrics.in_flight > 0:
            now = time.monotonic()
            if now >= deadline or now - last_change >= SHUTDOWN_STALL_S:
                log.warning(
                    "Kafka answered nothing for %.0f s at shutdown; %d messages stay "
                    "unacknowledged and will be redelivered",
                    now - last_change,
                    self.metrics.in_flight,
                )
                return False
            self._producer.flush(FLUSH_STEP_S)  # progress is checked above
            if self.metrics.in_flight != last:
                last, last_change = self.metrics.in_flight, time.monotonic()
        return True

    # --- paho callbacks (network thread) ---------------------------------------------------
    def _make_client(self) -> BufferedClient:
        s = self.mqtt_settings
        client = BufferedClient(
            CallbackAPIVersion.VERSION2,
            client_id=self.client_id,
            protocol=mqtt.MQTTv5,
            manual_ack=True,
        )
        client.max_inflight_messages_set(s.max_inflight)  # outgoing: the end-to-end acks
        if s.username:
            client.username_pw_set(s.username, s.password.reveal() or None)
        if s.tls:
            client.tls_set(
                ca_certs=s.ca_file or None,
                certfile=s.cert_file or None,
                keyfile=s.key_file or None,
            )
        client.reconnect_delay_set(*RECONNECT_DELAY_S)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_subscribe = self._on_subscribe
        client.on_message = self._on_message
        client.on_raw_message = self._on_raw_message
        return client

    def _on_connect(
        self,
        client: mqtt.Client,
        userdata: Any,
        flags: mqtt.ConnectFlags,
        reason_code: ReasonCode,
        properties: Properties | None,
    ) -> None:
        if reason_code.is_failure:
            log.error("MQTT connect refused: %s", reason_code)
            return
        log.info("MQTT connected (session present: %s)", flags.session_present)
        self.metrics.on_connection(True)
        options = SubscribeOptions(qos=1)
        filters = subscriptions(self.settings.share_group, self.settings.clinic_filter)
        client.subscribe([(f, options) for f in filters])

    def _on_subscribe(
        self,
        client: mqtt.Client,
        userdata: Any,
        mid: int,
        reason_codes: list[ReasonCode],
        properties: Properties | None,
    ) -> None:
        refused = [str(rc) for rc in reason_codes if rc.is_failure]
        if refused:
            self._stop_fatally(f"MQTT subscription refused: {', '.join(refused)}")
            return
        self.metrics.on_subscribed()

    def _on_disconnect(
        self,
        client: mqtt.Client,
        userdata: Any,
        flags: mqtt.DisconnectFlags,
        reason_code: ReasonCode,
        properties: Properties | None,
    ) -> None:
        with self._lock:
            dropped = self._window.reset()
            if self._client is not None:
                self._client.discard_acks()
        self.metrics.on_connection(False, dropped)
        if not self._stopping:
            log.warning(
                "MQTT disconnected (%s); %d unacknowledged messages will be redelivered",
                reason_code,
                dropped,
            )

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        self._on_raw_message(msg._topic, bytes(msg.payload), msg.mid, msg.qos)

    def _on_raw_message(self, topic_bytes: bytes, raw: bytes, mid: int, qos: int) -> None:
        if self._stopping or self.fatal.is_set():
            return  # not acknowledged: the broker redelivers it to the next session
        received_at_ns = time.time_ns()
        started = time.perf_counter()
        try:
            topic = topic_bytes.decode("utf-8")
        except UnicodeDecodeError:
            topic = topic_bytes.decode("utf-8", "replace")
        try:
            record = route(
                topic,
                raw,
                received_at_ns,
                prefix=self.kafka_settings.topic_prefix,
                bridge_id=self.client_id,
                dead_letter_raw_limit=self.settings.dead_letter_raw_limit,
            )
            if self.registration is not None:
                record = self.registration.check(topic, raw, record, received_at_ns)
        except Exception as exc:  # a bug, not bad data: stop loudly, leave it unacked
            log.exception("routing %s failed", topic[:200])
            self._stop_fatally(f"routing failed: {exc!r}")
            return
        with self._lock:  # the lock of self._room
            while self._in_flight >= self.settings.max_in_flight:
                if self._stopping or self.fatal.is_set():
                    return
                self._room.wait(SLOT_WAIT_S)
            self._in_flight += 1
            token = self._window.add(mid, qos)
        self.metrics.on_received()
        ack = record.ack
        if ack is None and record.dead and self.acks is not None:
            ack = dead_ack_ref(topic, raw)  # Kafka holds it as a dead letter: let it go
        flight = _InFlight(self, token, record, started, ack)
        assert self._producer is not None
        try:
            self._producer.produce(record, flight)
        except Exception as exc:
            flight.err(exc)

    # --- Kafka completions (producer I/O thread) -------------------------------------------
    def _acked(self, flight: _InFlight) -> None:
        record = flight.record
        latency_s = time.perf_counter() - flight.started
        with self._lock:  # the lock of self._room (a plain lock: no Condition frames)
            self._in_flight -= 1
            if self._in_flight == self.settings.max_in_flight - 1:
                self._room.notify()
            due = self._window.complete(flight.token)
            if due and self._client is not None:
                # under the lock: acks leave in window order, never after a reset
                self._client.ack_many([mid for mid, qos in due if qos == 1])
        self.metrics.on_kafka_ack(record.topic, record.reason, latency_s, len(due))
        if flight.ack is not None and self.acks is not None:
            self.acks.add(flight.ack)

    def _count_acks(self, messages: int, seqs: int) -> None:
        self.metrics.e2e_ack_messages, self.metrics.e2e_acked_seqs = messages, seqs

    def _publish_ack(self, topic: str, payload: bytes) -> bool:
        """One end-to-end ack (AckPublisher's thread): QoS 1, retained; paho keeps it
        while the connection is down."""
        client = self._client
        if client is None:
            return False
        info = client.publish(topic, payload, qos=1, retain=True)
        return info.rc in (mqtt.MQTT_ERR_SUCCESS, mqtt.MQTT_ERR_NO_CONN)

    def _failed(self, flight: _InFlight, exc: BaseException) -> None:
        with self._room:
            self._in_flight -= 1
            self._room.notify()
        self.metrics.on_kafka_error(str(getattr(exc, "name", None) or type(exc).__name__))
        self._stop_fatally(f"Kafka refused a record for {flight.record.topic}: {exc!r}")

    def _stop_fatally(self, reason: str) -> None:
        self.fatal_reason = reason
        log.error("%s; stopping without acknowledging it", reason)
        self.fatal.set()


class _InFlight:
    """One message between ``producer.send`` and Kafka's answer."""

    __slots__ = ("ack", "bridge", "record", "started", "token")

    def __init__(
        self, bridge: Bridge, token: int, record: Record, started: float, ack: AckRef | None
    ) -> None:
        self.bridge = bridge
        self.token = token
        self.record = record
        self.started = started
        self.ack = ack

    def ok(self, _metadata: object) -> None:
        self.bridge._acked(self)

    def err(self, exc: BaseException) -> None:
        self.bridge._failed(self, exc)

    def delivered(self, error: KafkaError | None, _msg: object) -> None:
        """confluent-kafka's delivery report (on its poll thread)."""
        if error is None:
            self.bridge._acked(self)
        else:
            self.bridge._failed(self, DeliveryFailed(error))
