"""Which clinic a parsed row claims, and when that contradicts the registry (no network)."""

from __future__ import annotations

from edge.contract import encode
from storage.routing import RECORD_TOPICS, Parsed, claims, foreign, parse, topics
from tests.unit.storage.test_rows import rep

PARSERS = topics("", frames=True, events=True, state=True, dead_letters=True)


def _rep(**changes: object) -> Parsed:
    return parse(PARSERS[RECORD_TOPICS[0]], encode({**rep(), **changes}))


def test_claims_and_foreign() -> None:
    parsed = _rep(clinic_id="c1", machine_id="m1", patient_id="p1")
    assert claims(parsed) == ("c1", "m1", "p1")
    assert foreign(parsed, {}, {}) is None
    assert foreign(parsed, {"m1": "c1"}, {"p1": "c1"}) is None
    why = foreign(parsed, {"m1": "c2"}, {})
    assert why == "machine m1 is registered to clinic c2, not c1"
    why = foreign(parsed, {"m1": "c1"}, {"p1": "c9"})
    assert why == "patient p1 is registered to clinic c9, not c1"


def test_state_rows_claim_their_machine() -> None:
    raw = encode({"v": 1, "clinic_id": "c1", "machine_id": "m1", "status": "offline"})
    parsed = parse(PARSERS["sledfleet.state"], raw)
    assert claims(parsed) == ("c1", "m1", None)
    assert foreign(parsed, {"m1": "c2"}, {}) is not None
