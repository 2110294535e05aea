"""A paho client that reads the socket in large chunks instead of byte by byte.

paho 2.2 reads each packet with several small ``recv`` calls (1 byte of command, the
remaining length byte by byte, then the body) and one packet per ``select``. Every
``recv`` releases and re-acquires the GIL; with kafka-python's I/O thread busy in the
same process each re-acquisition can wait up to the interpreter's switch interval, which
capped the bridge near 1,500 messages/s. This subclass serves those small reads from a
256 KiB buffer filled by one ``recv`` and keeps parsing packets while buffered bytes
remain, so a burst of PUBLISH packets costs one system call.

Acknowledgements go the other way in bulk: ``ack_many`` (any thread) queues packet ids
and wakes the network thread once; its ``loop_write`` turns every queued id into one
write of concatenated 4-byte PUBACKs instead of one ``Client.ack`` call, socket-pair
wake-up and ``send`` per message.

Incoming PUBLISH packets have a fast path too: paho spends ~55 us per message on the
generic packet state machine, a ``Properties`` object, an ``MQTTMessage`` (with its
``Condition``) and topic matching. With ``on_raw_message`` set, ``loop_read`` parses every
complete QoS 0/1 MQTT 5 PUBLISH without properties straight from the buffer
(``parse_publish``) and calls ``on_raw_message(topic_bytes, payload, mid, qos)`` under
paho's ``_in_callback_mutex``, as paho would call ``on_message``. Anything else (another
packet type, QoS 2, properties such as a topic alias, a malformed or incomplete packet,
per-topic callbacks added with ``message_callback_add``) is left to paho's own parsing,
so it keeps paho's exact behaviour, including its protocol errors.

It overrides two private paho methods (``_sock_recv``, ``_sock_close``), calls
``_packet_read``/``_loop_rc_handle`` to read one packet at a time, uses the private
``_out_packet`` queue, ``_sockpairW`` wake-up socket, ``_in_packet`` read state,
``_in_callback_mutex``/``_msgtime_mutex`` locks and ``_last_bytes_received`` keepalive
clock, and overrides the public ``loop_read``/``loop_write``; paho is pinned below 3 in
pyproject and ``tests/unit/stream/bridge`` checks both directions against real packet
bytes (and the fast path against paho's own decoding).
"""

from __future__ import annotations

import contextlib
import struct
import threading
from collections.abc import Callable, Iterable
from typing import Any, Final

import paho.mqtt.client as mqtt
from paho.mqtt.enums import MQTTErrorCode

RawMessageHandler = Callable[[bytes, bytes, int, int], None]
"""``(topic as bytes, payload, packet id, qos)`` of one PUBLISH (packet id 0 for QoS 0)."""

READ_CHUNK: Final = 256 * 1024
_PUBACK: Final = struct.Struct("!BBH")  # PUBACK, remaining length 2, packet id (reason 0)
_PUBACK_COMMAND: Final = 0x40
_PUBLISH: Final = 0x30
_MAX_LENGTH_BYTES: Final = 4


def parse_publish(buf: bytearray) -> tuple[bytes, bytes, int, int, int] | None:
    """``(topic, payload, mid, qos, packet size)`` of the packet at the start of ``buf``.

    Only a complete QoS 0/1 MQTT 5 PUBLISH whose property length is 0 qualifies; for
    anything else (incomplete, another packet type, QoS 2, properties, malformed) the
    answer is None and paho parses the packet itself.
    """
    n = len(buf)
    if n < 2:
        return None
    header = buf[0]
    qos = (header >> 1) & 3
    if header & 0xF0 != _PUBLISH or qos > 1:
        return None
    length = 0
    shift = 0
    i = 1
    while True:
        if i >= n or i > _MAX_LENGTH_BYTES:
            return None
        byte = buf[i]
        i += 1
        length |= (byte & 0x7F) << shift
        if byte < 0x80:
            break
        shift += 7
    end = i + length
    if end > n or length < 2:
        return None
    topic_end = i + 2 + ((buf[i] << 8) | buf[i + 1])
    props = topic_end + 2 if qos else topic_end
    if props >= end or buf[props]:  # no property length byte, or properties present
        return None
    mid = (buf[topic_end] << 8) | buf[topic_end + 1] if qos else 0
    return bytes(buf[i + 2 : topic_end]), bytes(buf[props + 1 : end]), mid, qos, end


