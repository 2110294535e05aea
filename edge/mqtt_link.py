"""The agent's MQTT connection: paho-mqtt 2.x, MQTT 5, persistent session, QoS 1.

A thin adapter. paho's network thread (``loop_start``; it waits with ``poll()``, see
``edge.paho_fds``, so one process holds many agents) connects, reconnects with exponential
backoff and re-sends QoS 1 messages that were in flight when the
connection dropped. Its callbacks only record what happened (connections, PUBACKs
with their MQTT 5 reason code, incoming config messages); the agent's pump thread
reads those records and does all the work, so no database call ever runs in paho's
thread.
"""

from __future__ import annotations

import logging
import ssl
import threading
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from edge import paho_fds
from edge.settings import MqttSettings

log = logging.getLogger(__name__)
paho_fds.install()  # paho's select() stops at descriptor 1,023: one process, many agents

RECEIVE_MAXIMUM_DEFAULT = 65535
"""MQTT 5: a CONNACK without Receive Maximum means 65,535."""


@dataclass(frozen=True, slots=True)
class Will:
    topic: str
    payload: bytes


class MqttLink:
    def __init__(
        self,
        settings: MqttSettings,
        client_id: str,
        will: Will,
        subscriptions: list[str],
        session_expiry_s: int,
        reconnect_min_s: int = 1,
        reconnect_max_s: int = 30,
        resend_on_reconnect: bool = True,
    ) -> None:
        self.settings = settings
        self._resend_on_reconnect = resend_on_reconnect
        self.client_id = client_id
        self._subscriptions = subscriptions
        self._session_expiry_s = session_expiry_s
        c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
        if settings.username:
            c.username_pw_set(settings.username, settings.password.reveal() or None)
        if settings.tls or settings.ca_file or settings.cert_file:
            c.tls_set(
                ca_certs=settings.ca_file or None,
                certfile=settings.cert_file or None,
                keyfile=settings.key_file or None,
                cert_reqs=ssl.CERT_REQUIRED,
                tls_version=ssl.PROTOCOL_TLS_CLIENT,
            )
        c.will_set(will.topic, will.payload, qos=1, retain=True)
        c.max_inflight_messages_set(settings.max_inflight)
        c.reconnect_delay_set(reconnect_min_s, reconnect_max_s)
        c.on_connect = self._on_connect
        c.on_disconnect = self._on_disconnect
        c.on_publish = self._on_publish
        c.on_message = self._on_message
        c.on_subscribe = self._on_subscribe
        self.client = c
        self.connected = threading.Event()
        self._lock = threading.Lock()
        self._acks: list[tuple[int, bool]] = []
        self._messages: list[tuple[str, bytes]] = []
        self.generation = 0
        """Incremented on every successful connection (the pump notices reconnects)."""
        self.session_present = False
        self.last_error = ""
        self.receive_maximum = RECEIVE_MAXIMUM_DEFAULT
        """The broker's Receive Maximum from the last CONNACK."""

    # --- lifecycle -----------------------------------------------------------------------------

    def start(self) -> None:
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        props.SessionExpiryInterval = self._session_expiry_s
        self.client.connect_async(
            self.settings.host,
            self.settings.port,
            keepalive=self.settings.keepalive_s,
            clean_start=False,
            properties=props,
        )
        self.client.loop_start()

    def stop(self, last_words: Will | None = None, timeout_s: float = 2.0) -> None:
        """Publish ``last_words`` (the retained offline state) if connected, then disconnect."""
        if last_words is not None and self.connected.is_set():
            info = self.client.publish(last_words.topic, last_words.payload, qos=1, retain=True)
            try:
                info.wait_for_publish(timeout_s)
            except (RuntimeError, ValueError) as exc:
                log.warning("%s: offline state not confirmed: %s", self.client_id, exc)
        self.connected.clear()  # a deliberate disconnect is not worth a warning
        self.client.disconnect()
        self.client.loop_stop()

    # --- used by the pump thread ---------------------------------------------------------------

    def publish(self, topic: str, payload: bytes, qos: int = 1, retain: bool = False) -> int | None:
        """Hand a message to paho; its mid, or None if paho refused it.

        A message handed over while the connection is down is kept by paho and sent
        after the reconnect, so it counts as handed over.
        """
        info = self.client.publish(topic, payload, qos=qos, retain=retain)
        if info.rc in (MQTTErrorCode.MQTT_ERR_SUCCESS, MQTTErrorCode.MQTT_ERR_NO_CONN):
            return info.mid
        log.warning("%s: publish refused: %s", self.client_id, mqtt.error_string(info.rc))
        return None

    def take_acks(self) -> list[tuple[int, bool]]:
        """(mid, ok) pairs received since the last call; ok is False for reason codes >= 0x80."""
        with self._lock:
            acks, self._acks = self._acks, []
        return acks

    def take_messages(self) -> list[tuple[str, bytes]]:
        with self._lock:
            msgs, self._messages = self._messages, []
        return msgs

    # --- paho callbacks (network thread) --------------------------------------------------------

    def _on_connect(
        self,
        client: mqtt.Client,
        userdata: Any,
        flags: mqtt.ConnectFlags,
        reason_code: ReasonCode,
        properties: Properties | None,
    ) -> None:
        if reason_code.is_failure:
            self.last_error = str(reason_code)
            log.warning("%s: connection refused: %s", self.client_id, reason_code)
            return
        # paho neither honours the broker's Receive Maximum (MQTT 5) nor lets its in-flight
        # limit change while connected: the agent caps its own window with this instead
        receive_max = getattr(properties, "ReceiveMaximum", None) if properties else None
        self.receive_maximum = int(receive_max or RECEIVE_MAXIMUM_DEFAULT)
        if not self._resend_on_reconnect:
            dropped = self._forget_unacknowledged(client)
            if dropped:
                log.info("%s: %d unacknowledged publishes left to the agent", self.client_id,
                         dropped)  # fmt: skip
        for topic in self._subscriptions:
            client.subscribe(topic, qos=1)
        with self._lock:
            self.generation += 1
            self.session_present = flags.session_present
        self.connected.set()
        log.info(
            "%s: connected to %s:%s (session present: %s)",
            self.client_id,
            self.settings.host,
            self.settings.port,
            flags.session_present,
        )

    @staticmethod
    def _forget_unacknowledged(client: mqtt.Client) -> int:
        """Drop paho's unacknowledged publishes before it re-sends them (paho calls
        on_connect first). End-to-end mode: the agent re-sends every unconfirmed row itself,
        oldest first, so a machine's seqs stay in order across the reconnect (paho would send
        its newest in-flight rows ahead of older rows the broker lost). Uses paho's private
        ``_out_messages`` (paho is pinned below 3)."""
        with client._out_message_mutex:
            dropped = len(client._out_messages)
            client._out_messages.clear()
            client._inflight_messages = 0
        return dropped

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
            self.last_error = f"subscription refused: {', '.join(refused)}"
            log.error(
                "%s: %s (check the broker ACL: a device reads its config and ack topics)",
                self.client_id,
                self.last_error,
            )

    def _on_disconnect(
        self,
        client: mqtt.Client,
        userdata: Any,
        flags: mqtt.DisconnectFlags,
        reason_code: ReasonCode,
        properties: Properties | None,
    ) -> None:
        if self.connected.is_set():
            log.warning("%s: disconnected: %s", self.client_id, reason_code)
        self.connected.clear()

    def _on_publish(
        self,
        client: mqtt.Client,
        userdata: Any,
        mid: int,
        reason_code: ReasonCode,
        properties: Properties | None,
    ) -> None:
        ok = not reason_code.is_failure
        if not ok:
            log.warning("%s: broker rejected mid %s: %s", self.client_id, mid, reason_code)
        with self._lock:
            self._acks.append((mid, ok))

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        with self._lock:
            self._messages.append((msg.topic, bytes(msg.payload)))
