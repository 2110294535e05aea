"""``patient_note`` events: the contract, the JSON Schema and the sink's row agree."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from psycopg.types.json import Jsonb

from edge.contract import ContractError, validate_event
from storage.notes import note_event
from storage.rows import EVENT, event_row

SCHEMA = Draft202012Validator(
    json.loads((Path(__file__).parents[3] / "edge/schemas/event.json").read_text())
)
AT = dt.datetime(2026, 11, 2, 10, 30, tzinfo=dt.UTC)


def _note(**kw: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"phase": "after_session", "rpe": 6.0, "fatigue": 4.0}
    base.update(kw)
    return note_event("p1", "c1", "m1", AT, **base)


def test_a_note_passes_contract_and_schema_and_becomes_an_event_row() -> None:
    note = _note(symptoms="tingling left foot", relapse_suspected=True, recorded_by="pt1")
    validate_event(note)
    SCHEMA.validate(note)
    row = dict(zip(EVENT.names, event_row(note), strict=True))
    assert row["type"] == "patient_note"
    assert row["patient_id"] == "p1"
    assert row["ts_ns"] == int(AT.timestamp()) * 10**9
    assert isinstance(row["payload"], Jsonb)  # the object itself, not its JSON text
    assert row["payload"].obj == note
    assert row["payload"].obj["symptoms"] == "tingling left foot"


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"rpe": 11.0}, "out_of_range"),
        ({"fatigue": -1.0}, "out_of_range"),
        ({"phase": "during"}, "bad_field"),
        ({"symptoms": "x" * 600}, "bad_field"),
        ({"relapse_suspected": "yes"}, "bad_field"),
        ({"rpe": None, "fatigue": None}, "bad_field"),  # nothing recorded
        ({"mood": 3}, "unknown_field"),
    ],
)
def test_bad_notes_are_refused_by_contract_and_schema(change: dict[str, Any], reason: str) -> None:
    note = _note()
    for key, value in change.items():
        if value is None:
            note.pop(key, None)
        else:
            note[key] = value
    with pytest.raises(ContractError) as err:
        validate_event(note)
    assert err.value.reason == reason
    assert not SCHEMA.is_valid(note)
