"""A tripwire on a role host's loopback: listeners on the default ports of the local stack
(``127.0.0.1`` 1883, 8883, 9092, 9093, 5432, 5433, 5434). Every role in the rehearsal is
configured with other hosts' names; a process that dials a default address it was never
given connects here instead of failing quietly, and the tripwire writes one JSON line per
connection (port, the peer's port, time) to its log. ``rehearsal.tripwire`` counts them.

Run on each role host: ``python -m rehearsal.tripwire <log>``."""

from __future__ import annotations

import json
import selectors
import socket
import sys
import time
from pathlib import Path
from typing import Final

DEFAULT_PORTS: Final = (1883, 8883, 9092, 9093, 5432, 5433, 5434)


def serve(log_path: Path, ports: tuple[int, ...] = DEFAULT_PORTS) -> None:
    sel = selectors.DefaultSelector()
    for port in ports:
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError as e:
            with log_path.open("a") as out:
                out.write(json.dumps({"error": f"cannot bind 127.0.0.1:{port}: {e}"}) + "\n")
            continue
        s.listen(64)
        sel.register(s, selectors.EVENT_READ, port)
    print("tripwire armed", flush=True)
    while True:
        for key, _ in sel.select():
            conn, peer = key.fileobj.accept()  # type: ignore[union-attr]
            with log_path.open("a") as out:
                out.write(
                    json.dumps({"port": key.data, "peer_port": peer[1], "t": time.time()}) + "\n"
                )
            conn.close()


def trips(log_path: Path) -> list[dict[str, object]]:
    """The connections (and bind errors) a tripwire recorded."""
    if not log_path.exists():
        return []
    return [json.loads(line) for line in log_path.read_text().splitlines() if line.strip()]


if __name__ == "__main__":
    serve(Path(sys.argv[1]))
