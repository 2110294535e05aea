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

It overrides two private paho methods (``_sock_recv``, ``_sock_close``), uses the private
``_out_packet`` queue and ``_sockpairW`` wake-up socket, and overrides the public
``loop_read``/``loop_write``; paho is pinned below 3 in pyproject and
``tests/unit/stream/bridge`` checks both directions against real packet bytes.
"""

from __future__ import annotations

import contextlib
import struct
import threading
from collections.abc import Iterable
from typing import Any, Final

import paho.mqtt.client as mqtt
from paho.mqtt.enums import MQTTErrorCode

READ_CHUNK: Final = 256 * 1024
_PUBACK: Final = struct.Struct("!BBH")  # PUBACK, remaining length 2, packet id (reason 0)
_PUBACK_COMMAND: Final = 0x40


class BufferedClient(mqtt.Client):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._rbuf = bytearray()
        self._acks: list[int] = []
        self._acks_lock = threading.Lock()
        super().__init__(*args, **kwargs)

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
        rc = super().loop_read(max_packets)
        # select() cannot see bytes already in our buffer: parse them now
        while rc == MQTTErrorCode.MQTT_ERR_SUCCESS and self._rbuf and self._sock:
            rc = super().loop_read(1)
        return rc
