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

``harden_web`` touches Faust's blueprint list, so it lives with the other Faust internals
in ``stream.app.faust_port`` and is re-exported here.
"""

from __future__ import annotations

from typing import Any, Final

from stream.app.faust_port import BUILT_IN_PAGES, built_in_routes, harden_web

__all__ = ["BUILT_IN_PREFIX", "built_in_routes", "harden_web", "web_options"]

BUILT_IN_PREFIX: Final = BUILT_IN_PAGES
"""Module prefix of Faust's own blueprints (tables, router, graph, stats, metrics, index)."""


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
