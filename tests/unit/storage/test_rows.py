"""Record validation, dedup and upsert SQL (pure)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from edge.contract import ContractError, encode
from storage.registry import registry_of
from storage.routing import parse, topics
from storage.rows import ALL_SPECS, REP, SESSION, dedup, record_row, state_row
from storage.writer import Batch, upsert_sql
from stream.records import NATURAL_KEYS

T0 = 1_763_900_000 * 10**9


def rep(**over: Any) -> dict[str, Any]:
    r: dict[str, Any] = {
        "v": 1,
        "kind": "rep",
        "clinic_id": "c1",
        "machine_id": "m1",
        "patient_id": "p1",
        "session_id": "s1",
        "set_no": 1,
        "rep_no": 1,
        "valid": True,
        "start_ns": T0,
        "top_ns": T0 + 10**9,
        "end_ns": T0 + 2 * 10**9,
        "load_kg": 50,
        "rom_mm": 400.0,
        "concentric_s": 1.0,
        "eccentric_s": 1.0,
        "tut_s": 2.0,
        "mcv_ms": 0.4,
        "mpv_ms": 0.45,
        "pv_ms": 0.7,
        "time_to_pv_s": 0.4,
        "pv_position_pct": 40.0,
        "mean_force_n": 900.0,
        "peak_force_n": 1200.0,
        "mean_power_w": 300.0,
        "peak_power_w": 500.0,
        "work_j": 360.0,
        "asi_pct": None,
        "weaker_side": None,
        "sign_changes": 1,
        "jerk_score": 3.0,
        "dropout_samples": 0,
        "replayed": False,
        "emitted_at_ns": T0,
    }
    r.update(over)
    return r


def test_valid_rep_becomes_a_row_in_spec_order() -> None:
    spec, row = record_row(rep())
    assert spec is REP
    assert len(row) == len(REP.columns)
    assert row[REP.names.index("load_kg")] == 50.0
    assert isinstance(row[REP.names.index("load_kg")], float)


@pytest.mark.parametrize(
    ("over", "reason"),
    [
        ({"v": 2}, "unknown_version"),
        ({"v": True}, "unknown_version"),
        ({"kind": "nope"}, "unknown_kind"),
        ({"clinic_id": "c1'; DROP TABLE reps; --"}, "bad_id"),
        ({"machine_id": "m/1"}, "bad_id"),
        ({"set_no": "1"}, "bad_field"),
        ({"set_no": True}, "bad_field"),
        ({"set_no": 2**40}, "out_of_range"),
        ({"start_ns": 5}, "out_of_range"),
        ({"load_kg": "heavy"}, "bad_field"),
        ({"valid": 1}, "bad_field"),
        ({"weaker_side": "middle"}, "bad_field"),
        ({"emitted_at_ns": -1}, "out_of_range"),
    ],
)
def test_poison_reps_are_rejected_with_a_reason(over: dict[str, Any], reason: str) -> None:
    with pytest.raises(ContractError) as err:
        record_row(rep(**over))
    assert err.value.reason == reason


def test_missing_field_is_rejected() -> None:
    r = rep()
    del r["mcv_ms"]
    with pytest.raises(ContractError) as err:
        record_row(r)
    assert err.value.reason == "missing_field"


def test_alert_message_with_nul_or_markup() -> None:
    alert = {
        "v": 1,
        "kind": "alert",
        "rule": "lapse",
        "subject_id": "p1",
        "window_start_ns": T0,
        "ts_ns": T0,
        "clinic_id": "c1",
        "patient_id": "p1",
        "machine_id": None,
        "severity": "warning",
        "value": 8.0,
        "threshold": 7.0,
        "message": "<script>alert(1)</script>",
        "emitted_at_ns": T0,
    }
    _, row = record_row(alert)
    assert "<script>" in row[-3]  # stored verbatim (parameterised); dashboards escape
    with pytest.raises(ContractError):
        record_row({**alert, "message": "a\x00b"})


def test_parse_rejects_bad_json_and_non_finite() -> None:
    parser = topics("", frames=False, events=True, state=True, dead_letters=True)["sledfleet.reps"]
    for raw, reason in [
        (b"{not json", "malformed_json"),
        (b"[1,2]", "not_an_object"),
        (b'{"v":1,"kind":"rep","load_kg":NaN}', "non_finite"),
        (b"\xff\xfe", "not_utf8"),
        (None, "tombstone"),
    ]:
        with pytest.raises(ContractError) as err:
            parse(parser, raw)
        assert err.value.reason == reason
    assert parse(parser, encode(rep())).kind == "rep"


def test_dedup_keeps_newest_emission_per_natural_key() -> None:
    rows = [record_row(rep(emitted_at_ns=T0 + i, load_kg=50 + i))[1] for i in (0, 2, 1)]
    out = dedup(REP, rows)
    assert len(out) == 1
    assert out[0][REP.names.index("load_kg")] == 52.0


def test_conflict_targets_cover_the_contract_natural_keys() -> None:
    for spec in ALL_SPECS:
        if spec.kind in NATURAL_KEYS:
            sources = set(spec.conflict) | {src for _, src in spec.times}
            assert set(NATURAL_KEYS[spec.kind]) <= sources


def test_upsert_sql_is_guarded_by_emission_time() -> None:
    text = upsert_sql(SESSION).as_string(None)
    assert 'ON CONFLICT ("session_id", "ts") DO UPDATE' in text
    assert '"sessions"."emitted_at_ns" < EXCLUDED."emitted_at_ns"' in text
    assert 'sledfleet.ns_to_ts("start_ns")' in text


def test_registry_of_collects_sorted_clinics_machines_patients() -> None:
    batch = Batch()
    for m, p, c in [("m2", "p2", "c2"), ("m1", "p1", "c1"), ("m1", None, "c1")]:
        spec, row = record_row(rep(machine_id=m, patient_id=p, clinic_id=c))
        batch.add(spec, row)
    batch.states.append(
        state_row({"v": 1, "machine_id": "m3", "clinic_id": "c3", "status": "offline"})
    )
    reg = registry_of(batch.rows, batch.states)
    assert reg.clinics == ["c1", "c2", "c3"]
    assert reg.machines[0] == ["m1", "m2", "m3"]
    assert reg.patients == (["p1", "p2"], ["c1", "c2"])


def test_state_row_reads_optional_registry_fields() -> None:
    payload = {
        "v": 1,
        "machine_id": "m1",
        "clinic_id": "c1",
        "status": "online",
        "ts_ns": T0,
        "rate_hz": 100,
        "model": "HS-200",
        "firmware": "1.2",
    }
    row = state_row(json.loads(json.dumps(payload)))
    assert row == ("m1", "c1", True, T0, "HS-200", None, None, "1.2")
