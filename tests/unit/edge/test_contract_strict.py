"""Strict payloads (issue #13, M3): fields outside the contract are refused with a reason,
personal data (names, birth dates, contact details) never passes, by the contract and by
the JSON Schemas alike."""

from __future__ import annotations

import json
import uuid
from importlib import resources
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from edge import contract

T0 = 1_763_900_000 * 10**9


def _schema(kind: str) -> Draft202012Validator:
    text = resources.files("edge").joinpath("schemas", f"{kind}.json").read_text()
    return Draft202012Validator(json.loads(text))


def session_started(**extra: Any) -> dict[str, Any]:
    return {
        "v": 1, "clinic_id": "c1", "machine_id": "m1", "type": "session_started",
        "event_id": str(uuid.uuid4()), "seq": 0, "ts_ns": T0, "session_id": "s1",
        "patient_id": "p1", "replayed": False, **extra,
    }  # fmt: skip


def telemetry(**extra: Any) -> dict[str, Any]:
    return {
        "v": 1, "clinic_id": "c1", "machine_id": "m1", "seq": 0, "session_id": None,
        "t0_ns": T0, "rate_hz": 100.0, "load_kg": 50.0, "position_mm": [1.0] * 10,
        "force_left_n": [1.0] * 10, "force_right_n": [1.0] * 10, "replayed": False, **extra,
    }  # fmt: skip


def _reason(kind: str, payload: dict[str, Any]) -> str:
    with pytest.raises(contract.ContractError) as info:
        contract.VALIDATORS[kind](payload)
    assert list(_schema(kind).iter_errors(payload)), "the JSON Schema accepted it"
    return info.value.reason


def test_valid_payloads_still_pass() -> None:
    contract.validate_event(session_started(setup={"seat_position": 40.0}))
    contract.validate_telemetry(telemetry())


@pytest.mark.parametrize(
    "field",
    ["patient_name", "date_of_birth", "dob", "name", "first_name", "Surname", "birthdate",
     "email", "phone_number", "home_address"],
)  # fmt: skip
def test_personal_data_fields_are_refused(field: str) -> None:
    assert _reason("event", session_started(**{field: "Jane Doe"})) == "personal_data"
    assert _reason("telemetry", telemetry(**{field: "x"})) == "personal_data"


def test_personal_data_inside_setup_is_refused() -> None:
    payload = session_started(setup={"seat_position": 40.0, "patient_name": "Jane"})
    assert _reason("event", payload) == "personal_data"


@pytest.mark.parametrize("field", ["notes", "x", "temperature", "load_kg"])
def test_unknown_fields_are_refused(field: str) -> None:
    assert _reason("event", session_started(**{field: 1})) == "unknown_field"


def test_a_field_of_another_event_type_is_refused() -> None:
    ended = {**session_started(), "type": "session_ended"}
    assert _reason("event", ended) == "unknown_field"  # patient_id belongs to session_started


def test_free_text_is_bounded() -> None:
    fault = {**session_started(), "type": "fault", "code": "X"}
    del fault["patient_id"]
    contract.validate_event({**fault, "detail": "d" * contract.MAX_FREE_TEXT_CHARS})
    assert _reason("event", {**fault, "detail": "d" * 513}) == "bad_field"


def test_every_event_type_lists_its_fields() -> None:
    assert set(contract.EVENT_FIELDS) == set(contract.EVENT_TYPES)


def _state(**extra: Any) -> dict[str, Any]:
    return {"v": 1, "clinic_id": "c1", "machine_id": "c1-m1", "status": "online",
            "ts_ns": 1_763_900_000 * 10**9, "rate_hz": 100.0, **extra}  # fmt: skip


def _config(**extra: Any) -> dict[str, Any]:
    return {"v": 1, "clinic_id": "c1", "machine_id": "c1-m1", "config_version": 2, **extra}


def test_state_and_config_are_strict_too() -> None:
    contract.validate_state(
        _state(outbox={"rows": 1, "bytes": 2, "dropped_frames": 0, "dropped_samples": 0},
               calibration={"usable_rom_mm": 400.0}, config_error=None)
    )  # fmt: skip
    contract.validate_config(_config(calibration={"usable_rom_mm": 400.0}))
    assert _reason("state", _state(temperature=20)) == "unknown_field"
    assert _reason("state", _state(patient_name="Jane")) == "personal_data"
    assert _reason("state", _state(framing={"runt_samples": 0, "owner_email": "x"})) == (
        "personal_data"
    )
    assert _reason("state", _state(outbox={"rows": 1, "extra": 2})) == "unknown_field"
    assert _reason("state", _state(config_error="e" * 513)) == "bad_field"
    assert _reason("config", _config(notes="x")) == "unknown_field"
    assert _reason("config", _config(calibration={"patient_name": "Jane"})) == "personal_data"
    assert _reason("config", _config(calibration=[1])) == "bad_field"
