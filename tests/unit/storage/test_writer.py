"""Pure helpers of the batch writer: time conversion, partition periods, registry rows."""

from __future__ import annotations

import datetime as dt

from storage.registry import clinic_weeks, latest_status
from storage.rows import ADHERENCE, record_row
from storage.synth import Fleet, machine_status, records
from storage.writer import _periods, ns_to_datetime

T = 1_763_900_000_123_456_789


def test_ns_to_datetime_truncates_to_microseconds_like_sql() -> None:
    got = ns_to_datetime(T)
    assert got == dt.datetime(2025, 11, 23, 12, 13, 20, 123456, tzinfo=dt.UTC)


def test_periods_span_years_and_days() -> None:
    day = 86_400 * 10**9
    assert _periods("year", T, T + 400 * day) == {(2025,), (2026,)}
    assert _periods("day", T, T + 2 * day) == {(2025, 11, 23), (2025, 11, 24), (2025, 11, 25)}


def test_latest_status_keeps_the_newest_report_per_machine() -> None:
    rows = [
        record_row(machine_status("c1", m, T + k, frames=k))[1]
        for m, k in [("m2", 1), ("m1", 5), ("m1", 3)]
    ]
    machines, ts_ns, *_rest, frames, _missing, _replayed, _dropped = latest_status(rows)
    assert machines == ["m1", "m2"]
    assert ts_ns == [T + 5, T + 1]
    assert frames == [5, 1]


def test_clinic_weeks_are_distinct_and_sorted() -> None:
    rows = [
        record_row(r)[1] for r in records(Fleet(clinics=2, weeks=2)) if r["kind"] == "adherence"
    ]
    clinics, weeks = clinic_weeks(rows)
    assert list(zip(clinics, weeks, strict=True)) == sorted(set(zip(clinics, weeks, strict=True)))
    assert len(clinics) == 4
    assert all(isinstance(w, dt.date) for w in weeks)
    assert ADHERENCE.conflict == ("patient_id", "iso_week")
