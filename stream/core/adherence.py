"""Per-patient adherence, compliance and patient alerts, by event time (MoXFo, Motl 2023).

Calendars are the clinic's: days and ISO weeks are local dates in the patient state's
``time_zone`` (the clinic's IANA zone, ``UTC`` when none is known; see stream.core.weeks).

Per clinic-local ISO week W, with the prescription active in W (the latest-starting one whose
[start_date, end_date] overlaps the week):

* prescribed = its ``sessions_per_week`` prorated by the days of W it covers up to today,
  ⌊spw × days / 7 + ½⌋ (weeks it does not overlap get no row),
* attended = sessions that started during W (local time),
* completed = attended sessions that got the prescribed *dose* (≥ prescribed sets, ≥ sets ×
  reps valid reps, at ≥ the prescribed load),
* adherence = attended / prescribed, compliance = completed / prescribed, relative
  compliance = completed / attended; the same sums over the rolling 4 weeks W−3..W.

``completed`` and the ratios built on it are the stream's *dose* measure, not the clinical
compliance people read: that one also requires every counted set to stay within the
prescription's velocity-loss limit, which needs per-set velocity loss this tracker does not
receive. It is defined once, in SQL (``sledfleet.v_session_compliance``, migration 0011),
and every report, dashboard and clinic view counts it from there (migration 0015). The
dose rows are stored (``adherence_weekly.completed``, commented as such), scored against
the simulator's truth (edge/simulator/truth.py counts the same dose) and shown by no view.
Adherence (attended / prescribed), which drives the lapse and low-adherence alerts, is one
number everywhere.

Everything keys on the session's own start time, so a late or replayed session counts in
its own week and re-emits the rows of that week and the three after it. A row is emitted
only when its values change (the patient state remembers what was sent), so re-delivered
input re-emits nothing, and the sink upserts by (patient_id, iso_week). A change of the
clinic's zone (:meth:`PatientTracker.set_zone`) re-buckets the whole history in the new
zone and re-emits the weeks whose values change; each row names the zone it was counted in.

Lapse and dropout alerts count local calendar days since the last session (a session on
Monday evening and none by the next Monday morning is 7 days), so a DST week of 167 or
169 hours neither delays nor advances them.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

from stream.core import alerts
from stream.core.jsonstate import detached
from stream.core.settings import CoreSettings
from stream.core.weeks import (
    UTC_NAME,
    WEEK_NS,
    calendar_days,
    check_zone,
    day_of,
    iso_week,
    midnight_ns,
    monday_of,
    weeks_between,
)
from stream.records import RECORD_VERSION

Records = list[dict[str, Any]]
LOAD_TOLERANCE_KG = 0.5
"""A set done at the prescribed load minus this still counts as at the prescribed load."""


class PatientState:
    def __init__(self, patient_id: str, clinic_id: str, time_zone: str = UTC_NAME) -> None:
        self.patient_id = patient_id
        self.clinic_id = clinic_id
        self.time_zone = time_zone  # the clinic zone the rows and alerts were computed in
        self.prescriptions: dict[str, dict[str, Any]] = {}
        self.sessions: dict[str, dict[str, Any]] = {}  # session_id -> summary
        self.rows: dict[str, list[Any]] = {}  # iso_week -> values last emitted
        self.alerted: list[list[Any]] = []  # [rule, window_start_ns] already raised
        self.today_ns = 0  # latest event time known for this patient
        self.low_since: int | None = None  # window start of the current low-adherence run

    def to_json(self) -> dict[str, Any]:
        return detached(self._json())

    def _json(self) -> dict[str, Any]:
        return {
            "patient_id": self.patient_id,
            "clinic_id": self.clinic_id,
            "time_zone": self.time_zone,
            "prescriptions": self.prescriptions,
            "sessions": self.sessions,
            "rows": self.rows,
            "alerted": self.alerted,
            "today_ns": self.today_ns,
            "low_since": self.low_since,
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> PatientState:
        d = detached(d)
        st = cls(d["patient_id"], d["clinic_id"], d.get("time_zone", UTC_NAME))
        st.prescriptions = d["prescriptions"]
        st.sessions = d["sessions"]
        st.rows = d["rows"]
        st.alerted = d["alerted"]
        st.today_ns = int(d["today_ns"])
        st.low_since = d["low_since"]
        return st


def _active(st: PatientState, monday: dt.date) -> dict[str, Any] | None:
    sunday = monday + dt.timedelta(days=6)
    best = None
    for p in st.prescriptions.values():
        start = dt.date.fromisoformat(p["start_date"])
        end = dt.date.fromisoformat(p["end_date"]) if p.get("end_date") else None
        if start <= sunday and (end is None or end >= monday):
            key = (p["start_date"], p["prescription_id"])
            if best is None or key > (best["start_date"], best["prescription_id"]):
                best = p
    return best


def completed_as_prescribed(session: dict[str, Any], p: dict[str, Any]) -> bool:
    return bool(
        session["sets"] >= p["sets"]
        and session["reps"] >= p["sets"] * p["reps"]
        and session["max_load_kg"] >= p["load_kg"] - LOAD_TOLERANCE_KG
    )


def _prescribed(p: dict[str, Any], monday: dt.date, today: dt.date) -> int | None:
    """Sessions prescribed in the week of ``monday``: sessions_per_week prorated by the days
    the prescription covers (up to today), ⌊spw × days / 7 + ½⌋; None when it covers none."""
    start = dt.date.fromisoformat(p["start_date"])
    end = dt.date.fromisoformat(p["end_date"]) if p.get("end_date") else today
    end = min(end, today)
    sunday = monday + dt.timedelta(days=6)
    days = (min(sunday, end) - max(monday, start)).days + 1
    if days <= 0:
        return None
    return math.floor(int(p["sessions_per_week"]) * days / 7 + 0.5)


def _ratio(a: int, b: int) -> float | None:
    return a / b if b > 0 else None


class PatientTracker:
    def __init__(self, settings: CoreSettings | None = None, reemit_sessions: bool = True) -> None:
        self.s = settings or CoreSettings()
        self.reemit_sessions = reemit_sessions
        """Re-emit a session record whose ``completed_as_prescribed`` the tracker decided
        (the machine processor does not know prescriptions); its echo changes nothing."""

    def new_state(self, patient_id: str, clinic_id: str, time_zone: str = UTC_NAME) -> PatientState:
        return PatientState(patient_id, clinic_id, check_zone(time_zone))

    def set_zone(self, state: PatientState, time_zone: str, now_ns: int) -> Records:
        """Use the clinic's (new) zone from now on, for the whole history: sessions are
        re-bucketed into local weeks and the rows whose values change are re-emitted (same
        keys, so the sink overwrites them). Nothing happens when the zone is unchanged."""
        if time_zone == state.time_zone:
            return []
        state.time_zone = check_zone(time_zone)
        for summary in state.sessions.values():
            if summary.get("given") is None:
                summary["completed"] = self._completed(state, summary)
        state.rows = {}  # every row names its zone: re-emit all of them once
        return self._rows(state, state.today_ns, now_ns)

    # --- inputs ----------------------------------------------------------------------------------

    def on_prescription(
        self, state: PatientState, prescription: dict[str, Any]
    ) -> list[dict[str, Any]]:
        state.prescriptions[str(prescription["prescription_id"])] = dict(prescription)
        for summary in state.sessions.values():
            if summary.get("given") is None:
                summary["completed"] = self._completed(state, summary)
        return self._rows(state, state.today_ns, 0)

    def on_session(
        self, state: PatientState, session: dict[str, Any], now_ns: int
    ) -> list[dict[str, Any]]:
        st = state
        summary = {
            "session_id": session["session_id"],
            "start_ns": int(session["start_ns"]),
            "end_ns": int(session["end_ns"]),
            "prescription_id": session.get("prescription_id"),
            "sets": int(session["sets"]),
            "reps": int(session["reps"]),
            "max_load_kg": float(session["max_load_kg"]),
            "asi": session.get("mean_asi_pct"),
            "max_vl": session.get("max_velocity_loss_pct"),
            "mcv": session.get("mean_mcv_ms"),
            "ref_load": float(session["max_load_kg"]) if session["reps"] else None,
            "set_loads_reps": session.get("set_loads_reps"),
        }
        given = session.get("completed_as_prescribed")
        summary["given"] = given
        summary["completed"] = given if given is not None else self._completed(st, summary)
        st.sessions[summary["session_id"]] = summary
        st.today_ns = max(st.today_ns, summary["end_ns"])
        out: Records = []
        if self.reemit_sessions and summary["completed"] != session.get("completed_as_prescribed"):
            out.append({**session, "completed_as_prescribed": summary["completed"]})
        out += self._rows(st, max(st.today_ns, now_ns), now_ns)
        out += self._session_alerts(st, summary, now_ns)
        return out

    def on_tick(self, state: PatientState, today_ns: int, now_ns: int) -> list[dict[str, Any]]:
        st = state
        st.today_ns = max(st.today_ns, today_ns)
        out = self._rows(st, st.today_ns, now_ns)
        out += self._lapse_alerts(st, now_ns)
        return out

    # --- adherence rows ------------------------------------------------------------------------

    def _completed(self, st: PatientState, summary: dict[str, Any]) -> bool | None:
        """When the session record has no verdict: exact from its ``set_loads_reps``;
        for an older record without it, from its totals (≥ sets, ≥ sets × reps valid reps,
        max load ≥ prescribed) — an approximation (a warm-up or short set hides in them)."""
        p = st.prescriptions.get(summary["prescription_id"] or "")
        if p is None:
            p = _active(st, monday_of(day_of(summary["start_ns"], st.time_zone)))
        if p is None:
            return None
        per_set = summary.get("set_loads_reps")
        if per_set is not None:  # exact: ≥ sets, each ≥ reps valid reps at ≥ the load
            done = sum(
                1
                for load, reps in per_set
                if reps >= p["reps"] and load >= float(p["load_kg"]) - 1e-6
            )
            return done >= int(p["sets"])
        return completed_as_prescribed(summary, p) and summary["reps"] > 0

    def _week_counts(self, st: PatientState) -> dict[dt.date, list[int]]:
        counts: dict[dt.date, list[int]] = {}
        for s in st.sessions.values():
            c = counts.setdefault(monday_of(day_of(s["start_ns"], st.time_zone)), [0, 0])
            c[0] += 1
            c[1] += 1 if s["completed"] else 0
        return counts

    def _rows(self, st: PatientState, today_ns: int, now_ns: int) -> Records:
        if today_ns <= 0 or not st.prescriptions:
            return []
        today = day_of(today_ns, st.time_zone)
        counts = self._week_counts(st)
        first = min(dt.date.fromisoformat(p["start_date"]) for p in st.prescriptions.values())
        weekly: list[tuple[dt.date, dict[str, Any] | None, int, int, int]] = []
        for monday in weeks_between(first, today):
            p = _active(st, monday)
            prescribed = _prescribed(p, monday, today) if p else None
            attended, completed = counts.get(monday, [0, 0])
            weekly.append((monday, p, prescribed or 0, attended, completed))
        out: Records = []
        for i, (monday, p, prescribed, attended, completed) in enumerate(weekly):
            if p is None or _prescribed(p, monday, today) is None:
                continue  # no prescription overlaps this week: no row
            window = [w for w in weekly[max(0, i - 3) : i + 1] if w[1] is not None]
            r_p = sum(w[2] for w in window)
            r_a = sum(w[3] for w in window)
            r_c = sum(w[4] for w in window)
            values = [p["prescription_id"], prescribed, attended, completed, r_p, r_a, r_c]
            week = iso_week(monday)
            if st.rows.get(week) == values:
                continue
            st.rows[week] = values
            out.append(
                {
                    "v": RECORD_VERSION,
                    "kind": "adherence",
                    "patient_id": st.patient_id,
                    "clinic_id": st.clinic_id,
                    "prescription_id": values[0],
                    "iso_week": week,
                    "week_start": monday.isoformat(),
                    "time_zone": st.time_zone,
                    "prescribed": prescribed,
                    "attended": attended,
                    "completed": completed,
                    "adherence": _ratio(attended, prescribed),
                    "compliance": _ratio(completed, prescribed),
                    "relative_compliance": _ratio(completed, attended),
                    "rolling4_prescribed": r_p,
                    "rolling4_attended": r_a,
                    "rolling4_completed": r_c,
                    "rolling4_adherence": _ratio(r_a, r_p),
                    "rolling4_compliance": _ratio(r_c, r_p),
                    "emitted_at_ns": now_ns,
                }
            )
        return out

    # --- alerts ----------------------------------------------------------------------------------

    def _raise(self, st: PatientState, rule: str, start: int, ts: int, **kw: Any) -> Records:
        if [rule, start] in st.alerted:
            return []
        st.alerted = [*st.alerted[-199:], [rule, start]]
        return [
            alerts.alert(
                rule, st.patient_id, start, ts, st.clinic_id, patient_id=st.patient_id, **kw
            )
        ]

    def _history(self, st: PatientState) -> list[dict[str, Any]]:
        hist = sorted(
            (s for s in st.sessions.values() if s["reps"] > 0), key=lambda s: s["start_ns"]
        )
        for h in hist:
            p = st.prescriptions.get(h["prescription_id"] or "") or _active(
                st, monday_of(day_of(h["start_ns"], st.time_zone))
            )
            h["prescribed_vl"] = p["max_velocity_loss_pct"] if p else None
        return hist

    def _session_alerts(self, st: PatientState, cur: dict[str, Any], now_ns: int) -> Records:
        s = self.s
        hist = self._history(st)
        if not hist or hist[-1]["session_id"] != cur["session_id"]:
            return []  # a late session: rules look at the newest sessions only
        out: Records = []
        ts = cur["end_ns"]
        hit = alerts.asymmetry_rule(
            hist, s.asi_alert_pct, s.asi_consecutive, s.asi_baseline_delta_pp, WEEK_NS
        )
        if hit:
            start, value, thr, msg = hit
            out += self._raise(
                st, "asymmetry", start, ts, value=value, threshold=thr, message=msg, now_ns=now_ns
            )
        hit = alerts.fatigue_rule(
            hist,
            s.vl_alert_pct,
            s.vl_prescribed_max_pct,
            s.mcv_drop_pct,
            s.mcv_drop_sessions,
            s.reference_load_tolerance_kg,
            WEEK_NS,
        )
        if hit:
            start, value, thr, msg = hit
            out += self._raise(
                st,
                "unusual_fatigue",
                start,
                ts,
                value=value,
                threshold=thr,
                message=msg,
                now_ns=now_ns,
            )
        drops = alerts.mcv_drops(hist, s.mcv_drop_pct, s.reference_load_tolerance_kg, WEEK_NS)
        run = 0
        while run < len(drops) and drops[-1 - run]:
            run += 1
        if run >= 2:
            first = hist[-run]
            span = cur["end_ns"] - first["start_ns"]
            if span > s.performance_drop_persist_h * 3600e9:
                out += self._raise(
                    st,
                    "performance_drop",
                    first["start_ns"],
                    ts,
                    severity="warning",
                    value=span / 3600e9,
                    threshold=s.performance_drop_persist_h,
                    message=(
                        f"MCV at the reference load > {s.mcv_drop_pct:g}% below its 4-week median "
                        f"for {span / 3600e9:.0f} h across {run} sessions: worth a relapse screen"
                    ),
                    now_ns=now_ns,
                )
        return out

    def _lapse_alerts(self, st: PatientState, now_ns: int) -> Records:
        s = self.s
        today = st.today_ns
        tz = st.time_zone
        p = _active(st, monday_of(day_of(today, tz))) if today else None
        if p is None:
            return []
        attended = [x["end_ns"] for x in st.sessions.values()]
        p_start = midnight_ns(dt.date.fromisoformat(p["start_date"]), tz)  # local midnight
        last = max(attended) if attended else p_start
        out: Records = []
        idle_days = calendar_days(last, today, tz)
        if idle_days >= s.lapse_days:
            out += self._raise(
                st,
                "lapse",
                last,
                today,
                value=idle_days,
                threshold=s.lapse_days,
                message=f"no session for {idle_days:.0f} days",
                now_ns=now_ns,
            )
        if idle_days >= s.dropout_days:
            out += self._raise(
                st,
                "dropout_risk",
                last,
                today,
                severity="critical",
                value=idle_days,
                threshold=s.dropout_days,
                message=f"no session for {idle_days:.0f} days: dropout risk",
                now_ns=now_ns,
            )
        out += self._low_adherence(st, today, now_ns)
        return out

    def _low_adherence(self, st: PatientState, today: int, now_ns: int) -> Records:
        """Rolling 4-week adherence of the last *complete* week below the threshold; one
        alert per run of low weeks (keyed by the run's first week)."""
        last_complete = monday_of(day_of(today, st.time_zone)) - dt.timedelta(days=7)
        row = st.rows.get(iso_week(last_complete))
        if row is None or row[4] <= 0:
            return []
        value = row[5] / row[4]
        if value >= self.s.low_adherence:
            st.low_since = None
            return []
        if st.low_since is None:
            st.low_since = midnight_ns(last_complete, st.time_zone)
        return self._raise(
            st,
            "low_adherence",
            st.low_since,
            today,
            value=value,
            threshold=self.s.low_adherence,
            message=f"rolling 4-week adherence {value:.2f} below {self.s.low_adherence:g}",
            now_ns=now_ns,
        )
