"""The worker's HTTP server, hardened (issue #13, H2).

Faust binds its web server to ``web_bind`` (default ``0.0.0.0``) and uses ``web_host`` only
to build URLs, so a worker configured for 127.0.0.1 listened on every interface. It also
serves ``/table/<name>/<key>/`` (the content of any table: a patient's reps, ASI and MCV)
and ``/router/`` with no authentication. This module gives ``faust.App`` a bind address
equal to the configured host and turns every Faust built-in page off, so only the app's own
pages (``app.page(...)``: stats, consumer state) remain.

Used by ``stream/app/app.py``::

    app = faust.App(app_id, ..., **web_options(settings.web_host, port))
    harden_web(app)
"""

from __future__ import annotations

from typing import Any, Final

BUILT_IN_PREFIX: Final = "faust.web.apps."
"""Module prefix of Faust's own blueprints (tables, router, graph, stats, metrics, index)."""


HEALTH_PATH: Final = "/"
"""A plain health page where Faust's production index was (the demo and supervisors poll it)."""


def web_options(host: str, port: int) -> dict[str, Any]:
    """``faust.App`` keyword arguments: listen on ``host`` only, no built-in pages."""
    return {
        "web_host": host,
        "web_bind": host,
        "web_port": port,
        "web_tables_enabled": False,
        "web_router_enabled": False,
        "web_graph_enabled": False,
        "web_stats_enabled": False,
        "web_metrics_enabled": False,
    }


def harden_web(app: Any) -> None:
    """Drop every Faust built-in blueprint still enabled (the production index at ``/``,
    any the flags do not cover) and serve a plain health page at ``/`` instead. Call after
    ``faust.App(...)``, before the worker starts."""
    blueprints = app.web.blueprints
    if blueprints.applied:
        raise RuntimeError("harden_web must run before the web server starts")
    blueprints._enabled = [
        (prefix, bp)
        for prefix, bp in blueprints._enabled
        if not (isinstance(bp, str) and bp.startswith(BUILT_IN_PREFIX))
    ]

    async def health(web: Any, request: Any) -> Any:
        return web.json({"status": "ok"})

    app.page(HEALTH_PATH)(health)  # replaces Faust's index at "/" (what health checks poll)


def built_in_routes(app: Any) -> list[str]:
    """The Faust built-in blueprints the web server would mount (empty once hardened)."""
    return [
        bp
        for _, bp in app.web.blueprints._enabled
        if isinstance(bp, str) and bp.startswith(BUILT_IN_PREFIX)
    ]
