"""Expand a panel's SQL the way Grafana 11.6 does before PostgreSQL sees it.

Two stages, in Grafana's order:

1. **Template variables** (frontend ``templateSrv.replace`` with the SQL datasource's
   ``interpolateVariable``): ``$var``, ``${var}``, ``${var:format}`` and ``[[var]]``.
   A string value of a variable that is neither multi-value nor include-All is inserted
   *unquoted* with ``'`` doubled (so the SQL writes ``'$var'``); a multi-value or
   include-All variable becomes a comma-separated list of quoted literals
   (``'a','b'``, so the SQL writes ``IN ($var)``), even when one value is selected.
   "All" without a custom all-value expands to every option's value. Unknown names
   (including Grafana's ``$__`` macros) are left untouched.
2. **Backend macros** (``pkg/tsdb/grafana-postgresql-datasource/macros.go`` and
   ``sqleng.Interpolate``): ``$__interval_ms``, ``$__interval``, ``$__unixEpochFrom()``,
   ``$__unixEpochTo()`` by plain replacement, then every ``$__name(args)`` match of
   ``\\$([_a-zA-Z0-9]+)\\(([^\\)]*)\\)``: ``$__time``, ``$__timeEpoch``,
   ``$__timeFilter`` (``c BETWEEN '<from>' AND '<to>'``, UTC RFC 3339 with nanoseconds
   trimmed as Go does), ``$__timeFrom``, ``$__timeTo``, ``$__timeGroup`` (``floor(extract
   (epoch from c)/N)*N`` or ``time_bucket('N.000s',c)`` when the datasource has
   ``timescaledb: true``), ``$__timeGroupAlias``, ``$__unixEpochFilter``,
   ``$__unixEpochNanoFilter``, ``$__unixEpochNanoFrom``, ``$__unixEpochNanoTo``,
   ``$__unixEpochGroup`` and ``$__unixEpochGroupAlias``. As in Grafana, a
   ``$__timeGroup(...)`` directly followed by ``,`` gets the ``AS "time"`` alias, and the
   regex also matches inside SQL comments (keep macros out of comments).

Pure computation: no Grafana, no database.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal

ALL = "$__all"
"""The value Grafana stores for the "All" option of an include-All variable."""


class MacroError(ValueError):
    """A macro Grafana would refuse (unknown name, missing argument, bad interval)."""


@dataclass(frozen=True, slots=True)
class Variable:
    """One template variable as the dashboard defines it, with its current selection.

    ``current`` is a string for a single selection, a list for a multi selection,
    or ``[ALL]`` / ``ALL`` for the All option; ``options`` are the values the
    variable query returned (what "All" expands to).
    """

    name: str
    current: str | Sequence[str]
    multi: bool = False
    include_all: bool = False
    options: Sequence[str] = ()
    all_value: str | None = None


@dataclass(frozen=True, slots=True)
class TimeRange:
    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise ValueError("TimeRange needs timezone-aware datetimes")

    @classmethod
    def last(cls, span: timedelta, now: datetime | None = None) -> TimeRange:
        end = now or datetime.now(UTC)
        return cls(end - span, end)


@dataclass(frozen=True, slots=True)
class Context:
    """Everything that decides how a query expands."""

    time_range: TimeRange
    variables: Sequence[Variable] = ()
    interval: timedelta = timedelta(minutes=1)
    timescaledb: bool = False
    scoped: Mapping[str, str] = field(default_factory=dict)


# --- stage 1: template variables -----------------------------------------------------

# templateSrv's variableRegex (public/app/features/variables/utils.ts)
_VARIABLE_RE = re.compile(
    r"\$(\w+)|\[\[(\w+?)(?::(\w+))?\]\]|\$\{(\w+)(?:\.([^:^\}]+))?(?::([^\}]+))?\}"
)


def _quote_literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _sql_format(value: str | list[str], var: Variable) -> str:
    """The PostgreSQL datasource's ``interpolateVariable``."""
    if isinstance(value, str):
        if var.multi or var.include_all:
            return _quote_literal(value)
        return value.replace("'", "''")
    return ",".join(_quote_literal(v) for v in value)


