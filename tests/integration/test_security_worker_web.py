"""Issue #13, H2: the worker's web server (stream/app/web.py) listens on the configured
host only and serves no Faust table/router pages. A real aiohttp server on real sockets;
no Kafka needed (the web server is started alone)."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import faust
import pytest
from servers import free_port

from stream.app.web import built_in_routes, harden_web, web_options

pytestmark = pytest.mark.integration


def _non_loopback_ipv4() -> str | None:
    out = subprocess.run(
        ["ip", "-o", "-4", "addr", "show"], capture_output=True, text=True, check=False
    ).stdout
    for line in out.splitlines():
        address = line.split()[3].split("/")[0]
        if not address.startswith("127."):
            return address
    return None


def _app(port: int, hardened: bool) -> Any:
    options = web_options("127.0.0.1", port) if hardened else {"web_port": port}
    app = faust.App(f"web-{port}", broker="kafka://127.0.0.1:1", autodiscover=False, **options)
    app.Table("patients", default=int)

    async def stats(web: Any, request: Any) -> Any:
        return web.json({"ok": True})

    app.page("/sledfleet/stats/")(stats)
    if hardened:
        harden_web(app)
    return app


def _serve(app: Any) -> Iterator[None]:
    loop = asyncio.new_event_loop()
    started = threading.Event()

    async def start() -> None:
        app.web.init_server()
        await app.web.start_server()
        started.set()

    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    asyncio.run_coroutine_threadsafe(start(), loop).result(30)
    try:
        yield
    finally:
        asyncio.run_coroutine_threadsafe(app.web.stop_server(), loop).result(30)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


def _status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return int(r.status)
    except urllib.error.HTTPError as exc:
        return exc.code


def _reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=3):
            return True
    except OSError:
        return False


@pytest.mark.parametrize("hardened", [False, True])
def test_worker_web_binds_the_configured_host_and_has_no_table_routes(hardened: bool) -> None:
    port = free_port()
    app = _app(port, hardened)
    other = _non_loopback_ipv4()
    for _ in _serve(app):
        base = f"http://127.0.0.1:{port}"
        assert _status(f"{base}/sledfleet/stats/") == 200
        table = _status(f"{base}/table/patients/p1/")
        if hardened:
            assert built_in_routes(app) == []
            assert table == 404
            assert _status(f"{base}/router/") == 404
            if other is not None:
                assert not _reachable(other, port)
        else:  # the unhardened Faust defaults: what the probe found
            assert table != 404
            if other is not None:
                assert _reachable(other, port)
