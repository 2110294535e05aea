"""Per-machine state of the stream core: everything about one machine, JSON round-trip.

A :class:`MachineState` is what a Faust changelog table stores per machine: the seq
tracker, the samples buffered for the next pipeline run, the conditioner's and the
segmenter's carried state (a rep can be open across frames), the open sessions with
their sets and held records, status counters and alert episodes. The pipeline objects
are rebuilt from JSON with the settings of the processor that uses them.
"""

from __future__ import annotations

import math
from typing import Any

from stream.core import machine_alerts
from stream.core.frames import SeqTracker
from stream.core.jsonstate import detached
from stream.core.machine_sessions import Sessions
from stream.core.metrics import MetricParams
from stream.core.reps import Segmenter, SegmentParams
from stream.core.settings import CoreSettings
from stream.core.signal import Conditioner


class MachineState:
    """Everything the processor knows about one machine; see :meth:`to_json`."""

    def __init__(self, clinic_id: str, machine_id: str, settings: CoreSettings) -> None:
        self.settings = settings  # what the pipeline objects were built with (not persisted)
        self.clinic_id = clinic_id
        self.machine_id = machine_id
        self.seq = SeqTracker(settings.reorder_window)
        self.sessions = Sessions(clinic_id, machine_id)
        self.pipe_key: str | None = None  # session key whose frames are in the pipeline
        self.rate_hz: float | None = None
        self.next_t_ns: int | None = None  # expected time of the next sample
        self.final_t_ns: int | None = None  # time of the last final (conditioned) sample
        # samples waiting for the next pipeline run (batching), as plain lists: t0 of the
        # first one, then position, left, right (gaps already filled); load and replayed
        # flag (0/1), constant over a frame, as runs [samples, load, replayed]
        self.pend_t0: int | None = None
        self.pend: list[list[Any]] = [[], [], []]
        self.pend_runs: list[list[Any]] = []
        self.cond: Conditioner | None = None
        self.seg: Segmenter | None = None
        self.status: dict[str, Any] = {
            "status": None,
            "agent_version": None,
            "firmware": None,
            "rate_hz": None,
            "config_version": None,
            "clock_offset_ms": None,
            "edge_dropped": 0,
            "offline_since_ns": None,
            "last_ts_ns": None,
        }
        self.frames = 0
        self.frames_replayed = 0
        self.emitted_counters: list[Any] = []
        self.calibrated_rom_mm: float | None = None
        self.alerts = machine_alerts.MachineAlertState()
        self.seen_events: list[str] = []

    def to_json(self) -> dict[str, Any]:
        return detached(self._json())

    def _json(self) -> dict[str, Any]:
        return {
            "clinic_id": self.clinic_id,
            "machine_id": self.machine_id,
            "seq": self.seq.to_json(),
            "sessions": self.sessions.to_json(),
            "pipe_key": self.pipe_key,
            "rate_hz": self.rate_hz,
            "next_t_ns": self.next_t_ns,
            "final_t_ns": self.final_t_ns,
            "pend_t0": self.pend_t0,
            "pend": [*(list(r) for r in self.pend), *_expand(self.pend_runs)],
            "cond": self.cond.to_json() if self.cond else None,
            "seg": self.seg.to_json() if self.seg else None,
            "status": dict(self.status),
            "frames": self.frames,
            "frames_replayed": self.frames_replayed,
            "emitted_counters": list(self.emitted_counters),
            "calibrated_rom_mm": self.calibrated_rom_mm,
            "alerts": self.alerts.to_json(),
            "seen_events": list(self.seen_events),
        }

    @classmethod
    def from_json(cls, d: dict[str, Any], settings: CoreSettings | None = None) -> MachineState:
        settings = settings or CoreSettings()
        d = detached(d)
        st = cls(d["clinic_id"], d["machine_id"], settings)
        st.seq.load_json(d["seq"])
        st.sessions.load_json(d["sessions"])
        st.pipe_key = d["pipe_key"]
        st.rate_hz = d["rate_hz"]
        st.next_t_ns = d["next_t_ns"]
        st.final_t_ns = d["final_t_ns"]
        st.pend_t0 = d["pend_t0"]
        st.pend = [list(r) for r in d["pend"][:3]]
        st.pend_runs = _runs(d["pend"][3], d["pend"][4])
        if st.rate_hz is not None and d["cond"] is not None:
            st.cond, st.seg = pipeline(settings, st.rate_hz)
            st.cond.load_json(d["cond"])
            st.seg.load_json(d["seg"])
        st.status = dict(d["status"])
        st.frames = int(d["frames"])
        st.frames_replayed = int(d["frames_replayed"])
        st.emitted_counters = list(d["emitted_counters"])
        st.calibrated_rom_mm = d["calibrated_rom_mm"]
        st.alerts.load_json(d["alerts"])
        st.seen_events = list(d["seen_events"])
        return st


def _expand(runs: list[list[Any]]) -> tuple[list[Any], list[Any]]:
    """The per-sample load and replayed lists of ``pend_runs`` (the JSON form)."""
    load: list[Any] = []
    rep: list[Any] = []
    for count, value, flag in runs:
        load += [value] * count
        rep += [flag] * count
    return load, rep


def _runs(load: list[Any], rep: list[Any]) -> list[list[Any]]:
    runs: list[list[Any]] = []
    for value, flag in zip(load, rep, strict=True):
        if runs and runs[-1][1] == value and runs[-1][2] == flag:
            runs[-1][0] += 1
        else:
            runs.append([1, value, flag])
    return runs


def pipeline(s: CoreSettings, rate_hz: float) -> tuple[Conditioner, Segmenter]:
    cond = Conditioner(
        rate_hz, s.filter_window_s, s.filter_order, max(1, round(s.max_bridge_gap_s * rate_hz))
    )
    seg = Segmenter(segment_params(s, rate_hz))
    return cond, seg


def segment_params(s: CoreSettings, rate_hz: float) -> SegmentParams:
    return SegmentParams(
        rate_hz=rate_hz,
        detect_velocity_ms=s.detect_velocity_ms,
        detect_samples=max(1, math.ceil(s.detect_min_s * rate_hz - 1e-9)),
        min_excursion_mm=s.min_excursion_mm,
        min_rep_gap_s=s.min_rep_gap_s,
        settle_s=s.eccentric_settle_s,
        max_rep_s=s.max_rep_s,
        turn_velocity_ms=s.turn_velocity_ms,
    )


def metric_params(s: CoreSettings, rate_hz: float) -> MetricParams:
    return MetricParams(
        rate_hz=rate_hz,
        pause_velocity_ms=s.pause_velocity_ms,
        pause_samples=round(s.pause_min_s * rate_hz),
        incline_deg=s.incline_deg,
        turn_velocity_ms=s.turn_velocity_ms,
        detect_velocity_ms=s.detect_velocity_ms,
        force_saturation_n=s.force_saturation_n,
        refine_turnarounds=s.refine_turnarounds,
        fit_max_rms_pct=s.fit_max_rms_pct,
    )