_FORMATS: dict[str, Callable[[str | list[str]], str]] = {
    "raw": lambda v: v if isinstance(v, str) else ",".join(v),
    "csv": lambda v: v if isinstance(v, str) else ",".join(v),
    "sqlstring": lambda v: ",".join(_quote_literal(x) for x in ([v] if isinstance(v, str) else v)),
    "singlequote": lambda v: ",".join(
        "'" + x.replace("'", "\\'") + "'" for x in ([v] if isinstance(v, str) else v)
    ),
}


def _selected(var: Variable) -> tuple[str | list[str], bool]:
    """(value, is_custom_all) for the variable's current selection."""
    current = var.current
    values = [current] if isinstance(current, str) else list(current)
    if ALL in values:
        if not var.include_all:
            raise MacroError(f"variable {var.name!r} has no All option")
        if var.all_value is not None:
            return var.all_value, True
        return list(var.options), False
    if isinstance(current, str):
        return current, False
    return values, False


def interpolate_variables(sql: str, variables: Sequence[Variable]) -> str:
    by_name = {v.name: v for v in variables}

    def repl(m: re.Match[str]) -> str:
        name = m.group(1) or m.group(2) or m.group(4)
        fmt = m.group(3) or m.group(6)
        var = by_name.get(name)
        if var is None:
            return m.group(0)
        value, custom_all = _selected(var)
        if custom_all and fmt not in ("text", "percentencode"):
            return str(value)  # Grafana inserts a custom all-value unformatted
        if fmt is None:
            return _sql_format(value, var)
        try:
            return _FORMATS[fmt](value)
        except KeyError:
            raise MacroError(f"unsupported variable format {fmt!r}") from None

    return _VARIABLE_RE.sub(repl, sql)


# --- stage 2: backend macros ---------------------------------------------------------

_MACRO_RE = re.compile(r"\$([_a-zA-Z0-9]+)\(([^\)]*)\)")
_INTERVAL_RE = re.compile(r"^(\d+(?:\.\d+)?)(ms|s|m|h|d|w)$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_interval(text: str) -> timedelta:
    """gtime.ParseInterval for the fixed-width units (ms, s, m, h, d, w)."""
    m = _INTERVAL_RE.match(text.strip().strip("'"))
    if not m:
        raise MacroError(f"error parsing interval {text}")
    return timedelta(seconds=float(m.group(1)) * _UNIT_SECONDS[m.group(2)])


def go_float(x: float) -> str:
    """Go's ``fmt.Sprintf("%v", float64)`` (strconv 'g', shortest): ``%e`` when exp < -4 or >= 6.

    So a one-week bucket prints ``604800`` but a two-week one ``1.2096e+06``.
    """
    if not math.isfinite(x):
        raise MacroError("interval must be finite")
    if x == 0:
        return "0"
    shortest = Decimal(repr(abs(float(x))))  # Python's repr is the shortest round-trip too
    exp = shortest.adjusted()
    digits = "".join(map(str, shortest.as_tuple().digits)).rstrip("0") or "0"
    sign = "-" if x < 0 else ""
    if exp < -4 or exp >= 6:
        mant = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
        return f"{sign}{mant}e{'+' if exp >= 0 else '-'}{abs(exp):02d}"
    if float(x).is_integer():
        return str(int(x))
    return repr(float(x))


def rfc3339nano(dt: datetime) -> str:
    """Go's ``t.UTC().Format(time.RFC3339Nano)``: fraction without trailing zeros."""
    dt = dt.astimezone(UTC)
    base = dt.strftime("%Y-%m-%dT%H:%M:%S")
    if dt.microsecond:
        base += "." + f"{dt.microsecond:06d}".rstrip("0")
    return base + "Z"


def _epoch_s(dt: datetime) -> int:
    return math.floor(dt.timestamp())


def _epoch_ns(dt: datetime) -> int:
    delta = dt.astimezone(UTC) - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86400 + delta.seconds) * 10**9 + delta.microseconds * 1000


