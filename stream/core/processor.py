"""Per-machine processing: frames, events and state messages in, output records out (stub)."""

from __future__ import annotations

from typing import Any

from stream.core.settings import CoreSettings


class MachineState:
    def __init__(self, clinic_id: str, machine_id: str) -> None:
        self.clinic_id = clinic_id
        self.machine_id = machine_id

    def to_json(self) -> dict[str, Any]:
        return {"clinic_id": self.clinic_id, "machine_id": self.machine_id}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> MachineState:
        return cls(d["clinic_id"], d["machine_id"])


class MachineProcessor:
    def __init__(self, settings: CoreSettings | None = None) -> None:
        self.settings = settings or CoreSettings()

    def new_state(self, clinic_id: str, machine_id: str) -> MachineState:
        return MachineState(clinic_id, machine_id)

    def on_frame(
        self, state: MachineState, frame: dict[str, Any], now_ns: int
    ) -> list[dict[str, Any]]:
        return []

    def on_event(
        self, state: MachineState, event: dict[str, Any], now_ns: int
    ) -> list[dict[str, Any]]:
        return []

    def on_state(
        self, state: MachineState, msg: dict[str, Any], now_ns: int
    ) -> list[dict[str, Any]]:
        return []

    def on_tick(self, state: MachineState, now_ns: int) -> list[dict[str, Any]]:
        return []
