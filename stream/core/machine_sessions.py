"""A machine's sessions: check-in/out, sets by the gap rule, held records, finalisation.

Sessions are keyed by the frames' ``session_id``. ``completed_as_prescribed`` needs the
prescription's sets × reps × load: the adapter may attach the Prescription record to the
``session_started`` event as ``"prescription"`` (the machine itself only reports its id);
without it the field is None and :class:`stream.core.PatientTracker` decides it.

Frames without a session_id (nobody checked in) still yield reps, recorded under an
anonymous session ``anon-<machine>-<start s>`` with ``patient_id`` None, ended by the
idle timeout. Records of a session whose check-in has not arrived are held (bounded by
``max_pending_records``/``max_pending_s``), then given the patient_id on check-in or
released unattributed when the bound is hit.
"""

from __future__ import annotations

from typing import Any

from stream.core import output
from stream.core.metrics import MetricParams, rep_metrics
from stream.core.reps import RepSegment, Segmenter
from stream.core.sessions import session_fields
from stream.core.sets import set_fields, starts_new_set, summarise
from stream.core.settings import CoreSettings

ANON = "_anon"
LOAD_TOLERANCE_KG = 1e-6
"""A set at the prescribed load up to float noise counts as at the prescribed load."""
MAX_CLOSED_REMEMBERED = 64
Records = list[dict[str, Any]]


def _new(session_id: str, anon: bool) -> dict[str, Any]:
    return {
        "session_id": session_id,
        "anon": anon,
        "patient_id": None,
        "prescription_id": None,
        "seat_position": None,
        "footplate_position": None,
        "checked_in": False,
        "released": anon,
        "start_ns": None,  # check-in time
        "first_ns": None,  # first sample time
        "last_ns": None,  # last sample time
        "last_rep_ns": None,  # end of the last rep
        "ended_ns": None,  # check-out time
        "prescription": None,  # the Prescription record, when the check-in carried it
        "set_no": 0,
        "set_reps": [],
        "sets": [],
        "reps": [],
        "pending": [],
        "pending_since": None,
    }


def completed(d: dict[str, Any]) -> bool | None:
    """Completed as prescribed: at least the prescribed number of sets, each with at least
    the prescribed valid reps at ≥ the prescribed load (None without the prescription)."""
    rx = d.get("prescription")
    if not rx:
        return None
    done = sum(
        1
        for s in d["sets"]
        if s["reps"] >= rx["reps"] and s["load_kg"] >= float(rx["load_kg"]) - LOAD_TOLERANCE_KG
    )
    return done >= int(rx["sets"])


class Session:
    def __init__(self, d: dict[str, Any]) -> None:
        self.d = d

    def touch(self, t_ns: int) -> None:
        if self.d["first_ns"] is None:
            self.d["first_ns"] = t_ns
        self.d["last_ns"] = max(t_ns, self.d["last_ns"] or t_ns)

    def activity_ns(self) -> int:
        d = self.d
        vals = [v for v in (d["last_rep_ns"], d["start_ns"], d["first_ns"]) if v is not None]
        return max(vals) if vals else 0


