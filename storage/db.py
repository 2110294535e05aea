"""Connections and the database flavour (TimescaleDB or plain PostgreSQL).

The flavour is detected through ``pg_available_extensions`` (never by matching the error
``CREATE EXTENSION timescaledb`` raises on plain PostgreSQL, see docs/storage.md) and can
be forced with ``SLEDFLEET_DATABASE_FLAVOUR``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Final, Literal

import psycopg

from edge.settings import DatabaseSettings, env, load

log = logging.getLogger(__name__)

Flavour = Literal["timescale", "postgres"]
FLAVOURS: Final[tuple[Flavour, ...]] = ("timescale", "postgres")


@dataclass(frozen=True, slots=True)
class StorageSettings:
    flavour: str = env("SLEDFLEET_DATABASE_FLAVOUR", "auto")
    """auto (detect), timescale or postgres."""
    simple_protocol: bool = env("SLEDFLEET_DATABASE_SIMPLE", False)
    """Never prepare statements (pglite and PgBouncer-style poolers need this)."""


def connect(dsn: str, *, autocommit: bool = False, **kwargs: Any) -> psycopg.Connection[Any]:
    """Open a connection; ``prepare_threshold=None`` when the simple setting is on."""
    settings = load(StorageSettings)
    if settings.simple_protocol:
        kwargs.setdefault("prepare_threshold", None)
    return psycopg.connect(dsn, autocommit=autocommit, **kwargs)


def default_dsn() -> str:
    return load(DatabaseSettings).dsn.reveal()


def timescale_available(conn: psycopg.Connection[Any]) -> bool:
    row = conn.execute(
        "SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb'"
    ).fetchone()
    return row is not None


def detect_flavour(conn: psycopg.Connection[Any], forced: str | None = None) -> Flavour:
    """``timescale`` when the extension can be (or is) installed, else ``postgres``."""
    choice = forced if forced is not None else load(StorageSettings).flavour
    if choice in FLAVOURS:
        return choice
    if choice != "auto":
        raise ValueError(
            f"SLEDFLEET_DATABASE_FLAVOUR must be auto, timescale or postgres: {choice!r}"
        )
    return "timescale" if timescale_available(conn) else "postgres"


def installed_flavour(conn: psycopg.Connection[Any]) -> Flavour | None:
    """The flavour the schema was migrated with, or None before the first migration."""
    row = conn.execute("SELECT to_regclass('sledfleet.schema_version') IS NOT NULL").fetchone()
    if not row or not row[0]:
        return None
    got = conn.execute(
        "SELECT flavour FROM sledfleet.schema_version ORDER BY version LIMIT 1"
    ).fetchone()
    return None if got is None else got[0]
