"""Grafana's PostgreSQL macro and variable expansion, as INFRA.md and Grafana's source describe."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from dashboards.macros import (
    ALL,
    Context,
    MacroError,
    TimeRange,
    Variable,
    expand,
    expand_macros,
    go_float,
    interpolate_variables,
    parse_interval,
    rfc3339nano,
)

START = datetime(2026, 11, 16, 8, 30, tzinfo=UTC)
END = datetime(2026, 11, 23, 8, 30, 15, 250000, tzinfo=UTC)
CTX = Context(TimeRange(START, END))
TS = Context(TimeRange(START, END), timescaledb=True)


def test_time_filter_is_between_utc_rfc3339_with_trimmed_fraction() -> None:
    assert expand_macros("WHERE $__timeFilter(ts)", CTX) == (
        "WHERE ts BETWEEN '2026-11-16T08:30:00Z' AND '2026-11-23T08:30:15.25Z'"
    )


def test_time_filter_converts_other_zones_to_utc() -> None:
    plus2 = datetime(2026, 1, 1, 2, 0, tzinfo=UTC).astimezone(timezone(timedelta(hours=2)))
    ctx = Context(TimeRange(plus2, plus2))
    assert "'2026-01-01T02:00:00Z'" in expand_macros("$__timeFilter(t)", ctx)


def test_time_from_to_and_time_alias() -> None:
    out = expand_macros("SELECT $__time(ts), $__timeFrom(), $__timeTo()", CTX)
    assert out == "SELECT ts AS \"time\", '2026-11-16T08:30:00Z', '2026-11-23T08:30:15.25Z'"
    assert expand_macros("$__timeEpoch(ts)", CTX) == 'extract(epoch from ts) as "time"'


def test_time_group_plain_and_timescaledb() -> None:
    assert expand_macros("GROUP BY $__timeGroup(ts, '5m')", CTX) == (
        "GROUP BY floor(extract(epoch from ts)/300)*300"
    )
    assert expand_macros("GROUP BY $__timeGroup(ts, '5m')", TS) == (
        "GROUP BY time_bucket('300.000s',ts)"
    )
    assert expand_macros("$__timeGroupAlias(ts,1h)", CTX) == (
        'floor(extract(epoch from ts)/3600)*3600 AS "time"'
    )


def test_time_group_followed_by_comma_gets_the_alias_like_grafana() -> None:
    out = expand_macros("SELECT $__timeGroup(ts,'1d'), x FROM t", CTX)
    assert out == 'SELECT floor(extract(epoch from ts)/86400)*86400 AS "time", x FROM t'


def test_go_float_formatting_of_bucket_widths() -> None:
    assert [go_float(x) for x in (300, 604800, 1209600, 0.5, 1e6)] == [
        "300",
        "604800",
        "1.2096e+06",
        "0.5",
        "1e+06",
    ]
    two_weeks = expand_macros("$__timeGroup(ts,2w)", CTX)
    assert two_weeks == "floor(extract(epoch from ts)/1.2096e+06)*1.2096e+06"


def test_unix_epoch_macros_and_interval_replacement() -> None:
    ctx = Context(TimeRange(START, END), interval=timedelta(minutes=5))
    out = expand_macros(
        "$__unixEpochFilter(t) $__unixEpochNanoFrom() $__unixEpochFrom() $__interval_ms "
        "$__interval",
        ctx,
    )
    s = int(START.timestamp())
    assert out == (f"t >= {s} AND t <= {int(END.timestamp())} {s * 10**9} {s} 300000 5m")
    assert expand_macros("$__unixEpochGroup(t, 1h)", CTX) == "floor((t)/3600)*3600"


def test_undefined_macro_and_bad_interval_are_errors() -> None:
    with pytest.raises(MacroError, match="undefined macro"):
        expand_macros("$__nope(x)", CTX)
    with pytest.raises(MacroError, match="interval"):
        expand_macros("$__timeGroup(ts, 'soon')", CTX)
    with pytest.raises(MacroError):
        expand_macros("$__timeGroup(ts)", CTX)
    assert parse_interval("'90s'") == timedelta(seconds=90)


def test_rfc3339nano_matches_go() -> None:
    assert rfc3339nano(datetime(2026, 1, 2, 3, 4, 5, 120, tzinfo=UTC)) == (
        "2026-01-02T03:04:05.00012Z"
    )


SINGLE = Variable("patient", "o'brien")
MULTI = Variable("clinic", ["a", "b'c"], multi=True, include_all=True, options=["a", "b'c", "d"])


def test_single_value_variable_is_unquoted_with_quotes_doubled() -> None:
    assert interpolate_variables("p = '$patient'", [SINGLE]) == "p = 'o''brien'"
    assert interpolate_variables("p = '${patient}' [[patient]]", [SINGLE]) == (
        "p = 'o''brien' o''brien"
    )


def test_multi_value_variable_becomes_quoted_list() -> None:
    assert interpolate_variables("c IN ($clinic)", [MULTI]) == "c IN ('a','b''c')"


def test_multi_or_all_variable_with_one_value_is_still_quoted() -> None:
    one = Variable("clinic", "a", multi=True, include_all=True, options=["a"])
    assert interpolate_variables("c IN ($clinic)", [one]) == "c IN ('a')"


def test_all_expands_to_every_option_or_the_custom_all_value() -> None:
    all_ = Variable("clinic", [ALL], multi=True, include_all=True, options=["a", "b"])
    assert interpolate_variables("IN ($clinic)", [all_]) == "IN ('a','b')"
    custom = Variable("clinic", ALL, include_all=True, options=["a"], all_value=".*")
    assert interpolate_variables("~ '$clinic'", [custom]) == "~ '.*'"


def test_formats_and_unknown_names() -> None:
    assert interpolate_variables("${clinic:csv}", [MULTI]) == "a,b'c"
    assert interpolate_variables("${clinic:sqlstring}", [MULTI]) == "'a','b''c'"
    assert interpolate_variables("$other $__timeFilter(ts)", [MULTI]) == (
        "$other $__timeFilter(ts)"
    )
    with pytest.raises(MacroError):
        interpolate_variables("${clinic:nope}", [MULTI])


def test_expand_runs_variables_then_macros() -> None:
    ctx = Context(TimeRange(START, END), variables=[MULTI])
    assert expand("WHERE c IN ($clinic) AND $__timeFilter(ts)", ctx) == (
        "WHERE c IN ('a','b''c') AND ts BETWEEN '2026-11-16T08:30:00Z' AND "
        "'2026-11-23T08:30:15.25Z'"
    )


def test_time_range_needs_aware_datetimes() -> None:
    with pytest.raises(ValueError):
        TimeRange(datetime(2026, 1, 1), END)
