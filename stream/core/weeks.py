"""ISO-week arithmetic on UTC event time (pure)."""

from __future__ import annotations

import datetime as dt

UTC = dt.UTC
WEEK_NS = 7 * 86_400 * 1_000_000_000


def day_of(ns: int) -> dt.date:
    return dt.datetime.fromtimestamp(ns / 1e9, UTC).date()


def monday_of(day: dt.date) -> dt.date:
    return day - dt.timedelta(days=day.weekday())


def iso_week(monday: dt.date) -> str:
    year, week, _ = monday.isocalendar()
    return f"{year}-W{week:02d}"


def monday_ns(monday: dt.date) -> int:
    """Midnight UTC of ``monday`` (any date, in fact) in epoch ns."""
    return int(dt.datetime(monday.year, monday.month, monday.day, tzinfo=UTC).timestamp()) * 10**9


def weeks_between(first: dt.date, last: dt.date) -> list[dt.date]:
    """Mondays from the week of ``first`` through the week of ``last``."""
    m, end = monday_of(first), monday_of(last)
    out = []
    while m <= end:
        out.append(m)
        m += dt.timedelta(days=7)
    return out