class Sessions:
    def __init__(self, clinic_id: str, machine_id: str) -> None:
        self.clinic_id = clinic_id
        self.machine_id = machine_id
        self.open: dict[str, dict[str, Any]] = {}
        self.anon_sid: str | None = None
        self.closed: list[str] = []
        self.late_frames = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "open": self.open,
            "anon_sid": self.anon_sid,
            "closed": list(self.closed),
            "late_frames": self.late_frames,
        }

    def load_json(self, d: dict[str, Any]) -> None:
        self.open = d["open"]
        self.anon_sid = d["anon_sid"]
        self.closed = list(d["closed"])
        self.late_frames = int(d["late_frames"])

    # --- lookup ---------------------------------------------------------------------------------

    def is_closed(self, sid: str) -> bool:
        return sid in self.closed

    def is_open(self, key: str) -> bool:
        if key == ANON:
            return True
        return key in self.open

    def has_frames(self, sid: str) -> bool:
        d = self.open.get(sid)
        return d is not None and d["first_ns"] is not None

    def _get(self, key: str | None) -> dict[str, Any] | None:
        if key == ANON:
            return self.open.get(self.anon_sid) if self.anon_sid else None
        return self.open.get(key) if key else None

    def _ident(self, d: dict[str, Any]) -> dict[str, Any]:
        return {
            "clinic_id": self.clinic_id,
            "machine_id": self.machine_id,
            "session_id": d["session_id"],
            "patient_id": d["patient_id"],
            "prescription_id": d["prescription_id"],
            "seat_position": d["seat_position"],
            "footplate_position": d["footplate_position"],
            "completed_as_prescribed": completed(d),
        }

    def for_frames(self, key: str, sid: str | None, t_ns: int) -> Session:
        if sid is None:
            d = self._get(ANON)
            return Session(d if d is not None else _new("", True))  # touch is a no-op
        d = self.open.get(sid)
        if d is None:
            d = self.open[sid] = _new(sid, False)
        return Session(d)

    # --- reps and sets -------------------------------------------------------------------------

    def add_rep(
        self,
        key: str | None,
        seg: RepSegment,
        mp: MetricParams,
        calibrated_rom_mm: float | None,
        s: CoreSettings,
        now_ns: int,
    ) -> Records:
        m = rep_metrics(seg, mp)
        out: Records = []
        d = self._get(key)
        if key == ANON and (
            d is None or m.start_ns - Session(d).activity_ns() >= s.session_idle_s * 1e9
        ):
            if d is not None:
                out += self.finalize(d, "idle_timeout", s, now_ns)
            sid = f"anon-{self.machine_id}-{m.start_ns // 1_000_000_000}"
            d = self.open[sid] = _new(sid, True)
            d["first_ns"] = m.start_ns
            self.anon_sid = sid
        if d is None:
            return out
        min_rom = max(s.min_rom_mm, s.min_rom_fraction * (calibrated_rom_mm or 0.0))
        valid = m.rom_mm >= min_rom
        if d["set_reps"] and starts_new_set(d["last_rep_ns"], m.start_ns, s.set_gap_s):
            out += self._close_set(d, now_ns)
        if not d["set_reps"]:
            d["set_no"] += 1
        summary = summarise(m, valid)
        d["set_reps"].append(summary)
        d["reps"].append(summary)
        d["last_rep_ns"] = m.end_ns
        rec = output.rep_record(self._ident(d), d["set_no"], len(d["set_reps"]), valid, m, now_ns)
        out += self._emit(d, rec, m.end_ns)
        return out

    def _close_set(self, d: dict[str, Any], now_ns: int) -> Records:
        if not d["set_reps"]:
            return []
        fields = set_fields(d["set_reps"])
        d["sets"].append(fields)
        d["set_reps"] = []
        rec = output.set_record(self._ident(d), d["set_no"], fields, now_ns)
        return self._emit(d, rec, fields["end_ns"])

    def close_set(self, key: str, s: CoreSettings, now_ns: int) -> Records:
        d = self._get(key)
        return self._close_set(d, now_ns) if d is not None else []

    def close_set_if_rested(
        self,
        key: str | None,
        final_t_ns: int | None,
        seg: Segmenter | None,
        s: CoreSettings,
        now_ns: int,
    ) -> Records:
        d = self._get(key)
        if d is None or not d["set_reps"] or final_t_ns is None or (seg and seg.in_rep):
            return []
        if final_t_ns - d["last_rep_ns"] >= s.set_gap_s * 1e9:
            return self._close_set(d, now_ns)
        return []

    # --- check-in / check-out -----------------------------------------------------------------

    def check_in(self, event: dict[str, Any], s: CoreSettings, now_ns: int) -> Records:
        sid = str(event["session_id"])
        if sid in self.closed:
            return []
        d = self.open.get(sid)
        if d is None:
            d = self.open[sid] = _new(sid, False)
        setup = event.get("setup") or {}
        rx = event.get("prescription")
        d.update(
            prescription=dict(rx) if isinstance(rx, dict) else None,
            patient_id=event.get("patient_id"),
            prescription_id=event.get("prescription_id"),
            seat_position=setup.get("seat_position"),
            footplate_position=setup.get("footplate_position"),
            checked_in=True,
            start_ns=int(event["ts_ns"]),
        )
        return self._release(d, attribute=True)

    def check_out(self, sid: str, ts_ns: int) -> bool:
        """Mark ``sid`` checked out; False when it is already closed."""
        if sid in self.closed:
            return False
        d = self.open.get(sid)
        if d is None:
            d = self.open[sid] = _new(sid, False)
        d["ended_ns"] = ts_ns
        return True

    # --- finishing -------------------------------------------------------------------------------

    def maybe_finalize(
        self, key: str, s: CoreSettings, now_ns: int, pipeline_left: bool
    ) -> Records:
        """Finalize ``key`` if it is checked out and its frames have left the pipeline."""
        d = self._get(key)
        if d is None or d["anon"]:
            return self.close_set(key, s, now_ns) if d is not None else []
        out = self._close_set(d, now_ns)
        if d["ended_ns"] is not None and pipeline_left:
            out += self.finalize(d, "checkout", s, now_ns)
        return out

    def due(self, now_ns: int, s: CoreSettings) -> list[tuple[str, str]]:
        """Sessions the tick clock ends: checked out long enough ago, or idle."""
        out = []
        for sid, d in self.open.items():
            if d["ended_ns"] is not None:
                if now_ns - d["ended_ns"] >= s.session_end_grace_s * 1e9:
                    out.append((sid, "checkout"))
            elif now_ns - Session(d).activity_ns() >= s.session_idle_s * 1e9:
                out.append((sid, "idle_timeout"))
        return out

    def finalize_key(self, sid: str, reason: str, s: CoreSettings, now_ns: int) -> Records:
        d = self.open.get(sid)
        return self.finalize(d, reason, s, now_ns) if d is not None else []

    def finalize(self, d: dict[str, Any], reason: str, s: CoreSettings, now_ns: int) -> Records:
        out = self._close_set(d, now_ns)
        start = d["start_ns"] if d["start_ns"] is not None else d["first_ns"]
        if d["reps"]:
            first_rep = d["reps"][0]["start_ns"]
            start = first_rep if start is None else min(start, first_rep)
        if reason == "checkout" and d["ended_ns"] is not None:
            end = d["ended_ns"]
        else:
            end = Session(d).activity_ns()
        start = end if start is None else start
        fields = session_fields(d["sets"], d["reps"], start, end, s.mvt_ms)
        rec = output.session_record(self._ident(d), start, end, reason, fields, now_ns)
        out += self._emit(d, rec, end)
        out += self._release(d, attribute=d["checked_in"])
        sid = d["session_id"]
        self.open.pop(sid, None)
        if self.anon_sid == sid:
            self.anon_sid = None
        self.closed = [*self.closed[-(MAX_CLOSED_REMEMBERED - 1) :], sid]
        return out

    # --- held records --------------------------------------------------------------------------

    def _emit(self, d: dict[str, Any], rec: dict[str, Any], t_ns: int) -> Records:
        if d["checked_in"] or d["released"]:
            return [rec]
        if not d["pending"]:
            d["pending_since"] = t_ns
        d["pending"].append(rec)
        return []

    def _release(self, d: dict[str, Any], attribute: bool) -> Records:
        out: Records = d["pending"]
        d["pending"] = []
        d["pending_since"] = None
        if attribute:
            for rec in out:
                rec["patient_id"] = d["patient_id"]
                if rec["kind"] == "session":
                    rec["prescription_id"] = d["prescription_id"]
                    rec["seat_position"] = d["seat_position"]
                    rec["footplate_position"] = d["footplate_position"]
        else:
            d["released"] = True
        return out

    def release_overdue(self, t_ns: int, s: CoreSettings, now_ns: int) -> Records:
        out: Records = []
        for d in self.open.values():
            if d["pending"] and (
                len(d["pending"]) > s.max_pending_records
                or t_ns - d["pending_since"] >= s.max_pending_s * 1e9
            ):
                out += self._release(d, attribute=False)
        return out
