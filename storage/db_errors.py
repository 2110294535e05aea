"""Database connection failures told as one line: which setting, what went wrong, the fix.

``check_database`` opens one connection before a role starts (``sledfleet sink``, ``db``
actions): a wrong DSN, an unreachable server, a missing database, bad credentials or an
unmigrated database then stop the process with a ``ConfigError`` instead of a traceback or
an endless retry. The DSN is shown without its password.
"""

from __future__ import annotations

import re
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict

from edge.settings import ConfigError

SETTING = "SLEDFLEET_DATABASE_URL (or --dsn)"
EXAMPLE = "postgresql://sledfleet:PASSWORD@127.0.0.1:5433/sledfleet"


def redacted(dsn: str) -> str:
    """The DSN with its password replaced by ``***`` (for messages)."""
    return re.sub(r"(://[^:/@]*:)[^@]*@", r"\1***@", re.sub(r"password=\S+", "password=***", dsn))


def _where(dsn: str) -> str:
    try:
        params = conninfo_to_dict(dsn)
    except psycopg.Error:
        return redacted(dsn)
    host, port, db = params.get("host", "localhost"), params.get("port", 5432), params.get("dbname")
    return f"{host}:{port}/{db or '?'}"


def explain(exc: psycopg.Error, dsn: str) -> ConfigError:
    """The ConfigError for a failed ``psycopg.connect(dsn)``."""
    text = " ".join(str(exc).split())
    where = _where(dsn)
    if isinstance(exc, psycopg.ProgrammingError) or "connection info string" in text:
        return ConfigError(
            SETTING,
            f"{redacted(dsn)[:80]!r} is not a PostgreSQL URL ({text[:120]})",
            f"use the form {EXAMPLE}",
        )
    if "does not exist" in text and "database" in text:
        return ConfigError(
            SETTING,
            f"database missing at {where}",
            "create it (services/start postgres creates 'sledfleet') or correct the name",
        )
    if "password authentication failed" in text or "no password supplied" in text:
        return ConfigError(
            SETTING,
            f"PostgreSQL at {where} refused the user name or password",
            "correct the credentials in the URL",
        )
    if "resolve host" in text or "Name or service not known" in text:
        return ConfigError(SETTING, f"unknown host in {where}", "correct the host name")
    if "Connection refused" in text or "timeout" in text.lower():
        return ConfigError(
            SETTING,
            f"no PostgreSQL server answers at {where}",
            "start it (services/start postgres) or correct host and port",
        )
    return ConfigError(SETTING, f"cannot connect to {where}: {text[:160]}", "check the URL")


def check_database(dsn: str, *, migrated: bool = True, **kwargs: Any) -> None:
    """Raise ConfigError unless ``dsn`` connects (and, by default, is migrated)."""
    from storage.db import connect, installed_flavour

    try:
        with connect(dsn, autocommit=True, connect_timeout=10, **kwargs) as conn:
            if migrated and installed_flavour(conn) is None:
                raise ConfigError(
                    SETTING,
                    f"database {_where(dsn)} is not migrated",
                    "run sledfleet db migrate with the same URL",
                )
    except psycopg.Error as exc:
        raise explain(exc, dsn) from None
