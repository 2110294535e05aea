"""Contract-valid payloads for the bridge's unit tests (known-good, then broken one way)."""

from __future__ import annotations

import uuid
from typing import Any

T0_NS = 1_763_900_000 * 10**9


def telemetry(clinic: str = "c1", machine: str = "m1", seq: int = 0, n: int = 50) -> dict[str, Any]:
    return {
        "v": 1,
        "clinic_id": clinic,
        "machine_id": machine,
        "seq": seq,
        "session_id": None,
        "t0_ns": T0_NS + seq * 10**9,
        "rate_hz": 50.0,
        "load_kg": 80.0,
        "position_mm": [100.0 + i for i in range(n)],
        "force_left_n": [400.0] * n,
        "force_right_n": [410.5] * n,
        "replayed": False,
    }


def event(clinic: str = "c1", machine: str = "m1", seq: int = 0) -> dict[str, Any]:
    return {
        "v": 1,
        "clinic_id": clinic,
        "machine_id": machine,
        "type": "load_changed",
        "event_id": str(uuid.UUID(int=seq + 1)),
        "seq": seq,
        "ts_ns": T0_NS,
        "load_kg": 90.0,
    }


def state(clinic: str = "c1", machine: str = "m1") -> dict[str, Any]:
    return {
        "v": 1,
        "clinic_id": clinic,
        "machine_id": machine,
        "status": "online",
        "ts_ns": T0_NS,
        "rate_hz": 50.0,
    }
