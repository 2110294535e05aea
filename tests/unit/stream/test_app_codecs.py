"""Input decoding, output encoding and keys of the stream worker; the prescribe record."""

from __future__ import annotations

import json
import math

import pytest

from edge.contract import ContractError
from stream.app import codecs
from stream.prescribe import build_prescription


def frame() -> dict[str, object]:
    return {
        "v": 1,
        "clinic_id": "c1",
        "machine_id": "m1",
        "seq": 3,
        "session_id": None,
        "t0_ns": 1_763_900_000 * 10**9,
        "rate_hz": 100.0,
        "load_kg": 40.0,
        "position_mm": [100.0] * 10,
        "force_left_n": [200.0] * 10,
        "force_right_n": [None] * 10,
        "replayed": False,
    }


def test_decode_machine_input_validates_against_the_contract() -> None:
    raw = json.dumps(frame()).encode()
    kind = [("kind", b"telemetry")]
    assert codecs.decode_machine_input(raw, kind) == ("telemetry", frame())
    assert codecs.decode_machine_input(raw, None)[1]["seq"] == 3  # kind from the fields
    with pytest.raises(ContractError) as bad:
        codecs.decode_machine_input(json.dumps({**frame(), "rate_hz": 0}).encode(), kind)
    assert bad.value.reason == "out_of_range"
    with pytest.raises(ContractError) as broken:
        codecs.decode_machine_input(b"{nope", kind)
    assert broken.value.reason == "malformed_json"
    with pytest.raises(ContractError):
        codecs.decode_machine_input(None, [("kind", b"event")])
    with pytest.raises(ContractError) as odd:
        codecs.decode_machine_input(raw, [("kind", b"config")])
    assert odd.value.reason == "unknown_kind"
    assert codecs.received_at_ns([("received_at_ns", b"123")]) == 123
    assert codecs.received_at_ns([("received_at_ns", b"x")]) is None


def test_output_keys_and_encoding() -> None:
    assert codecs.record_key({"kind": "rep", "machine_id": "m1"}) == b"m1"
    assert codecs.record_key({"kind": "adherence", "patient_id": "p1"}) == b"p1"
    assert codecs.record_key({"kind": "alert", "subject_id": "p2"}) == b"p2"
    record = {"kind": "rep", "machine_id": "m1", "emitted_at_ns": 0}
    assert json.loads(codecs.encode_record(record, 42))["emitted_at_ns"] == 42
    with pytest.raises(ValueError, match="Out of range"):
        codecs.encode_record({"kind": "rep", "mcv_ms": math.nan})


def test_dead_letter_carries_the_original_bytes() -> None:
    raw = json.loads(codecs.dead_letter("t.sledfleet.telemetry", b"{x", ContractError("r", "d")))
    assert (raw["source"], raw["origin"], raw["reason"], raw["payload_size"]) == (
        "stream",
        "t.sledfleet.telemetry",
        "r",
        2,
    )


def test_prescription_record_and_its_checks() -> None:
    rx = build_prescription(
        patient_id="p1",
        clinic_id="c1",
        sessions_per_week=3,
        sets=3,
        reps=8,
        load_kg=60,
        max_velocity_loss_pct=20,
        start_date="2026-11-02",
    )
    assert rx["prescription_id"] == "rx-p1-2026-11-02"
    assert rx["kind"] == "prescription"
    assert rx["end_date"] is None
    with pytest.raises(ValueError, match="before start"):
        build_prescription(
            patient_id="p1",
            clinic_id="c1",
            sessions_per_week=3,
            sets=3,
            reps=8,
            load_kg=60,
            max_velocity_loss_pct=20,
            start_date="2026-11-02",
            end_date="2026-11-01",
        )
    with pytest.raises(ContractError):
        build_prescription(
            patient_id="p 1",
            clinic_id="c1",
            sessions_per_week=3,
            sets=3,
            reps=8,
            load_kg=60,
            max_velocity_loss_pct=20,
            start_date="2026-11-02",
        )
