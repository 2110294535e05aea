"""The buffered paho client parses bursts of packets read in one recv (local socketpair), and
its PUBLISH fast path agrees with paho's own decoding."""

from __future__ import annotations

import select
import socket
import threading
import time

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt._packet import decode_publish
from paho.mqtt.enums import CallbackAPIVersion

from stream.bridge.paho_buffered import BufferedClient, parse_publish


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


# --- the PUBLISH fast path --------------------------------------------------------------------


def _packet(header: int, body: bytes) -> bytes:
    return bytes([header]) + _remaining_length(len(body)) + body


def _publish(
    topic: bytes, payload: bytes, mid: int | None, props: bytes = b"\x00", h=0x32
) -> bytes:
    body = len(topic).to_bytes(2, "big") + topic
    if mid is not None:
        body += mid.to_bytes(2, "big")
    return _packet(h, body + props + payload)


PLAIN = [
    _publish(b"sledfleet/v1/c/m/telemetry", b'{"v":1}', 1),
    _publish(b"a/b", b"", 65535),
    _publish(b"", b"x", 7),  # empty topic: paho accepts it in MQTT 5, so does the fast path
    _publish(b"bad\xff/utf8", b"y", 8),
    _publish(b"q0", b"zero", None, h=0x30),
    _publish(b"dup/retain", b"r", 9, h=0x3B),
    _publish(b"big", b"p" * 20_000, 10),  # three remaining-length bytes
]
LEFT_TO_PAHO = [
    _publish(b"props", b"x", 3, props=b"\x02\x01\x01"),  # payload format indicator
    _publish(b"alias", b"x", 3, props=b"\x03\x23\x00\x01"),  # topic alias
    _publish(b"qos2", b"x", 4, h=0x34),
    _packet(0x90, b"\x00\x01\x00\x01"),  # SUBACK
    b"\xd0\x00",  # PINGRESP
    _packet(0x32, b"\x00\x09ab\x00\x01\x00"),  # topic longer than the packet
    _packet(0x32, b"\x00\x02ab\x00\x01"),  # no property length byte
    b"\x32\x80\x80\x80\x80\x01" + b"\x00" * 10,  # five remaining-length bytes
]


@pytest.mark.parametrize("packet", PLAIN)
def test_parse_publish_agrees_with_paho(packet):
    parsed = parse_publish(bytearray(packet + b"\xd0\x00"))
    assert parsed is not None
    topic, payload, mid, qos, size = parsed
    assert size == len(packet)
    ref = decode_publish(packet[0], decode_publish_body(packet), mqtt.MQTTv5)
    assert (topic, payload, mid, qos) == (ref.topic, ref.payload, ref.mid, ref.qos)
    assert not ref.properties.json()  # paho saw no properties either


def decode_publish_body(packet: bytes) -> bytes:
    i = 1
    while packet[i] & 0x80:
        i += 1
    return packet[i + 1 :]


@pytest.mark.parametrize("packet", LEFT_TO_PAHO)
def test_parse_publish_leaves_everything_else_to_paho(packet):
    assert parse_publish(bytearray(packet)) is None


def test_parse_publish_never_takes_an_incomplete_packet():
    packet = PLAIN[0]
    for cut in range(len(packet)):
        assert parse_publish(bytearray(packet[:cut])) is None


@pytest.fixture
def fast(wired):
    client, peer, _ = wired
    raw: list[tuple[int, bytes, bytes, int]] = []
    client.on_raw_message = lambda t, p, mid, q: raw.append((mid, t, p, q))
    client.on_message = lambda c, u, m: raw.append((m.mid, m._topic, m.payload, -m.qos))
    return client, peer, raw


def test_fast_path_delivers_in_order_and_hands_the_rest_to_paho(fast):
    client, peer, raw = fast
    packets = [publish_packet(f"t/{i}", bytes([i]) * 500, i + 1) for i in range(200)]
    packets[50] = _publish(b"t/50", b"props", 51, props=b"\x02\x01\x01")
    feed(peer, b"".join(packets))
    read_until(client, raw, 200)
    assert [r[0] for r in raw] == list(range(1, 201))
    assert raw[50] == (51, b"t/50", b"props", -1)  # parsed by paho, delivered as on_message
    assert raw[7] == (8, b"t/7", bytes([7]) * 500, 1)
    assert client.fast_messages >= 150
    assert client.buffered() == 0


def test_fast_path_completes_a_split_packet(fast):
    client, peer, raw = fast
    data = publish_packet("one", b"a" * 1000, 1) + publish_packet("two", b"b" * 1000, 2)
    peer.sendall(data[:1500])
    client.loop_read()
    feed(peer, data[1500:])
    read_until(client, raw, 2)
    assert [(r[0], r[1], len(r[2])) for r in raw] == [(1, b"one", 1000), (2, b"two", 1000)]


def test_topic_callbacks_turn_the_fast_path_off(fast):
    client, peer, raw = fast
    client.message_callback_add("x/#", lambda c, u, m: raw.append((m.mid, b"cb", b"", 0)))
    feed(peer, publish_packet("x/1", b"a", 1) + publish_packet("y", b"b", 2) * 3)
    read_until(client, raw, 4)
    assert raw[0] == (1, b"cb", b"", 0)
    assert client.fast_messages == 0


def test_a_failing_fast_callback_raises_after_consuming_its_packet(fast):
    client, peer, _ = fast

    def boom(*_: object) -> None:
        raise RuntimeError("bug")

    client.on_raw_message = boom
    peer.sendall(publish_packet("a", b"1", 1) * 3)
    select.select([client._sock], [], [], 1)
    with pytest.raises(RuntimeError):
        client.loop_read()
    assert client.fast_messages == 1


def test_own_unacknowledged_publishes_do_not_starve_the_fast_path(fast):
    # the bridge publishes end-to-end acks (QoS 1): paho's loop_read would read one packet
    # per such message through its slow parser
    client, peer, raw = fast
    for i in range(300):
        client._out_messages[60000 + i] = mqtt.MQTTMessage(60000 + i, b"sledfleet/v1/c/m/ack")
    packets = [publish_packet(f"t/{i}", bytes([i]) * 500, i + 1) for i in range(200)]
    feed(peer, b"".join(packets))
    read_until(client, raw, 200)
    assert [r[0] for r in raw] == list(range(1, 201))
    assert client.fast_messages >= 190
