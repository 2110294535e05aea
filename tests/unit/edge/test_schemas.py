"""The JSON Schemas and edge/contract.py agree: the agent's output passes both, and
malformed payloads are rejected by both, the contract naming a reason."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
from edge_synth import T0_NS, SineSource
from jsonschema import Draft202012Validator

from edge import contract
from edge.agent import EdgeAgent
from edge.agent_settings import EdgeSettings
from edge.framing import Framer
from edge.samples import SourceEvent
from edge.settings import MqttSettings


def schema(kind: str) -> Draft202012Validator:
    text = resources.files("edge").joinpath("schemas", f"{kind}.json").read_text()
    sch = json.loads(text)
    Draft202012Validator.check_schema(sch)
    return Draft202012Validator(sch)


SCHEMAS = {kind: schema(kind) for kind in contract.MESSAGE_KINDS}


def both_accept(kind: str, payload: dict[str, Any]) -> None:
    contract.VALIDATORS[kind](payload)
    errors = [e.message for e in SCHEMAS[kind].iter_errors(payload)]
    assert errors == []


def agent_output() -> list[tuple[str, dict[str, Any]]]:
    f = Framer("clinic-7", "sled-3", 100.0, frame_samples=40)
    out = []
    events = [
        SourceEvent(T0_NS, "calibrated", {"usable_rom_mm": 420.0, "zero_offsets": {"left": 1.5}}),
        SourceEvent(
            T0_NS,
            "session_started",
            {
                "patient_id": "pt-0001",
                "session_id": "sess-1",
                "prescription_id": "rx-9",
                "setup": {"seat_position": 45.0, "footplate_position": None},
            },
        ),
        SourceEvent(T0_NS, "load_changed", {"load_kg": 55.0}),
        SourceEvent(T0_NS, "fault", {"code": "LC_LEFT_FLAT", "detail": "left load cell flat"}),
    ]
    for e in events:
        out += f.feed(e)
    for item in SineSource(300).items():
        out += f.feed(item)
    out += f.feed(SourceEvent(T0_NS + 3 * 10**9, "session_ended", {}))
    out += f.flush()
    return [(o.kind, json.loads(contract.encode(o.payload))) for o in out]


def test_framer_output_passes_contract_and_schemas() -> None:
    out = agent_output()
    assert {k for k, _ in out} == {"telemetry", "event"}
    assert len({p["type"] for k, p in out if k == "event"}) == 5
    for kind, payload in out:
        both_accept(kind, payload)


def test_birth_death_and_config_pass(tmp_path: Path) -> None:
    settings = EdgeSettings(machine_id="sled-3", clinic_id="clinic-7", outbox_dir=str(tmp_path))
    agent = EdgeAgent(settings, MqttSettings(), 100.0)
    both_accept("state", json.loads(contract.encode(agent.birth())))
    both_accept("state", agent._death())
    both_accept("state", {**agent._death(), "ts_ns": T0_NS})
    agent.outbox.close()
    both_accept(
        "config",
        {
            "v": 1,
            "machine_id": "sled-3",
            "clinic_id": "clinic-7",
            "config_version": 3,
            "rate_hz": 50,
            "frame_samples": 25,
            "calibration": {"usable_rom_mm": 400},
        },
    )


Mutation = Callable[[dict[str, Any]], None]


def setter(field: str, value: Any) -> Mutation:
    def mutate(p: dict[str, Any]) -> None:
        p[field] = value

    return mutate


def deleter(field: str) -> Mutation:
    def mutate(p: dict[str, Any]) -> None:
        del p[field]

    return mutate


def sample() -> dict[str, dict[str, Any]]:
    out = agent_output()
    first: dict[str, dict[str, Any]] = {}
    for kind, payload in out:
        key = kind if kind == "telemetry" else payload["type"]
        first.setdefault(key, payload)
    first["state"] = {
        "v": 1,
        "machine_id": "sled-3",
        "clinic_id": "clinic-7",
        "status": "online",
        "ts_ns": T0_NS,
        "rate_hz": 100.0,
    }
    first["config"] = {"v": 1, "machine_id": "sled-3", "clinic_id": "clinic-7", "config_version": 1}
    return first


# (payload key, mutation, contract reason, schema can express it)
CASES: list[tuple[str, Mutation, str, bool]] = [
    ("telemetry", setter("v", 2), "unknown_version", True),
    ("telemetry", deleter("v"), "unknown_version", True),
    ("telemetry", setter("v", True), "unknown_version", True),
    ("telemetry", setter("machine_id", "a/b"), "bad_id", True),
    ("telemetry", setter("clinic_id", "x" * 65), "bad_id", True),
    ("telemetry", setter("session_id", "bad id"), "bad_id", True),
    ("telemetry", setter("seq", -1), "out_of_range", True),
    ("telemetry", setter("seq", "1"), "bad_field", True),
    ("telemetry", setter("seq", True), "bad_field", True),
    ("telemetry", setter("t0_ns", 0), "out_of_range", True),
    ("telemetry", setter("rate_hz", 5), "out_of_range", True),
    ("telemetry", setter("load_kg", -1), "out_of_range", True),
    ("telemetry", setter("position_mm", [1.0] * 5), "bad_length", True),
    ("telemetry", setter("position_mm", [1.0] * 101), "bad_length", True),
    ("telemetry", setter("force_left_n", ["x"] * 40), "bad_field", True),
    ("telemetry", setter("force_right_n", [1e6] * 40), "out_of_range", True),
    ("telemetry", setter("position_mm", [1.0] * 39), "unequal_lengths", False),
    ("telemetry", deleter("replayed"), "bad_field", True),
    ("telemetry", setter("replayed", "no"), "bad_field", True),
    ("fault", setter("type", "exploded"), "unknown_event_type", True),
    ("fault", setter("event_id", "not-a-uuid"), "bad_field", True),
    ("fault", setter("ts_ns", 10**20), "out_of_range", True),
    ("fault", setter("code", ""), "bad_field", True),
    ("fault", setter("detail", "x" * 600), "bad_field", True),
    ("session_started", deleter("patient_id"), "bad_id", True),
    ("session_started", setter("session_id", None), "bad_id", True),
    ("session_started", setter("setup", [1, 2]), "bad_field", True),
    ("session_started", setter("setup", {"seat_position": 150}), "out_of_range", True),
    ("session_ended", setter("session_id", None), "bad_id", True),
    ("load_changed", deleter("load_kg"), "bad_field", True),
    ("calibrated", setter("usable_rom_mm", 10), "out_of_range", True),
    ("state", setter("status", "maybe"), "bad_field", True),
    ("state", deleter("ts_ns"), "bad_field", True),
    ("state", setter("rate_hz", 0), "out_of_range", True),
    ("config", deleter("config_version"), "bad_field", True),
    ("config", setter("config_version", -1), "out_of_range", True),
    ("config", setter("frame_samples", 5), "out_of_range", True),
    ("config", setter("rate_hz", 2000), "out_of_range", True),
]

KIND_OF = {"telemetry": "telemetry", "state": "state", "config": "config"}


@pytest.mark.parametrize(
    ("key", "mutate", "reason", "schema_detects"),
    CASES,
    ids=[f"{c[0]}-{c[2]}-{i}" for i, c in enumerate(CASES)],
)
def test_malformed_payloads_are_rejected_with_a_reason(
    key: str, mutate: Mutation, reason: str, schema_detects: bool
) -> None:
    payload = copy.deepcopy(sample()[key])
    kind = KIND_OF.get(key, "event")
    both_accept(kind, payload)
    mutate(payload)
    with pytest.raises(contract.ContractError) as err:
        contract.VALIDATORS[kind](payload)
    assert err.value.reason == reason
    assert SCHEMAS[kind].is_valid(payload) is not schema_detects


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"{not json", "malformed_json"),
        (b'{"v":1,"x":NaN}', "non_finite"),
        (b"[1,2]", "not_an_object"),
        (b"\xff\xfe", "not_utf8"),
        (b"{}" + b" " * (contract.MAX_PAYLOAD_BYTES + 1), "too_large"),
    ],
)
def test_undecodable_messages_are_rejected(raw: bytes, reason: str) -> None:
    with pytest.raises(contract.ContractError) as err:
        contract.validate_message("sledfleet/v1/c1/m1/telemetry", raw)
    assert err.value.reason == reason


def test_topic_and_payload_must_agree() -> None:
    payload = sample()["telemetry"]
    with pytest.raises(contract.ContractError) as err:
        contract.validate_message("sledfleet/v1/other/sled-3/telemetry", contract.encode(payload))
    assert err.value.reason == "topic_mismatch"
