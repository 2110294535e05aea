"""Is a server there at all? A TCP probe used before a role builds its client, so a role
waiting for a server stops within a second of SIGTERM/Ctrl-C and logs once in a while
instead of letting a client library retry (and log) in a tight loop. Stdlib only."""

from __future__ import annotations

import logging
import socket
import time
from typing import Final

PROBE_TIMEOUT_S: Final = 1.0


def reachable(servers: str, default_port: int = 9092) -> tuple[bool, str]:
    """Whether any of ``host:port[,host:port...]`` accepts a TCP connection, and why not."""
    cause = "no servers configured"
    for server in (s.strip() for s in servers.split(",") if s.strip()):
        host, _, port = server.rpartition(":")
        try:
            addr = (host or server, int(port or default_port))
            with socket.create_connection(addr, PROBE_TIMEOUT_S):
                return True, ""
        except (OSError, ValueError) as exc:
            cause = f"{server}: {getattr(exc, 'strerror', None) or exc}"
    return False, cause


class RateLimited:
    """Logs a repeated message at most once every ``every_s`` (with a count of the rest)."""

    def __init__(self, logger: logging.Logger, every_s: float) -> None:
        self.logger = logger
        self.every_s = every_s
        self._last = -float("inf")
        self._suppressed = 0

    def warning(self, msg: str, *args: object) -> bool:
        now = time.monotonic()
        if now - self._last < self.every_s:
            self._suppressed += 1
            return False
        if self._suppressed:
            msg += f" ({self._suppressed} similar messages suppressed)"
        self.logger.warning(msg, *args)
        self._last, self._suppressed = now, 0
        return True
