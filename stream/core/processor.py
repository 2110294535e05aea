"""Per-machine processing: frames, events and state messages in, output records out.

:class:`MachineProcessor` is stateless; everything about one machine lives in its
:class:`MachineState` (JSON round-trip for a Faust changelog table), mutated in place.
All domain logic runs on *event time* (sample and event timestamps); ``now_ns`` is used
only for ``emitted_at_ns`` and, in :meth:`MachineProcessor.on_tick`, as the clock that
ends idle sessions and measures the offline grace.

Flow of one frame: seq dedup/reorder (:mod:`.frames`) → continuity check (short clock
gaps become dropouts, long ones or a rate change a break) → :class:`.signal.Conditioner`
→ :class:`.reps.Segmenter` → :func:`.metrics.rep_metrics` → set/session bookkeeping
(:mod:`.machine_sessions`) → records. Frames can precede their ``session_started``
event (separate topics): that session's records are held until the check-in arrives.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import numpy.typing as npt

from stream.core import machine_alerts
from stream.core.machine_sessions import ANON
from stream.core.machine_state import MachineState, metric_params, pipeline
from stream.core.metrics import MetricParams
from stream.core.settings import CoreSettings
from stream.core.signal import Conditioned
from stream.core.timeline import Step
from stream.records import RECORD_VERSION

__all__ = ["REJECTED", "MachineProcessor", "MachineState", "rejected"]

REJECTED = "rejected"
"""Record kind of an input the core refuses (see :func:`rejected`); never a Kafka record."""

log = logging.getLogger(__name__)


class MachineProcessor:
    def __init__(self, settings: CoreSettings | None = None) -> None:
        self.s = settings or CoreSettings()
        # per sample rate: MetricParams, and sample time offsets from a batch's first
        # sample (element i depends only on i, so one growing array serves every length)
        self._metric_params: dict[float, MetricParams] = {}
        self._offsets_ns: dict[float, npt.NDArray[np.int64]] = {}

    def new_state(self, clinic_id: str, machine_id: str) -> MachineState:
        return MachineState(clinic_id, machine_id, self.s)

    def _bind(self, st: MachineState) -> None:
        """Rebuild the pipeline objects with this processor's settings when the state was
        loaded (``from_json``) with other ones; their JSON state carries over."""
        if st.settings is self.s or st.settings == self.s:
            st.settings = self.s
            return
        if st.cond is not None and st.seg is not None and st.rate_hz is not None:
            cj, sj = st.cond.to_json(), st.seg.to_json()
            st.cond, st.seg = pipeline(self.s, st.rate_hz)
            st.cond.load_json(cj)
            st.seg.load_json(sj)
        st.seq.window = self.s.reorder_window
        st.settings = self.s

    def on_step(
        self, state: MachineState, step: Step, wall_ns: int | None = None
    ) -> list[dict[str, Any]]:
        """One step of the machine's :class:`stream.core.timeline.Timeline`: a frame, an
        event, a state message or a tick, at the machine's own clock."""
        kind, payload, now_ns = step
        if kind == "telemetry":
            return self.on_frame(state, payload or {}, now_ns)
        if kind == "event":
            return self.on_event(state, payload or {}, now_ns)
        if kind == "state":
            return self.on_state(state, payload or {}, now_ns, wall_ns)
        return self.on_tick(state, now_ns)

    # --- telemetry ----------------------------------------------------------------------------

    def on_frame(
        self, state: MachineState, frame: dict[str, Any], now_ns: int
    ) -> list[dict[str, Any]]:
        self._bind(state)
        out: list[dict[str, Any]] = []
        late = state.seq.late
        ready, gaps = state.seq.accept(frame)
        if state.seq.late != late:
            out.append(
                rejected(
                    frame,
                    "late_frame",
                    f"machine {state.machine_id}: frame seq {frame.get('seq')} came after its "
                    "slot was given up as a gap",
                )
            )
        self._after_seq(state, ready, gaps, now_ns, out)
        return out

    def _after_seq(
        self,
        st: MachineState,
        ready: list[dict[str, Any]],
        gaps: list[Any],
        now_ns: int,
        out: list[dict[str, Any]],
    ) -> None:
        for gap in gaps:
            out += machine_alerts.frame_gap(st, gap, self.s, now_ns)
        for f in ready:
            self._process(st, f, now_ns, out)

    def _process(
        self, st: MachineState, f: dict[str, Any], now_ns: int, out: list[dict[str, Any]]
    ) -> None:
        sid = f.get("session_id")
        if sid is not None and st.sessions.is_closed(sid):
            st.sessions.late_frames += 1
            out.append(
                rejected(
                    f,
                    "closed_session",
                    f"machine {st.machine_id}: frame seq {f.get('seq')} of session {sid}, "
                    "which was already finalized",
                )
            )
            return
        st.frames += 1
        st.frames_replayed += 1 if f.get("replayed") else 0
        key = sid if sid is not None else ANON
        if key != st.pipe_key:
            self._flushpipeline(st, now_ns, out)
            prev = st.pipe_key
            st.pipe_key = key
            if prev is not None:
                out += st.sessions.maybe_finalize(prev, self.s, now_ns, pipeline_left=True)
        rate = float(f["rate_hz"])
        pos = f["position_mm"]
        n = len(pos)
        period = 1e9 / rate
        t0 = int(f["t0_ns"])
        if st.rate_hz != rate or st.cond is None:
            self._flushpipeline(st, now_ns, out)
            st.rate_hz = rate
            st.cond, st.seg = pipeline(self.s, rate)
        elif st.next_t_ns is not None:
            gap = t0 - st.next_t_ns
            if abs(gap) >= period / 2:
                slots = round(gap / period)
                if 0 < slots <= st.cond.max_bridge and st.pend_t0 is not None:
                    self._append(
                        st, st.next_t_ns, [None] * slots, [None] * slots, [None] * slots, 0.0, False
                    )  # short clock gap: dropouts
                else:  # long gap or time running backwards: a break
                    self._flushpipeline(st, now_ns, out, keep_rate=True)
        sess = st.sessions.for_frames(key, sid, t0)
        self._append(
            st,
            t0,
            pos,
            f["force_left_n"],
            f["force_right_n"],
            float(f["load_kg"]),
            bool(f.get("replayed")),
        )
        st.next_t_ns = t0 + round(n * period)
        sess.touch(t0 + round((n - 1) * period))
        if len(st.pend[0]) >= self.s.batch_samples:
            self._drain(st, now_ns, out)
            out += st.sessions.close_set_if_rested(
                st.pipe_key, st.final_t_ns, st.seg, self.s, now_ns
            )
        out += st.sessions.release_overdue(st.next_t_ns, self.s, now_ns)

    @staticmethod
    def _append(
        st: MachineState,
        t0: int,
        pos: list[Any],
        left: list[Any],
        right: list[Any],
        load: float,
        replayed: bool,
    ) -> None:
        if st.pend_t0 is None:
            st.pend_t0 = t0
        p = st.pend
        p[0] += pos
        p[1] += left
        p[2] += right
        rep = 1.0 if replayed else 0.0
        runs = st.pend_runs
        if runs and runs[-1][1] == load and runs[-1][2] == rep:
            runs[-1][0] += len(pos)
        else:
            runs.append([len(pos), load, rep])

    def _drain(self, st: MachineState, now_ns: int, out: list[dict[str, Any]]) -> None:
        """Run the buffered samples through the conditioner and the segmenter."""
        if st.cond is None or st.pend_t0 is None or st.rate_hz is None:
            return
        n = len(st.pend[0])
        rows = np.empty((5, n))
        rows[:3] = st.pend  # None (a dropout) becomes NaN
        k = 0
        for count, load, rep in st.pend_runs:
            rows[3, k : k + count] = load
            rows[4, k : k + count] = rep
            k += count
        t = st.pend_t0 + self._offsets(st.rate_hz, n)
        st.pend_t0 = None
        st.pend = [[], [], []]
        st.pend_runs = []
        out += machine_alerts.check_frame(st, rows, t, self.s, now_ns)
        self._feed(st, st.cond.push(t, rows), now_ns, out)

    def _offsets(self, rate_hz: float, n: int) -> npt.NDArray[np.int64]:
        """Sample i's time after a batch's first sample, ns: round(i × period)."""
        offsets = self._offsets_ns.get(rate_hz)
        if offsets is None or offsets.shape[0] < n:
            size = max(n, 2 * self.s.batch_samples)
            offsets = np.round(np.arange(size) * (1e9 / rate_hz)).astype(np.int64)
            self._offsets_ns[rate_hz] = offsets
        return offsets[:n]

    def _mp(self, rate_hz: float) -> MetricParams:
        mp = self._metric_params.get(rate_hz)
        if mp is None:
            mp = self._metric_params[rate_hz] = metric_params(self.s, rate_hz)
        return mp

    def _feed(
        self, st: MachineState, blocks: list[Conditioned], now_ns: int, out: list[dict[str, Any]]
    ) -> None:
        assert st.seg is not None
        assert st.rate_hz is not None
        mp = self._mp(st.rate_hz)
        for block in blocks:
            if len(block):
                st.final_t_ns = int(block.t[-1])
            for segment in st.seg.feed(block):
                out += st.sessions.add_rep(
                    st.pipe_key, segment, mp, st.calibrated_rom_mm, self.s, now_ns
                )

    def _flushpipeline(
        self, st: MachineState, now_ns: int, out: list[dict[str, Any]], keep_rate: bool = False
    ) -> None:
        """Finish every rep of the pipeline's session (break, session switch, idle)."""
        self._drain(st, now_ns, out)
        if st.cond is not None and st.seg is not None and st.rate_hz is not None:
            self._feed(st, st.cond.flush(), now_ns, out)
            mp = self._mp(st.rate_hz)
            for segment in st.seg.flush():
                out += st.sessions.add_rep(
                    st.pipe_key, segment, mp, st.calibrated_rom_mm, self.s, now_ns
                )
        if not keep_rate:
            st.cond = st.seg = None
            st.rate_hz = None
        st.next_t_ns = None

    # --- events and state ---------------------------------------------------------------------

    def on_event(
        self, state: MachineState, event: dict[str, Any], now_ns: int
    ) -> list[dict[str, Any]]:
        st = state
        self._bind(st)
        event_id = str(event.get("event_id", ""))
        if event_id and event_id in st.seen_events:
            return []
        if event_id:
            st.seen_events = [*st.seen_events[-255:], event_id]
        out: list[dict[str, Any]] = []
        etype = event.get("type")
        ts = int(event["ts_ns"])
        if etype == "session_started":
            out += st.sessions.check_in(event, self.s, now_ns)
        elif etype == "session_ended":
            sid = str(event["session_id"])
            if st.sessions.check_out(sid, ts):
                if st.pipe_key == sid:  # its frames are flowing: complete up to check-out?
                    ready = (
                        not st.seq.held
                        and st.next_t_ns is not None
                        and st.next_t_ns >= ts - self.s.session_end_tolerance_s * 1e9
                    )
                else:  # the frames moved on past it, or none came yet (the tick decides)
                    ready = st.sessions.has_frames(sid)
                if ready and st.pipe_key == sid:
                    self._flushpipeline(st, now_ns, out)
                    st.pipe_key = None
                if ready:
                    out += st.sessions.maybe_finalize(sid, self.s, now_ns, pipeline_left=True)
        elif etype == "calibrated":
            st.calibrated_rom_mm = float(event["usable_rom_mm"])
        elif etype == "fault":
            out += machine_alerts.fault_event(st, event, now_ns)
        return out

    def on_state(
        self, state: MachineState, msg: dict[str, Any], now_ns: int, wall_ns: int | None = None
    ) -> list[dict[str, Any]]:
        """A birth/death message. ``wall_ns`` (platform time at arrival) dates an
        ``offline`` last will, which carries no time of its own."""
        st = state
        self._bind(st)
        status = msg.get("status")
        ts = int(msg.get("ts_ns") or st.status["last_ts_ns"] or now_ns)
        st.status["status"] = status
        st.status["last_ts_ns"] = ts
        for k in ("agent_version", "firmware", "rate_hz", "config_version", "clock_offset_ms"):
            if k in msg:
                st.status[k] = msg[k]
        if msg.get("outbox_dropped") is not None:
            st.status["edge_dropped"] = int(msg["outbox_dropped"])
        if status == "offline":
            if st.status["offline_since_ns"] is None:
                st.status["offline_since_ns"] = int(msg.get("ts_ns") or wall_ns or now_ns)
        else:
            st.status["offline_since_ns"] = None
        out = [self._status_record(st, ts, now_ns)]
        out += machine_alerts.clock_skew(st, msg, ts, self.s, now_ns)
        return out

    def on_tick(self, state: MachineState, now_ns: int) -> list[dict[str, Any]]:
        """The machine's clock stands at ``now_ns``: finish what its silence finishes.

        While frames wait in the reorder buffer behind a missing seq, the machine is not
        quiet (its data is only out of order): nothing is flushed or finalized then.
        """
        st, s = state, self.s
        self._bind(st)
        out: list[dict[str, Any]] = []
        if st.seq.held:
            out += st.sessions.release_overdue(now_ns, s, now_ns)
            return out
        # the machine went quiet: finish the pipeline's reps and the open set
        if st.next_t_ns is not None and now_ns - st.next_t_ns >= s.quiet_flush_s * 1e9:
            key = st.pipe_key
            self._flushpipeline(st, now_ns, out)
            st.pipe_key = None
            if key is not None:
                out += st.sessions.close_set(key, s, now_ns)
                out += st.sessions.maybe_finalize(key, s, now_ns, pipeline_left=True)
        for sid, reason in st.sessions.due(now_ns, s):
            if st.pipe_key == sid or (st.pipe_key == ANON and sid == st.sessions.anon_sid):
                self._flushpipeline(st, now_ns, out)
                st.pipe_key = None
            out += st.sessions.finalize_key(sid, reason, s, now_ns)
        out += st.sessions.release_overdue(now_ns, s, now_ns)
        out += self._status_if_changed(st, now_ns)
        return out

    def _status_if_changed(self, st: MachineState, now_ns: int) -> list[dict[str, Any]]:
        """A machine_status record when its frame counters moved since the last one."""
        if st.frames and _counters(st) != st.emitted_counters:
            ts = st.next_t_ns or st.status["last_ts_ns"] or now_ns
            return [self._status_record(st, int(ts), now_ns)]
        return []

    def on_silence(
        self, state: MachineState, clock_ns: int, silent_ns: int, wall_ns: int
    ) -> list[dict[str, Any]]:
        """Liveness, driven by the wall clock: the machine has sent nothing for
        ``silent_ns``. Its clock stands at ``clock_ns`` (device time).

        * the offline grace is judged by wall time (an ``offline`` message's own host
          time, or its arrival);
        * after ``reorder_hold_s`` of silence, frames held behind a missing seq are
          released (the gap is given up; a frame arriving later for it is rejected as
          ``late_frame``). Besides a full reorder buffer, this is the only way a hole is
          given up: never by device time, which runs ahead by minutes in a backlog burst
          while the missing frame is still on its way through another bridge;
        * after the session gap (``session_idle_s``), the machine is ticked at
          ``clock_ns + silent_ns``: its open set and session are closed as they would be
          had its clock run on. Shorter silences (a network outage, a reconnect backlog)
          close nothing: a set resumed after them stays one set;
        * the machine's frame counters (duplicates, gaps, replayed) are reported when they
          moved since its last status record.
        """
        st, s = state, self.s
        self._bind(st)
        out = machine_alerts.offline(st, wall_ns, s)
        if st.seq.held and silent_ns >= s.reorder_hold_s * 1e9:
            ready, gaps = st.seq.release_all()
            self._after_seq(st, ready, gaps, clock_ns, out)
        if silent_ns >= s.session_idle_s * 1e9:
            out += self.on_tick(st, clock_ns + silent_ns)
        else:
            out += self._status_if_changed(st, clock_ns)
        return out

    def _status_record(self, st: MachineState, ts_ns: int, now_ns: int) -> dict[str, Any]:
        st.emitted_counters = _counters(st)
        last_seq = None if st.seq.next_seq is None else st.seq.next_seq - 1
        rate = st.status["rate_hz"]
        offset = st.status["clock_offset_ms"]
        cfg = st.status["config_version"]
        return {
            "v": RECORD_VERSION,
            "kind": "machine_status",
            "machine_id": st.machine_id,
            "clinic_id": st.clinic_id,
            "ts_ns": ts_ns,
            "status": st.status["status"] or "online",
            "agent_version": st.status["agent_version"],
            "firmware": st.status["firmware"],
            "rate_hz": None if rate is None else float(rate),
            "config_version": None if cfg is None else int(cfg),
            "clock_offset_ms": None if offset is None else float(offset),
            "frames": st.frames,
            "frames_replayed": st.frames_replayed,
            "frames_duplicate": st.seq.duplicates,
            "frames_missing": st.seq.missing_total,
            "edge_dropped": st.status["edge_dropped"],
            "last_seq": last_seq,
            "emitted_at_ns": now_ns,
        }


def rejected(payload: dict[str, Any], reason: str, detail: str) -> dict[str, Any]:
    """An input the core will not process: the adapter dead-letters it with ``reason``,
    counts it and logs it at WARNING (never a silent drop)."""
    return {"kind": REJECTED, "reason": reason, "detail": detail, "input": payload}


def _counters(st: MachineState) -> list[int]:
    return [
        st.frames,
        st.frames_replayed,
        st.seq.duplicates,
        st.seq.missing_total,
        int(st.status["edge_dropped"]),
    ]
