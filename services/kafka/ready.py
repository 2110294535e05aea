"""Kafka readiness probe for services/start (stdlib only: runs before any venv exists).

Sends a real Metadata request (v4, all topics) to 127.0.0.1:<port> and exits 0 when the
broker answers with at least one live broker and an active controller, 1 otherwise.
Usage: python3 ready.py <port> [timeout_s]
"""

from __future__ import annotations

import socket
import struct
import sys

API_METADATA = 3
METADATA_VERSION = 4  # Kafka 4 removed v0-v3 (KIP-896); v4 is the oldest still served


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("connection closed")
        buf += chunk
    return buf


def probe(port: int, timeout_s: float) -> tuple[int, int]:
    """(live brokers, controller id) from a Metadata response."""
    client_id = b"sledfleet-ready"
    header = struct.pack(">hhih", API_METADATA, METADATA_VERSION, 1, len(client_id)) + client_id
    body = struct.pack(">i?", -1, False)  # null topic array = all topics; no auto-create
    request = header + body
    with socket.create_connection(("127.0.0.1", port), timeout=timeout_s) as sock:
        sock.settimeout(timeout_s)
        sock.sendall(struct.pack(">i", len(request)) + request)
        (size,) = struct.unpack(">i", _recv_exact(sock, 4))
        data = _recv_exact(sock, size)
    pos = 4 + 4  # correlation id, throttle_time_ms
    (n_brokers,) = struct.unpack_from(">i", data, pos)
    pos += 4
    for _ in range(n_brokers):
        pos += 4  # node id
        (hlen,) = struct.unpack_from(">h", data, pos)
        pos += 2 + hlen + 4  # host, port
        (rlen,) = struct.unpack_from(">h", data, pos)
        pos += 2 + max(rlen, 0)  # rack (nullable)
    (clen,) = struct.unpack_from(">h", data, pos)
    pos += 2 + max(clen, 0)  # cluster id (nullable)
    (controller,) = struct.unpack_from(">i", data, pos)
    return n_brokers, controller


def main() -> int:
    port = int(sys.argv[1])
    timeout_s = float(sys.argv[2]) if len(sys.argv) > 2 else 3.0
    try:
        brokers, controller = probe(port, timeout_s)
    except (OSError, struct.error, ConnectionError) as exc:
        print(f"not ready: {exc}", file=sys.stderr)
        return 1
    if brokers < 1 or controller < 0:
        print(f"not ready: brokers={brokers} controller={controller}", file=sys.stderr)
        return 1
    print(f"ready: brokers={brokers} controller={controller}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
