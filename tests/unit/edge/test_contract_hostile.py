"""Hostile payloads get a ContractError with a reason, never another exception."""

from __future__ import annotations

import pytest

from edge.contract import ContractError, validate_message

TOPIC = "sledfleet/v1/c01/m01/telemetry"


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (
            b'{"v":1,"clinic_id":"c01","machine_id":"m01","seq":1,"t0_ns":' + b"9" * 400 + b"}",
            "out_of_range",
        ),
        (b"[" * 30_000, "unprocessable"),
        (b'{"v":' + b"1" * 5000 + b"}", "unprocessable"),
        (b'{"v":1e999}', "unknown_version"),
        (b'{"v":NaN}', "non_finite"),
    ],
)
def test_hostile_payloads_are_contract_errors(raw: bytes, reason: str) -> None:
    with pytest.raises(ContractError) as info:
        validate_message(TOPIC, raw)
    assert info.value.reason == reason
