"""``contract.decode`` (orjson first) and ``decode_stdlib`` (json only) agree on every input:
the same parsed value with the same Python types, or the same ContractError reason."""

from __future__ import annotations

import random
from typing import Any

import pytest

from edge import contract
from edge.contract import ContractError

FRAME = contract.encode(
    {
        "v": 1,
        "clinic_id": "c01",
        "machine_id": "m01",
        "seq": 42,
        "session_id": "s-1",
        "t0_ns": 1_795_470_000_123_456_789,
        "rate_hz": 100.0,
        "load_kg": 42.5,
        "position_mm": [0.0, 1.25, -3.5, 300.125, 12],
        "force_left_n": [100.5, 101.0, 99.75, 0.0, 5],
        "force_right_n": [98.5, 97.0, 101.25, 0.0, 6],
        "replayed": False,
        "note": "caf\u00e9 \u2603",
    }
)

CASES = [
    FRAME,
    b'{"a":1,"a":2}',
    b'{"x":1e400}',
    b'{"x":-1e400}',
    b'{"x":"\\ud800"}',
    b'{"x":"\\ud83d\\ude00"}',
    b'{"x":18446744073709551615}',
    b'{"x":18446744073709551616}',
    b'{"x":-9223372036854775808}',
    b'{"x":-9223372036854775809}',
    b'{"x":' + b"9" * 400 + b"}",
    b'{"x":[1.5,2,18446744073709551616]}',
    b'{"x":[null,1.5,-9223372036854775809]}',
    b'{"x":{"y":[[1,2],[3,{"z":99999999999999999999}]]}}',
    b'{"x":[1e19,-1e19,"s"]}',
    b'{"x":[]}',
    b'{"x":0.12345678901234567890123}',
    b'{"x":-0}',
    b'{"x":-0.0}',
    b'{"x":1E5,"y":1e-5,"z":5e0}',
    b"\xef\xbb\xbf{}",
    b'{"x":NaN}',
    b'{"x":Infinity}',
    b'{"x":-Infinity}',
    b"[1,2]",
    b'"text"',
    b"null",
    b"",
    b"{",
    b"\xff\xfe{}",
    b'{"x":"\xc3\x28"}',
    b"[" * 30_000,
    b'{"a":' * 2000 + b"1" + b"}" * 2000,
    b' {"padded": true} ',
    b'{"x":1}garbage',
    b'{"t":"\\u0000"}',
]


def outcome(fn: Any, raw: bytes) -> tuple[str, str]:
    try:
        return "ok", repr(fn(raw))  # repr tells 1 from 1.0 and -0.0 from 0.0
    except ContractError as err:
        return "error", err.reason


@pytest.mark.parametrize("raw", CASES, ids=range(len(CASES)))
def test_fast_and_stdlib_decode_agree(raw: bytes) -> None:
    assert outcome(contract.decode, raw) == outcome(contract.decode_stdlib, raw)


def test_fast_and_stdlib_decode_agree_on_mutated_frames() -> None:
    rng = random.Random(5)
    alphabet = b'0123456789-+.eE"{}[],:\\ntrufalsNI\xff\x00'
    for _ in range(3000):
        raw = bytearray(FRAME)
        for _ in range(rng.randint(1, 4)):
            i = rng.randrange(len(raw))
            op = rng.random()
            if op < 0.4:
                raw[i] = rng.choice(alphabet)
            elif op < 0.7:
                del raw[i]
            else:
                raw[i:i] = bytes(rng.choice(alphabet) for _ in range(rng.randint(1, 25)))
        data = bytes(raw)
        assert outcome(contract.decode, data) == outcome(contract.decode_stdlib, data), data


def test_orjson_is_used_in_the_dev_install() -> None:
    """The bridge and stream extras install orjson; without it decode is ~5x slower."""
    assert contract._orjson is not None


@pytest.mark.parametrize("raw", CASES, ids=range(len(CASES)))
def test_loads_equals_json_loads(raw: bytes) -> None:
    import json

    def reference(data: bytes) -> Any:
        return json.loads(data)

    def outcome_of(fn: Any) -> tuple[str, str]:
        try:
            return "ok", repr(fn(raw))
        except (ValueError, RecursionError) as exc:
            return "error", type(exc).__name__

    assert outcome_of(contract.loads) == outcome_of(reference)
