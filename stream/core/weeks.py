"""Clinic-local calendar arithmetic: days and ISO weeks in an IANA time zone (pure).

Every calendar question (which day, which ISO week, when does a day start) is answered in
the clinic's zone (``sledfleet.clinics.time_zone``, default ``UTC``). Days are local
dates; a day starts at its first local instant, which around a DST change is not always
00:00 and lasts 23 or 25 hours, so day and week boundaries are computed through
``zoneinfo``, never by adding multiples of 86,400 s to a UTC midnight.
"""

from __future__ import annotations

import datetime as dt

from stream.zones import UTC_NAME, check_zone, zone

__all__ = ["UTC_NAME", "check_zone", "zone"]  # re-exported for the core's callers

WEEK_NS = 7 * 86_400 * 1_000_000_000
"""Seven days of elapsed time: for durations (baselines), never for calendar weeks."""


def day_of(ns: int, tz: str = UTC_NAME) -> dt.date:
    """The local date in zone ``tz`` of the instant ``ns`` (epoch nanoseconds)."""
    return dt.datetime.fromtimestamp(ns // 1_000_000_000, zone(tz)).date()


def monday_of(day: dt.date) -> dt.date:
    return day - dt.timedelta(days=day.weekday())


def iso_week(monday: dt.date) -> str:
    year, week, _ = monday.isocalendar()
    return f"{year}-W{week:02d}"


def midnight_ns(day: dt.date, tz: str = UTC_NAME) -> int:
    """The first instant of local date ``day`` in zone ``tz``, in epoch ns.

    Where a DST change skips local midnight (e.g. America/Santiago), the day starts at
    the first local time that exists; where it repeats, at the earlier one."""
    local = dt.datetime(day.year, day.month, day.day, tzinfo=zone(tz))
    # fold=0 (PEP 495): in a gap 00:00 takes the offset before it, which is the instant
    # the gap ends; in a repeat, the first of the two
    return int(local.timestamp()) * 1_000_000_000


def calendar_days(since_ns: int, until_ns: int, tz: str = UTC_NAME) -> int:
    """Local dates from ``since_ns`` to ``until_ns`` in zone ``tz`` (Monday evening →
    next Monday morning = 7), whatever the hours in between (DST days have 23 or 25)."""
    return (day_of(until_ns, tz) - day_of(since_ns, tz)).days


def weeks_between(first: dt.date, last: dt.date) -> list[dt.date]:
    """Mondays from the week of ``first`` through the week of ``last``."""
    m, end = monday_of(first), monday_of(last)
    out = []
    while m <= end:
        out.append(m)
        m += dt.timedelta(days=7)
    return out
