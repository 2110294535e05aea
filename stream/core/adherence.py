"""Per-patient adherence, compliance and patient alerts by event time (stub)."""

from __future__ import annotations

from typing import Any

from stream.core.settings import CoreSettings


class PatientState:
    def __init__(self, patient_id: str, clinic_id: str) -> None:
        self.patient_id = patient_id
        self.clinic_id = clinic_id

    def to_json(self) -> dict[str, Any]:
        return {"patient_id": self.patient_id, "clinic_id": self.clinic_id}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> PatientState:
        return cls(d["patient_id"], d["clinic_id"])


class PatientTracker:
    def __init__(self, settings: CoreSettings | None = None) -> None:
        self.settings = settings or CoreSettings()

    def new_state(self, patient_id: str, clinic_id: str) -> PatientState:
        return PatientState(patient_id, clinic_id)

    def on_prescription(
        self, state: PatientState, prescription: dict[str, Any]
    ) -> list[dict[str, Any]]:
        return []

    def on_session(
        self, state: PatientState, session: dict[str, Any], now_ns: int
    ) -> list[dict[str, Any]]:
        return []

    def on_tick(self, state: PatientState, today_ns: int, now_ns: int) -> list[dict[str, Any]]:
        return []
