"""IANA time zones by name (stdlib only: importable by storage without the stream core).

Clinics keep local calendars: ``sledfleet.clinics.time_zone`` names an IANA zone, ``UTC``
when none is configured. Python's ``zoneinfo`` reads the system tz database, or the
``tzdata`` package where the system has none (slim containers).
"""

from __future__ import annotations

from functools import cache
from typing import Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

UTC_NAME: Final = "UTC"
"""The zone of a clinic that has none configured (and of an unknown clinic)."""
MAX_NAME: Final = 64


@cache
def zone(name: str) -> ZoneInfo:
    """The IANA zone ``name``; raises ValueError for a name the tz database lacks."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown IANA time zone {name!r}") from exc


def check_zone(name: object) -> str:
    """``name`` when it is a known IANA zone name, else ValueError."""
    if not isinstance(name, str) or not name or len(name) > MAX_NAME:
        raise ValueError(f"time zone must be an IANA name like Europe/Berlin, not {name!r}")
    zone(name)
    return name
