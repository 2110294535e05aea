"""Every SQL text the dashboards and the patient report run, in one place.

Each query lives in ``dashboards/sql/<name>.sql`` as Grafana-flavoured SQL (macros such as
``$__timeFilter(ts)`` and template variables ``$clinic``, ``'$patient'``, ``$machine``),
with a header of ``--`` comment lines naming the Grafana result ``format`` and the
``columns`` (name:kind) it returns. The header is stripped from ``rawSql``. Constants from
:mod:`dashboards.thresholds` are written ``{{NAME}}`` and substituted at load time.

The dashboard builders put :attr:`Query.sql` into panel targets; the report and the tests
expand the very same text with :mod:`dashboards.macros` and run it (:func:`run`), so no
SQL string is written twice.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, Final, Literal, cast

from dashboards import thresholds
from dashboards.macros import Context, expand

SQL_DIR: Final = Path(__file__).with_name("sql")

Format = Literal["time_series", "table"]
Kind = Literal["time", "timegroup", "num", "text", "bool", "date"]
"""``timegroup``: a ``$__timeGroupAlias`` column, timestamptz on TimescaleDB, epoch seconds
(numeric) on plain PostgreSQL; Grafana reads both as time."""
KINDS: Final[frozenset[str]] = frozenset({"time", "timegroup", "num", "text", "bool", "date"})

_HEADER_RE: Final = re.compile(r"^--\s*(format|columns):\s*(.+)$")
_CONST_RE: Final = re.compile(r"\{\{([A-Z0-9_]+)\}\}")
_VARIABLE_USE_RE: Final = re.compile(r"\$\{?([a-z]\w*)")


@dataclass(frozen=True, slots=True)
class Query:
    name: str
    sql: str
    format: Format
    columns: tuple[tuple[str, Kind], ...]

    @property
    def variables(self) -> frozenset[str]:
        """Template variables the SQL refers to (not the ``$__`` macros)."""
        return frozenset(_VARIABLE_USE_RE.findall(self.sql))

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c for c, _ in self.columns)


def parse(name: str, text: str) -> Query:
    fmt: str | None = None
    columns: list[tuple[str, Kind]] = []
    body: list[str] = []
    in_header = True
    for line in text.splitlines():
        if in_header and line.startswith("--"):
            m = _HEADER_RE.match(line)
            if m and m.group(1) == "format":
                fmt = m.group(2).strip()
            elif m:
                for item in m.group(2).split(","):
                    col, _, kind = item.strip().partition(":")
                    if kind not in KINDS:
                        raise ValueError(f"{name}: column {col!r} has unknown kind {kind!r}")
                    columns.append((col, cast(Kind, kind)))
            continue
        in_header = False
        body.append(line)
    if fmt not in ("time_series", "table"):
        raise ValueError(f"{name}: header needs '-- format: time_series|table'")
    if not columns:
        raise ValueError(f"{name}: header needs '-- columns: name:kind, ...'")
    sql = _CONST_RE.sub(lambda m: _constant(name, m.group(1)), "\n".join(body).strip())
    return Query(name, sql, cast(Format, fmt), tuple(columns))


def _constant(query: str, name: str) -> str:
    value = getattr(thresholds, name, None)
    if not isinstance(value, int | float):
        raise ValueError(f"{query}: {{{{{name}}}}} is not a constant in dashboards.thresholds")
    return repr(float(value))


@cache
def all_queries() -> Mapping[str, Query]:
    return {
        p.stem: parse(p.stem, p.read_text(encoding="utf-8")) for p in sorted(SQL_DIR.glob("*.sql"))
    }


def get(name: str) -> Query:
    try:
        return all_queries()[name]
    except KeyError:
        raise KeyError(f"no dashboard query named {name!r} in {SQL_DIR}") from None


@dataclass(frozen=True, slots=True)
class Result:
    query: Query
    sql: str  # as expanded and run
    columns: tuple[str, ...]
    type_oids: tuple[int, ...]
    rows: list[tuple[Any, ...]]

    def dicts(self) -> list[dict[str, Any]]:
        return [dict(zip(self.columns, row, strict=True)) for row in self.rows]

    def column(self, name: str) -> list[Any]:
        i = self.columns.index(name)
        return [row[i] for row in self.rows]


def run(conn: Any, query: Query | str, ctx: Context) -> Result:
    """Expand ``query`` as Grafana would for ``ctx`` and run it on psycopg ``conn``.

    The expanded text is what Grafana itself sends, so it is executed verbatim
    (its only inputs are the query file and Grafana-style quoted variable values).
    """
    from psycopg import sql as pgsql

    q = get(query) if isinstance(query, str) else query
    text = expand(q.sql, ctx)
    with conn.cursor() as cur:
        cur.execute(pgsql.SQL(text))
        desc: Sequence[Any] = cur.description or ()
        rows = list(cur.fetchall())
    return Result(
        query=q,
        sql=text,
        columns=tuple(d.name for d in desc),
        type_oids=tuple(d.type_code for d in desc),
        rows=rows,
    )