def _need(args: list[str], n: int, name: str) -> None:
    if len(args) < n or not args[0]:
        raise MacroError(f"missing time column argument for macro {name}")


def _evaluate(name: str, args: list[str], ctx: Context) -> str:
    tr = ctx.time_range
    if name == "__time":
        _need(args, 1, name)
        return f'{args[0]} AS "time"'
    if name == "__timeEpoch":
        _need(args, 1, name)
        return f'extract(epoch from {args[0]}) as "time"'
    if name == "__timeFilter":
        _need(args, 1, name)
        return f"{args[0]} BETWEEN '{rfc3339nano(tr.start)}' AND '{rfc3339nano(tr.end)}'"
    if name == "__timeFrom":
        return f"'{rfc3339nano(tr.start)}'"
    if name == "__timeTo":
        return f"'{rfc3339nano(tr.end)}'"
    if name in ("__timeGroup", "__unixEpochGroup"):
        if len(args) < 2:
            raise MacroError(f"macro {name} needs time column and interval")
        seconds = parse_interval(args[1]).total_seconds()
        if name == "__unixEpochGroup":
            return f"floor(({args[0]})/{go_float(seconds)})*{go_float(seconds)}"
        if ctx.timescaledb:
            return f"time_bucket('{seconds:.3f}s',{args[0]})"
        return f"floor(extract(epoch from {args[0]})/{go_float(seconds)})*{go_float(seconds)}"
    if name in ("__timeGroupAlias", "__unixEpochGroupAlias"):
        return _evaluate(name.removesuffix("Alias"), args, ctx) + ' AS "time"'
    if name == "__unixEpochFilter":
        _need(args, 1, name)
        c = args[0]
        return f"{c} >= {_epoch_s(tr.start)} AND {c} <= {_epoch_s(tr.end)}"
    if name == "__unixEpochNanoFilter":
        _need(args, 1, name)
        c = args[0]
        return f"{c} >= {_epoch_ns(tr.start)} AND {c} <= {_epoch_ns(tr.end)}"
    if name == "__unixEpochNanoFrom":
        return str(_epoch_ns(tr.start))
    if name == "__unixEpochNanoTo":
        return str(_epoch_ns(tr.end))
    raise MacroError(f"undefined macro: ${name}")


def _format_interval(d: timedelta) -> str:
    """gtime.FormatInterval: the value in its largest whole unit, for ``$__interval``."""
    ms = round(d.total_seconds() * 1000)
    for unit, size in (
        ("y", 31_536_000_000),
        ("d", 86_400_000),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1000),
    ):
        if ms >= size:
            return f"{ms // size}{unit}"
    return f"{max(ms, 1)}ms"


def expand_macros(sql: str, ctx: Context) -> str:
    tr = ctx.time_range
    sql = sql.replace("$__interval_ms", str(round(ctx.interval.total_seconds() * 1000)))
    sql = sql.replace("$__interval", _format_interval(ctx.interval))
    sql = sql.replace("$__unixEpochFrom()", str(_epoch_s(tr.start)))
    sql = sql.replace("$__unixEpochTo()", str(_epoch_s(tr.end)))
    original = sql

    def repl(m: re.Match[str]) -> str:
        name = m.group(1)
        if name == "__timeGroup":
            index = original.find(m.group(0))
            if index >= 0:
                after = index + len(m.group(0))
                if after < len(original) and original[after] == ",":
                    name = "__timeGroupAlias"
        args = [a.strip(" ") for a in m.group(2).split(",")]
        return _evaluate(name, args, ctx)

    return _MACRO_RE.sub(repl, sql)


def expand(sql: str, ctx: Context) -> str:
    """Variables first (frontend), then macros (backend): the SQL PostgreSQL receives."""
    return expand_macros(interpolate_variables(sql, ctx.variables), ctx)
