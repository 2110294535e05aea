"""Prometheus-style counters and a health endpoint for the sink (stdlib only)."""

from __future__ import annotations

import json
import threading
from collections import defaultdict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class Metrics:
    """Thread-safe counters and gauges rendered in the Prometheus text format."""

    def __init__(self, prefix: str = "sledfleet_sink") -> None:
        self.prefix = prefix
        self._lock = threading.Lock()
        self._counters: dict[tuple[str, tuple[tuple[str, str], ...]], float] = defaultdict(float)
        self._gauges: dict[str, float] = {}
        self.healthy = True
        self.status = "starting"

    def inc(self, name: str, value: float = 1.0, **labels: str) -> None:
        with self._lock:
            self._counters[(name, tuple(sorted(labels.items())))] += value

    def set(self, name: str, value: float) -> None:
        with self._lock:
            self._gauges[name] = value

    def get(self, name: str, **labels: str) -> float:
        with self._lock:
            return self._counters.get((name, tuple(sorted(labels.items()))), 0.0)

    def render(self) -> str:
        lines = []
        with self._lock:
            for (name, labels), value in sorted(self._counters.items()):
                lab = ",".join(f'{k}="{v}"' for k, v in labels)
                lines.append(f"{self.prefix}_{name}{{{lab}}} {value:g}")
            for name, value in sorted(self._gauges.items()):
                lines.append(f"{self.prefix}_{name} {value:g}")
        return "\n".join(lines) + "\n"


def serve(metrics: Metrics, port: int, host: str = "127.0.0.1") -> ThreadingHTTPServer:
    """Serve ``/metrics`` and ``/health`` (503 while the database is unavailable)."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path.startswith("/metrics"):
                self._send(200, metrics.render(), "text/plain; version=0.0.4")
            elif self.path.startswith("/health"):  # /health and /healthz
                body = json.dumps({"status": metrics.status})
                self._send(200 if metrics.healthy else 503, body, "application/json")
            else:
                self._send(404, "not found\n", "text/plain")

        def _send(self, code: int, body: str, ctype: str) -> None:
            data = body.encode()
            self.send_response(code)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = ThreadingHTTPServer((host, port), Handler)
    threading.Thread(target=server.serve_forever, name="sink-metrics", daemon=True).start()
    return server
