"""``/metrics`` (Prometheus text, rendered by prometheus_client) and ``/healthz`` for a role.

Every SledFleet process that runs outside Faust serves its metrics with this: the bridge,
the sink and the edge agent (the Faust worker serves the same text from its own web server,
``stream.app.metrics``). Metric families come from collectors registered on a private
``CollectorRegistry``, so a process never exports another role's metrics and tests can run
several roles in one interpreter. ``/healthz`` (and ``/health``) answer 200 or 503 with the
reason as plain text. The server runs in a daemon thread and binds loopback by default.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CollectorRegistry, generate_latest

log = logging.getLogger(__name__)

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
"""What ``generate_latest`` writes (the text format every Prometheus version scrapes)."""

HealthCheck = Callable[[], tuple[bool, str]]
"""Returns (healthy, reason); the reason is the body of /healthz."""


def always_healthy() -> tuple[bool, str]:
    return True, "ok"


class MetricsServer:
    """Serves ``/metrics`` from ``registry`` and ``/healthz`` from ``health`` in a thread."""

    def __init__(
        self,
        registry: CollectorRegistry,
        health: HealthCheck = always_healthy,
        host: str = "127.0.0.1",
        port: int = 0,
        name: str = "metrics",
    ) -> None:
        self._server = ThreadingHTTPServer((host, port), _handler(registry, health))
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, name=f"{name}-http", daemon=True
        )

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def start(self) -> MetricsServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    # the sink's callers used ``shutdown()`` on the bare http.server
    shutdown = stop


def _handler(registry: CollectorRegistry, health: HealthCheck) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if path == "/metrics":
                self._reply(200, generate_latest(registry), CONTENT_TYPE)
            elif path in ("/healthz", "/health"):
                ok, text = health()
                self._reply(200 if ok else 503, (text + "\n").encode(), "text/plain")
            else:
                self._reply(404, b"not found\n", "text/plain")

        def _reply(self, status: int, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            log.debug("metrics http: " + format, *args)

    return Handler
