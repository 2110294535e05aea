"""The clinics topic's records and the worker's clinic → zone directory (no network)."""

from __future__ import annotations

import json

import pytest

from edge import contract
from edge.contract import ContractError
from stream.app.clinics import ClinicDirectory
from stream.clinic_zones import build, parse


def raw(
    clinic: str = "c1", tz: object = "Australia/Sydney", at: object = 5, v: object = 1
) -> bytes:
    return json.dumps({"v": v, "clinic_id": clinic, "time_zone": tz, "updated_at_ns": at}).encode()


def test_build_and_parse_round_trip() -> None:
    rec = build("c1", "Europe/Berlin", 7)
    assert parse(b"c1", contract.encode(rec)) == rec
    with pytest.raises(ValueError):
        build("c1", "Europe/Atlantis", 7)
    with pytest.raises(ValueError):
        build("c 1", "UTC", 7)


@pytest.mark.parametrize(
    ("key", "value", "reason"),
    [
        (b"c1", raw(tz="Mars/Base"), "bad_field"),
        (b"c1", raw(tz=None), "bad_field"),
        (b"c1", raw(at=-1), "bad_field"),
        (b"c1", raw(at="soon"), "bad_field"),
        (b"c1", raw(v=9), "bad_version"),
        (b"c2", raw(), "bad_key"),
        (b"c1", b"[1, 2]", "not_an_object"),
        (b"c1", b"{not json", None),
    ],
)
def test_bad_records_are_refused_with_a_reason(
    key: bytes, value: bytes, reason: str | None
) -> None:
    with pytest.raises(ContractError) as info:
        parse(key, value)
    if reason is not None:
        assert info.value.reason == reason


def test_directory_defaults_to_utc_and_keeps_the_latest_change() -> None:
    d = ClinicDirectory(["kafka.example:9092"], "t.sledfleet.clinics")
    assert d.zone_of("c1") == "UTC"  # unknown clinic
    assert d.apply(b"c1", raw(tz="Australia/Sydney", at=10)) is None
    assert d.zone_of("c1") == "Australia/Sydney"
    d.apply(b"c1", raw(tz="Europe/Berlin", at=5))  # an older change arriving later: ignored
    assert d.zone_of("c1") == "Australia/Sydney"
    d.apply(b"c1", raw(tz="America/Los_Angeles", at=11))
    assert d.zone_of("c1") == "America/Los_Angeles"
    bad = d.apply(b"c1", raw(tz="Nowhere"))
    assert bad is not None
    assert bad[1].reason == "bad_field"
    assert d.zone_of("c1") == "America/Los_Angeles"  # a bad record changes nothing
    d.apply(b"c1", None)  # tombstone: forgotten, back to UTC
    assert d.zone_of("c1") == "UTC"
    assert d.read == 5
