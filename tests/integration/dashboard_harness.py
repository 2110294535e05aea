"""Run every dashboard's panel and variable queries the way Grafana would.

For each dashboard: resolve its template variables in order (each variable query expanded
with the selections of the variables before it, as Grafana chains them), then expand every
panel target for a selection mode (single value, several values, All) and a time range,
run it as the datasource's database role, and check the result against the query's
declared columns and types.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from dashboards import queries
from dashboards.macros import ALL, Context, TimeRange, Variable

Mode = Literal["single", "multi", "all"]
MODES: tuple[Mode, ...] = ("single", "multi", "all")

# PostgreSQL type OIDs per declared kind
NUMERIC_OIDS = {20, 21, 23, 700, 701, 1700}
KIND_OIDS: dict[str, set[int]] = {
    "time": {1184, 1114},
    "timegroup": {1184, 1114} | NUMERIC_OIDS,
    "num": NUMERIC_OIDS,
    "text": {25, 1043, 19},
    "bool": {16},
    "date": {1082},
}


def time_ranges(now: datetime) -> dict[str, TimeRange]:
    return {
        "24h": TimeRange.last(timedelta(hours=24), now),
        "7d": TimeRange.last(timedelta(days=7), now),
        "13w": TimeRange.last(timedelta(weeks=13), now),
        "future": TimeRange(now + timedelta(days=30), now + timedelta(days=60)),
    }


WIDE = "13w"


@dataclass(frozen=True)
class Target:
    dashboard: str
    panel: str
    query: queries.Query


def targets(model: dict[str, Any]) -> Iterator[Target]:
    by_sql = {q.sql: q for q in queries.all_queries().values()}
    for p in model["panels"]:
        for panel in [p, *p.get("panels", [])]:
            for t in panel.get("targets", []):
                yield Target(model["uid"], panel["title"], by_sql[t["rawSql"]])


def variable_queries(model: dict[str, Any]) -> list[tuple[dict[str, Any], queries.Query]]:
    by_sql = {q.sql: q for q in queries.all_queries().values()}
    return [(v, by_sql[v["query"]]) for v in model["templating"]["list"]]


def resolve_variables(
    conn: Any,
    model: dict[str, Any],
    mode: Mode,
    tr: TimeRange,
    timescaledb: bool,
    only: Mapping[str, Collection[str]] | None = None,
) -> list[Variable]:
    """Run each variable query (chained) and select values for ``mode``. ``only`` keeps a
    variable's options to the given values (a shared database holding other tests' clinics
    stands in for a datasource that sees just these)."""
    resolved: list[Variable] = []
    for v, q in variable_queries(model):
        result = queries.run(conn, q, Context(tr, resolved, timescaledb=timescaledb))
        check(result)
        col = "__value" if "__value" in result.columns else result.columns[0]
        options = [str(x) for x in result.column(col)]
        if only and v["name"] in only:
            options = [o for o in options if o in only[v["name"]]]
        assert options, f"{model['uid']}: variable {v['name']} has no options"
        multi, include_all = bool(v.get("multi")), bool(v.get("includeAll"))
        current: str | list[str]
        if mode == "all" and include_all:
            current = [ALL]
        elif mode == "multi" and multi:
            current = options[:2]
        else:
            current = options[0]
        resolved.append(Variable(v["name"], current, multi, include_all, options))
    return resolved


def check(result: queries.Result) -> None:
    q = result.query
    assert result.columns == q.column_names, (q.name, result.columns)
    for (name, kind), oid in zip(q.columns, result.type_oids, strict=True):
        assert oid in KIND_OIDS[kind], f"{q.name}.{name}: type oid {oid} is not {kind}"
    if q.format == "time_series" and result.rows:
        times = [_as_time(t) for t in result.column("time")]
        assert times == sorted(times), f"{q.name}: time series not sorted by time"


def _as_time(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value
    return datetime.fromtimestamp(float(value), UTC)


def run_dashboard(
    conn: Any,
    model: dict[str, Any],
    now: datetime,
    timescaledb: bool,
    modes: Sequence[Mode] = MODES,
    only: Mapping[str, Collection[str]] | None = None,
) -> dict[tuple[str, Mode, str], queries.Result]:
    """Every panel query of ``model`` for every mode and time range."""
    out: dict[tuple[str, Mode, str], queries.Result] = {}
    for mode in modes:
        for label, tr in time_ranges(now).items():
            variables = resolve_variables(conn, model, mode, tr, timescaledb, only)
            ctx = Context(tr, variables, timescaledb=timescaledb)
            for t in targets(model):
                result = queries.run(conn, t.query, ctx)
                check(result)
                out[(t.panel, mode, label)] = result
    return out
