"""Sessions → adherence: re-key session records by patient, then ``PatientTracker``.

Session records are keyed by machine_id on the sessions topic. The re-key agent copies
those with a patient onto an internal topic keyed by patient_id, co-partitioned with
the compacted prescriptions topic; the patient agent consumes both and keeps one
``PatientState`` per patient in a changelog-backed table. The daily lapse check runs on
a wall-clock timer but judges by event time: "today" is the latest device time this
worker has seen on its machine partitions.

Calendars are the clinic's: before each batch and tick the clinic directory
(stream/app/clinics.py) catches up with ``sledfleet.clinics``; a patient state is created
in its clinic's zone and switched (re-bucketing its history) when that zone changes.
Unknown clinics are on UTC.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

from edge.contract import ContractError, check_id
from stream.app import codecs
from stream.app.agents import Plumbing
from stream.app.clinics import ClinicDirectory
from stream.app.state import Message, PatientEntry, StateTable, patient_from_json
from stream.core.adherence import PatientTracker

log = logging.getLogger(__name__)


class PatientAgent:
    def __init__(
        self,
        plumbing: Plumbing,
        patients: Any,
        tracker: PatientTracker,
        today_ns: Callable[[], int | None],
        clinics: ClinicDirectory,
    ) -> None:
        self.p = plumbing
        self.patients: StateTable[PatientEntry] = StateTable(patients, patient_from_json)
        self.tracker = tracker
        self.today_ns = today_ns
        self.clinics = clinics

    async def _refresh_zones(self, out: list[Message]) -> None:
        """Catch up with the clinics topic; its bad records become dead letters."""
        for raw, err in await self.clinics.refresh():
            out.append(self.p.dead(self.clinics.topic, raw, err))

    def _zone_records(self, entry: PatientEntry) -> list[dict[str, Any]]:
        """Switch the patient to its clinic's current zone (rows it re-buckets)."""
        state = entry.state
        zone = self.clinics.zone_of(state.clinic_id)
        if zone == state.time_zone:
            return []
        log.info(
            "patient %s: clinic %s zone %s -> %s",
            state.patient_id,
            state.clinic_id,
            state.time_zone,
            zone,
        )
        return self.tracker.set_zone(state, zone, state.today_ns)

    async def on_session_batch(self, events: Sequence[Any]) -> None:
        """Re-key session records by patient_id onto the internal co-partitioned topic."""
        out: list[Message] = []
        for event in events:
            raw = event.message.value
            try:
                record = codecs.decode_record(raw)
                if record.get("kind") != "session":
                    raise ContractError("bad_field", "not a session record")
                patient_id = record.get("patient_id")
                if patient_id is None:
                    continue  # nobody checked in: recorded, never attributed
                check_id("patient_id", patient_id)
            except ContractError as err:
                out.append(self.p.dead(event.message.topic, raw, err))
                continue
            out.append((self.p.topics.sessions_by_patient, patient_id.encode(), raw, None))
        await self.p.produce(out)

    def _entry(
        self, dirty: dict[str, PatientEntry], patient_id: str, clinic_id: str, partition: int
    ) -> PatientEntry:
        entry = dirty.get(patient_id) or self.patients.get(patient_id)
        if entry is None:
            zone = self.clinics.zone_of(clinic_id)
            entry = PatientEntry(partition, self.tracker.new_state(patient_id, clinic_id, zone))
        entry.partition = partition
        dirty[patient_id] = entry
        return entry

    async def on_batch(self, events: Sequence[Any]) -> None:
        """Prescriptions and (re-keyed) session records, per patient, in arrival order."""
        async with self.p.lock:
            out: list[Message] = []
            dirty: dict[str, PatientEntry] = {}
            await self._refresh_zones(out)
            for event in events:
                message = event.message
                raw = message.value
                try:
                    record = codecs.decode_record(raw)
                    kind = record.get("kind")
                    if kind not in ("prescription", "session"):
                        raise ContractError("bad_field", f"unexpected record kind {kind!r}")
                    patient_id = check_id("patient_id", record.get("patient_id"))
                    clinic_id = check_id("clinic_id", record.get("clinic_id"))
                except ContractError as err:
                    out.append(self.p.dead(message.topic, raw, err))
                    continue
                entry = self._entry(dirty, patient_id, clinic_id, message.partition)
                try:
                    self.p.route(self._zone_records(entry), out)
                    if kind == "prescription":
                        self.p.counters.prescriptions += 1
                        records = self.tracker.on_prescription(entry.state, record)
                    else:
                        self.p.counters.sessions_in += 1
                        now_ns = int(record["end_ns"])
                        records = self.tracker.on_session(entry.state, record, now_ns)
                except Exception as exc:
                    log.exception("adherence failed on %s for %s", kind, patient_id)
                    out.append(self.p.failure(message.topic, record, exc))
                    continue
                self.p.route(records or [], out)
            changelog = [
                self.patients.put(k, e, e.to_json(), e.partition) for k, e in dirty.items()
            ]
            await self.p.checkpoint(out, changelog)

    async def on_tick(self) -> None:
        """Timer: the daily lapse/adherence check for the patients this worker owns."""
        if not self.p.ready():
            return
        async with self.p.lock:
            self.p.counters.ticks += 1
            out: list[Message] = []
            await self._refresh_zones(out)
            today = self.today_ns()  # None: no device time yet, only zone changes to apply
            owned = self.p.assigned(self.p.topics.sessions_by_patient)
            changelog: list[Message] = []
            for patient_id in self.patients.snapshot_keys():
                entry = self.patients.get(patient_id)
                if entry is None or entry.partition not in owned:
                    continue
                try:
                    zone_changed = self.clinics.zone_of(entry.state.clinic_id) != (
                        entry.state.time_zone
                    )
                    records = self._zone_records(entry)
                    if today is not None:
                        records += self.tracker.on_tick(entry.state, today, today)
                    elif not zone_changed:
                        continue
                except Exception:
                    log.exception("adherence tick failed for patient %s", patient_id)
                    self.p.counters.errors += 1
                    continue
                self.p.route(records or [], out)
                changelog.append(
                    self.patients.put(patient_id, entry, entry.to_json(), entry.partition)
                )
            await self.p.checkpoint(out, changelog)
