"""Publishes the bridge's end-to-end acknowledgements (thin: the bookkeeping is ``acks``).

Kafka's delivery reports (the producer's thread) call ``add`` for every record that carries
a machine's seq; a thread of its own takes what is pending every
``SLEDFLEET_BRIDGE_ACK_INTERVAL_MS`` and publishes one retained QoS 1 message per machine on
``sledfleet/v1/{clinic}/{machine}/ack`` through the bridge's own MQTT client (paho queues it
while disconnected and sends it after the reconnect). ``stop`` publishes what is left.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from edge.contract import ack_payload, ack_topic, encode
from stream.bridge.acks import Ack, AckRef, AckTracker

log = logging.getLogger(__name__)

Publish = Callable[[str, bytes], bool]
"""``(topic, payload) -> handed to the MQTT client``: QoS 1, retained."""


class AckPublisher:
    def __init__(self, bridge_id: str, interval_s: float, publish: Publish) -> None:
        self.bridge_id = bridge_id
        self.interval_s = interval_s
        self._publish = publish
        self._tracker = AckTracker()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="ack-publisher", daemon=True)
        self.messages = 0
        """Ack messages handed to MQTT."""
        self.refs = 0
        """Seqs acknowledged (records Kafka took that carried one)."""
        self.on_flush: Callable[[int, int], None] | None = None
        """Called after each flush with (messages, refs) so far (the bridge's metrics)."""

    def add(self, ref: AckRef) -> None:
        with self._lock:
            self._tracker.add(ref)
            self.refs += 1

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Stop the thread and publish what is pending (call after Kafka was flushed)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)
        self.flush()

    def flush(self) -> int:
        with self._lock:
            due = self._tracker.take()
        now = time.time_ns()
        sent = 0
        for ack in due:
            if self._publish(ack_topic(ack.clinic_id, ack.machine_id), self._encode(ack, now)):
                sent += 1
        self.messages += sent
        if self.on_flush is not None:
            self.on_flush(self.messages, self.refs)
        return sent

    def _encode(self, ack: Ack, now_ns: int) -> bytes:
        return encode(
            ack_payload(
                ack.clinic_id, ack.machine_id, self.bridge_id, ack.frames, ack.events, now_ns
            )
        )

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self.flush()
            except Exception:  # a publish bug must not end the acks silently
                log.exception("publishing acks failed")
