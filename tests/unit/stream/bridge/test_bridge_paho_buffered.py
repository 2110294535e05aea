"""The buffered paho client parses bursts of packets read in one recv (local socketpair)."""

from __future__ import annotations

import select
import socket
import threading
import time

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from stream.bridge.paho_buffered import BufferedClient


def _remaining_length(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n % 128, n // 128
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def publish_packet(topic: str, payload: bytes, mid: int) -> bytes:
    """An MQTT 5 QoS 1 PUBLISH packet with no properties."""
    t = topic.encode()
    body = len(t).to_bytes(2, "big") + t + mid.to_bytes(2, "big") + b"\x00" + payload
    return b"\x32" + _remaining_length(len(body)) + body


def feed(peer: socket.socket, data: bytes) -> threading.Thread:
    """Send from a thread: a socketpair buffer is smaller than a burst."""
    t = threading.Thread(target=peer.sendall, args=(data,), daemon=True)
    t.start()
    return t


def read_until(client: BufferedClient, got: list, count: int, timeout: float = 5) -> None:
    deadline = time.monotonic() + timeout
    while len(got) < count and time.monotonic() < deadline:
        select.select([client._sock], [], [], 0.1)
        assert client.loop_read() == mqtt.MQTTErrorCode.MQTT_ERR_SUCCESS


@pytest.fixture
def wired():
    client = BufferedClient(
        CallbackAPIVersion.VERSION2, client_id="t", protocol=mqtt.MQTTv5, manual_ack=True
    )
    ours, theirs = socket.socketpair()
    ours.setblocking(False)
    client._sock = ours
    got: list[tuple[int, str, bytes]] = []
    client.on_message = lambda c, u, m: got.append((m.mid, m.topic, m.payload))
    yield client, theirs, got
    client._sock = None
    ours.close()
    theirs.close()


def test_a_burst_of_packets_is_parsed_from_one_read(wired):
    client, peer, got = wired
    packets = [publish_packet(f"a/{i}", bytes([i]) * (i * 300), i + 1) for i in range(50)]
    feed(peer, b"".join(packets))
    read_until(client, got, 50)
    assert [g[0] for g in got] == list(range(1, 51))
    assert got[7] == (8, "a/7", bytes([7]) * 2100)
    assert client.buffered() == 0


def test_a_packet_split_across_reads_is_completed_later(wired):
    client, peer, got = wired
    big = publish_packet("big/topic", b"x" * 300_000, 9)  # larger than one read chunk
    small = publish_packet("s", b"y", 10)
    data = big + small
    peer.sendall(data[:1000])
    client.loop_read()
    assert got == []
    feed(peer, data[1000:])
    read_until(client, got, 2)
    assert [(m, t, len(p)) for m, t, p in got] == [(9, "big/topic", 300_000), (10, "s", 1)]


def test_closing_the_socket_drops_buffered_bytes(wired):
    client, peer, _ = wired
    peer.sendall(publish_packet("a", b"1", 1)[:3])
    client.loop_read()
    client._rbuf += b"stale"
    client._sock_close()
    assert client.buffered() == 0


def test_queued_acks_leave_as_one_write_of_pubacks(wired):
    client, peer, _ = wired
    client.ack_many([1, 2])
    client.ack_many([300])
    assert client.loop_write() == mqtt.MQTTErrorCode.MQTT_ERR_SUCCESS
    peer.settimeout(2)
    assert peer.recv(100) == b"\x40\x02\x00\x01" + b"\x40\x02\x00\x02" + b"\x40\x02\x01\x2c"


def test_acks_of_a_closed_connection_are_discarded(wired):
    client, _, _ = wired
    client.ack_many([5])
    assert client.discard_acks() == 1
    client.ack_many([6])
    client._sock_close()
    assert client.discard_acks() == 0


def test_pending_acks_leave_before_disconnect(wired):
    client, peer, _ = wired
    client._state = mqtt._ConnectionState.MQTT_CS_CONNECTED
    client.ack_many([7])
    client.disconnect()
    client.loop_write()
    peer.settimeout(2)
    data = peer.recv(100)
    assert data.startswith(b"\x40\x02\x00\x07")
    assert data[4] == 0xE0  # DISCONNECT after the PUBACK