class BufferedClient(mqtt.Client):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._rbuf = bytearray()
        self._acks: list[int] = []
        self._acks_lock = threading.Lock()
        self._filtered = False
        self.on_raw_message: RawMessageHandler | None = None
        """Set it to take PUBLISH packets on the fast path (see the module docstring)."""
        self.fast_messages = 0
        """PUBLISH packets delivered by the fast path (the rest went through paho)."""
        super().__init__(*args, **kwargs)

    def message_callback_add(self, sub: str, callback: Any) -> None:
        self._filtered = True  # per-topic callbacks: paho's matching decides, no fast path
        super().message_callback_add(sub, callback)

    def ack_many(self, mids: Iterable[int]) -> None:
        """Queue QoS 1 PUBACKs for ``mids`` (any thread); written in order, in one go."""
        with self._acks_lock:
            wake = not self._acks
            self._acks.extend(mids)
        if wake and self._sockpairW is not None:
            # a full wake-up pipe means the network thread is waking anyway
            with contextlib.suppress(BlockingIOError):
                self._sockpairW.send(b"0")

    def discard_acks(self) -> int:
        """Forget queued PUBACKs (the connection they belong to is gone)."""
        with self._acks_lock:
            dropped = len(self._acks)
            self._acks = []
        return dropped

    def loop_write(self) -> MQTTErrorCode:
        self._queue_acks()
        return super().loop_write()

    def disconnect(self, *args: Any, **kwargs: Any) -> MQTTErrorCode:
        # PUBACKs still waiting in our list must leave before the DISCONNECT packet
        self._queue_acks()
        return super().disconnect(*args, **kwargs)

    def _queue_acks(self) -> None:
        with self._acks_lock:
            acks, self._acks = self._acks, []
            if acks and self._sock is not None:
                packet = b"".join([_PUBACK.pack(_PUBACK_COMMAND, 2, mid) for mid in acks])
                self._out_packet.append(
                    {
                        "command": _PUBACK_COMMAND,
                        "mid": 0,
                        "qos": 0,
                        "pos": 0,
                        "to_process": len(packet),
                        "packet": packet,
                        "info": None,
                    }
                )

    def _sock_recv(self, bufsize: int) -> bytes:
        buf = self._rbuf
        if not buf:
            chunk = super()._sock_recv(max(bufsize, READ_CHUNK))
            if len(chunk) <= bufsize:
                return chunk
            buf += chunk
        out = bytes(buf[:bufsize])
        del buf[:bufsize]
        return out

    def _sock_close(self) -> None:
        self._rbuf.clear()  # a new connection never sees bytes of the old one
        self.discard_acks()  # nor acknowledgements meant for the old one
        super()._sock_close()

    def buffered(self) -> int:
        return len(self._rbuf)

    def loop_read(self, max_packets: int = 1) -> MQTTErrorCode:
        rc = self._read_one()
        # select() cannot see bytes already in our buffer: parse them now
        while rc == MQTTErrorCode.MQTT_ERR_SUCCESS and self._rbuf and self._sock:
            if self._take_publishes() and not self._rbuf:
                break
            rc = self._read_one()  # a packet the fast path leaves to paho
        return rc

    def _read_one(self) -> MQTTErrorCode:
        """paho's ``loop_read`` for exactly one packet. paho's own reads one packet per
        outgoing QoS 1 message it holds (``len(_out_messages)``, whatever ``max_packets``
        says), all through its slow parser: with the bridge publishing end-to-end acks that
        starved the fast path (2,600 of 30,000 frames took it; 220-290 instead of 90-130 us
        CPU per frame, benchmarks/e2e_ack.py)."""
        if self._sock is None:
            return MQTTErrorCode.MQTT_ERR_NO_CONN
        rc = self._packet_read()
        if rc > 0:
            return self._loop_rc_handle(rc)
        if rc == MQTTErrorCode.MQTT_ERR_AGAIN:
            return MQTTErrorCode.MQTT_ERR_SUCCESS
        return rc

    def _take_publishes(self) -> int:
        """Deliver the complete plain PUBLISH packets at the head of the buffer."""
        handler = self.on_raw_message
        if (
            handler is None
            or self._filtered
            or self._protocol != mqtt.MQTTv5
            or self._in_packet["command"]  # paho is in the middle of a packet
        ):
            return 0
        buf = self._rbuf
        taken = 0
        try:
            with self._in_callback_mutex:
                while buf and self._sock is not None:
                    parsed = parse_publish(buf)
                    if parsed is None:
                        break
                    topic, payload, mid, qos, size = parsed
                    del buf[:size]  # consumed before the callback, as paho does
                    taken += 1
                    try:
                        handler(topic, payload, mid, qos)
                    except Exception as err:
                        self._easy_log(mqtt.MQTT_LOG_ERR, "Caught exception in on_message: %s", err)
                        if not self.suppress_exceptions:
                            raise
        finally:
            if taken:
                with self._msgtime_mutex:
                    self._last_bytes_received = mqtt.time_func()
                self.fast_messages += taken
        return taken
