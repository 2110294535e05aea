"""Field checks for records read from Kafka (pure): each returns the value to store or
raises ``ContractError`` with a stable reason. Used by storage/rows.py's table specs."""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Callable
from typing import Any, Final

from edge.contract import ID_PATTERN, TS_NS_RANGE, ContractError
from stream.zones import check_zone

MAX_TEXT: Final = 2000
"""Longest free text stored (alert messages, fault details); longer is truncated."""
I64: Final = 2**63 - 1
I32: Final = 2**31 - 1
_ISO_WEEK: Final = re.compile(r"^\d{4}-W\d{2}$")

Check = Callable[[str, Any], Any]


def _id(field: str, v: Any) -> str:
    if not isinstance(v, str) or not ID_PATTERN.match(v):
        raise ContractError("bad_id", f"{field} must match {ID_PATTERN.pattern}")
    return v


def _opt(check: Check) -> Check:
    def run(field: str, v: Any) -> Any:
        return None if v is None else check(field, v)

    return run


def _int(lo: int, hi: int) -> Check:
    def run(field: str, v: Any) -> int:
        if not isinstance(v, int) or isinstance(v, bool):
            raise ContractError("bad_field", f"{field} must be an integer")
        if not lo <= v <= hi:
            raise ContractError("out_of_range", f"{field}={v} outside [{lo}, {hi}]")
        return v

    return run


def _float(field: str, v: Any) -> float:
    if not isinstance(v, int | float) or isinstance(v, bool):
        raise ContractError("bad_field", f"{field} must be a number")
    f = float(v)
    if not math.isfinite(f):
        raise ContractError("non_finite", f"{field} is not finite")
    return f


def _bool(field: str, v: Any) -> bool:
    if not isinstance(v, bool):
        raise ContractError("bad_field", f"{field} must be a boolean")
    return v


def _text(field: str, v: Any) -> str:
    if not isinstance(v, str):
        raise ContractError("bad_field", f"{field} must be a string")
    if "\x00" in v:
        raise ContractError("bad_field", f"{field} contains a NUL character")
    return v[:MAX_TEXT]


def _enum(*allowed: str) -> Check:
    def run(field: str, v: Any) -> str:
        if v not in allowed:
            raise ContractError("bad_field", f"{field} must be one of {', '.join(allowed)}")
        return str(v)

    return run


def _date(field: str, v: Any) -> dt.date:
    if not isinstance(v, str) or len(v) != 10:
        raise ContractError("bad_field", f"{field} must be an ISO date")
    try:
        return dt.date.fromisoformat(v)
    except ValueError as exc:
        raise ContractError("bad_field", f"{field} must be an ISO date") from exc


def _iso_week(field: str, v: Any) -> str:
    if not isinstance(v, str) or not _ISO_WEEK.match(v):
        raise ContractError("bad_field", f"{field} must look like 2026-W47")
    return v


def _time_zone(field: str, v: Any) -> str:
    """An IANA zone name the tz database knows (the clinic calendar of a record)."""
    try:
        return check_zone(v)
    except ValueError as exc:
        raise ContractError("bad_field", f"{field}: {exc}") from exc


NS = _int(*TS_NS_RANGE)
INT = _int(0, I32)
BIG = _int(0, I64)
VERSION = _int(0, 2**32 - 1)
ID, OPT_ID = _id, _opt(_id)
FLOAT, OPT_FLOAT = _float, _opt(_float)
BOOL, OPT_BOOL = _bool, _opt(_bool)
OPT_TEXT = _opt(_text)

# public names for the table specs
DATE, ISO_WEEK, TEXT, TIME_ZONE = _date, _iso_week, _text, _time_zone
optional, enum = _opt, _enum
