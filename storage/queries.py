"""Named SQL shared by the dashboards, the patient report and the benchmarks.

Each ``storage/sql/<name>.sql`` file holds one query over the dashboard views with psycopg
named parameters (``%(patient_id)s``, ``%(clinic_id)s``, ``%(start)s``, ``%(end)s``); load it
by name, never copy it. ``refresh`` and ``maintain`` keep the aggregates and retention
current on both flavours.
"""

from __future__ import annotations

import logging
from functools import cache
from pathlib import Path
from typing import Any, Final

import psycopg
from psycopg import sql

from storage.db import Flavour

log = logging.getLogger(__name__)

SQL_DIR: Final = Path(__file__).parent / "sql"


def names() -> list[str]:
    return sorted(p.stem for p in SQL_DIR.glob("*.sql"))


@cache
def load(name: str) -> str:
    """The text of ``storage/sql/<name>.sql``; unknown names raise KeyError."""
    path = SQL_DIR / f"{name}.sql"
    if name not in names():
        raise KeyError(f"no query named {name!r} (known: {', '.join(names())})")
    return path.read_text(encoding="utf-8")


def run(
    conn: psycopg.Connection[Any], name: str, params: dict[str, Any] | None = None
) -> list[tuple[Any, ...]]:
    with conn.cursor() as cur:
        cur.execute(load(name).encode(), params or {})
        return cur.fetchall()


def aggregates(conn: psycopg.Connection[Any]) -> list[str]:
    rows = conn.execute("SELECT name FROM sledfleet.aggregates ORDER BY refresh_order").fetchall()
    return [r[0] for r in rows]


def refresh(conn: psycopg.Connection[Any], flavour: Flavour) -> list[str]:
    """Bring every aggregate up to date (needs an autocommit connection on TimescaleDB)."""
    done = []
    for name in aggregates(conn):
        ident = sql.Identifier("sledfleet", name)
        if flavour == "timescale":
            conn.execute(
                sql.SQL("CALL refresh_continuous_aggregate({}, NULL, NULL)").format(
                    sql.Literal(f"sledfleet.{name}")
                )
            )
        else:
            conn.execute(sql.SQL("REFRESH MATERIALIZED VIEW CONCURRENTLY {}").format(ident))
        done.append(name)
    log.debug("refreshed %s", done)
    return done


def maintain(conn: psycopg.Connection[Any], flavour: Flavour) -> int:
    """Plain PostgreSQL: drop partitions past retention (TimescaleDB's policies do it)."""
    if flavour != "postgres":
        return 0
    row = conn.execute("SELECT sledfleet.drop_expired_partitions()").fetchone()
    return int(row[0]) if row else 0
