"""A paho client that reads the socket in large chunks instead of byte by byte.

paho 2.2 reads each packet with several small ``recv`` calls (1 byte of command, the
remaining length byte by byte, then the body) and one packet per ``select``. Every
``recv`` releases and re-acquires the GIL; with kafka-python's I/O thread busy in the
same process each re-acquisition can wait up to the interpreter's switch interval, which
capped the bridge near 1,500 messages/s. This subclass serves those small reads from a
256 KiB buffer filled by one ``recv`` and keeps parsing packets while buffered bytes
remain, so a burst of PUBLISH packets costs one system call.

It overrides two private paho methods (``_sock_recv``, ``_sock_close``) and the public
``loop_read``; paho is pinned below 3 in pyproject and ``tests/unit/stream/bridge``
checks the parsing against real packet bytes.
"""

from __future__ import annotations

from typing import Any, Final

import paho.mqtt.client as mqtt
from paho.mqtt.enums import MQTTErrorCode

READ_CHUNK: Final = 256 * 1024


class BufferedClient(mqtt.Client):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._rbuf = bytearray()
        super().__init__(*args, **kwargs)

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
        super()._sock_close()

    def buffered(self) -> int:
        return len(self._rbuf)

    def loop_read(self, max_packets: int = 1) -> MQTTErrorCode:
        rc = super().loop_read(max_packets)
        # select() cannot see bytes already in our buffer: parse them now
        while rc == MQTTErrorCode.MQTT_ERR_SUCCESS and self._rbuf and self._sock:
            rc = super().loop_read(1)
        return rc
