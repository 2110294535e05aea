"""Framing: a machine's samples and events become contract v1 telemetry frames and events.

Pure computation, no I/O: feed ``Sample``/``SourceEvent`` items to a ``Framer`` and it
returns the payloads to store and publish, in order. The rules:

* A frame holds consecutive samples *at rate*, all with the same ``session_id`` and
  ``load_kg``. A frame is cut when it reaches ``frame_samples``, when the session or
  the load changes, when the device clock jumps (a gap longer than ``gap_fill_max``
  missing samples, or time running backwards), and when the rate changes.
* Timestamps may jitter up to a quarter period around the nominal clock.
* Up to ``gap_fill_max`` missing samples inside a run are filled with ``None`` (a
  dropout of every channel; the contract's marker for "no reading"), so short
  sensor hiccups do not fragment frames.
* Every frame has ``MIN_FRAME_SAMPLES``..``MAX_FRAME_SAMPLES`` samples. To make that
  always possible, the framer holds back the last ``MIN_FRAME_SAMPLES`` samples of a
  run (0.1 s at 100 Hz) so a cut can fold a short tail into the previous frame. A run
  shorter than ``MIN_FRAME_SAMPLES`` in total (e.g. a load change 50 ms before a
  check-out) cannot form a valid frame: its samples are dropped and *counted*
  (``runt_samples``), reported in the agent's ``state``.
* Values outside the contract's physical ranges, or non-finite, become ``None`` and
  are counted (``out_of_range_values``), so a broken sensor never makes a frame invalid.
* ``seq`` of telemetry is a per-machine frame counter (0, 1, 2, ... without gaps, so a
  missing seq downstream means a lost frame). Events have their own per-machine counter
  ``seq`` (also gapless); both start where the outbox says (persisted across restarts).
* ``"replayed"`` is always the last key of a payload so the outbox can flip it in the
  stored bytes (see ``edge.outbox``).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any, Final

from edge import contract
from edge.samples import Sample, SourceEvent, SourceItem

DEFAULT_FRAME_SAMPLES: Final = 50
SESSION_RESUME_MAX_NS: Final = 4 * 3600 * 10**9
"""A session restored after an agent restart is kept only if data resumes within 4 h (the
domain's new-session gap); otherwise frames carry no session until the next check-in."""
GAP_FILL_MAX_SAMPLES: Final = 10
"""Missing samples (per run) filled with dropouts instead of cutting the frame (0.1 s at 100 Hz)."""

_SESSION_EVENTS: Final = frozenset({"session_started", "session_ended"})
_NOTHING: Final[list[Outgoing]] = []  # returned, never mutated: callers extend with it
_POS_LO, _POS_HI = contract.POSITION_MM_RANGE
_FORCE_LO, _FORCE_HI = contract.FORCE_N_RANGE
_RESERVED_EVENT_FIELDS: Final = frozenset(
    {"v", "machine_id", "clinic_id", "type", "event_id", "seq", "ts_ns", "replayed"}
)


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One payload ready for the outbox: kind, payload and the number of samples it holds."""

    kind: contract.MessageKind
    payload: dict[str, Any]
    samples: int = 0


@dataclass(slots=True)
class FramerStats:
    frames: int = 0
    events: int = 0
    samples: int = 0
    filled_samples: int = 0
    runt_samples: int = 0
    out_of_range_values: int = 0
    clock_jumps: int = 0
    rejected_events: int = 0
    last_rejection: str = ""


@dataclass(slots=True)
class _Run:
    """Consecutive samples at rate sharing one session and load."""

    t0_ns: int
    session_id: str | None
    load_kg: float
    position: list[float | None] = field(default_factory=list)
    left: list[float | None] = field(default_factory=list)
    right: list[float | None] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.position)


class Framer:
    """Turns one machine's items into frames and events; see the module docstring."""

    def __init__(
        self,
        clinic_id: str,
        machine_id: str,
        rate_hz: float,
        frame_samples: int = DEFAULT_FRAME_SAMPLES,
        next_seq: int = 0,
        next_event_seq: int = 0,
        gap_fill_max: int = GAP_FILL_MAX_SAMPLES,
        decimation: int = 1,
        resume_session: tuple[str, int] | None = None,
    ) -> None:
        contract.check_id("clinic_id", clinic_id)
        contract.check_id("machine_id", machine_id)
        self.clinic_id = clinic_id
        self.machine_id = machine_id
        self.next_seq = next_seq
        self.next_event_seq = next_event_seq
        self.gap_fill_max = gap_fill_max
        self.stats = FramerStats()
        self.session_id: str | None = None
        self.seen_ns = 0
        """Device time of the last event or just after the last framed sample (persisted
        with the session, for resuming it after a restart)."""
        self._resume_deadline_ns: int | None = None
        if resume_session is not None:
            # after a restart mid-session, frames keep the session the machine is still in,
            # unless the first sample comes so late that the session must have ended
            self.session_id, seen_ns = resume_session
            self._resume_deadline_ns = seen_ns + SESSION_RESUME_MAX_NS
        self._run: _Run | None = None
        self._source_rate_hz = rate_hz
        self._rate_hz = rate_hz
        self._decimation = 1
        self._decimate_phase = 0
        self.frame_samples = DEFAULT_FRAME_SAMPLES
        self.set_frame_samples(frame_samples)
        self.set_rate(rate_hz, decimation)

    # --- configuration -------------------------------------------------------------------

    @property
    def rate_hz(self) -> float:
        """The rate of the frames: source rate divided by the decimation factor."""
        return self._rate_hz

    def set_frame_samples(self, n: int) -> list[Outgoing]:
        if not contract.MIN_FRAME_SAMPLES <= n <= contract.MAX_FRAME_SAMPLES:
            raise ValueError(f"frame_samples {n} outside {contract.MIN_FRAME_SAMPLES}..100")
        out = self.flush() if n < self.frame_samples else []
        self.frame_samples = n
        return out

    def set_rate(self, source_rate_hz: float, decimation: int = 1) -> list[Outgoing]:
        """Change the source rate and/or decimation; the current run is flushed first."""
        rate = source_rate_hz / decimation
        if decimation < 1 or not contract.RATE_HZ_RANGE[0] <= rate <= contract.RATE_HZ_RANGE[1]:
            raise ValueError(f"rate {source_rate_hz} Hz / {decimation} outside the contract range")
        out = self.flush()
        self._source_rate_hz = source_rate_hz
        self._decimation = decimation
        self._rate_hz = rate
        self._decimate_phase = 0
        return out

    # --- feeding ---------------------------------------------------------------------------

    def feed(self, item: SourceItem) -> list[Outgoing]:
        if isinstance(item, Sample):
            return self._sample(item)
        return self._event(item)

    def flush(self) -> list[Outgoing]:
        """Emit everything buffered (end of source, shutdown, configuration change)."""
        run, self._run = self._run, None
        return self._close(run) if run is not None else []

    def _sample(self, s: Sample) -> list[Outgoing]:
        """The hot path (every sample): keep it free of calls and allocations."""
        if self._resume_deadline_ns is not None:
            if s.t_ns > self._resume_deadline_ns:
                self.session_id = None
            self._resume_deadline_ns = None
        if self._decimation > 1:
            self._decimate_phase = (self._decimate_phase + 1) % self._decimation
            if self._decimate_phase != 1:
                return _NOTHING
        out = _NOTHING
        run = self._run
        if run is not None:
            if run.session_id != self.session_id or run.load_kg != s.load_kg:
                out = self.flush()
                run = None
            else:
                n = len(run.position)
                period_ns = 1e9 / self._rate_hz
                if abs(s.t_ns - run.t0_ns - n * period_ns) >= period_ns / 2:  # not the next slot
                    missing = round((s.t_ns - run.t0_ns) / period_ns) - n
                    if missing < 0 or missing > self.gap_fill_max:
                        self.stats.clock_jumps += 1
                        out = self.flush()
                        run = None
                    else:
                        for _ in range(missing):
                            self._append(run, None, None, None)
                        self.stats.filled_samples += missing
        if run is None:
            run = self._run = _Run(s.t_ns, self.session_id, s.load_kg)
        st = self.stats
        st.samples += 1
        # out-of-range and non-finite values become dropouts (NaN fails every comparison)
        p, left, right = s.position_mm, s.force_left_n, s.force_right_n
        if p is not None and not _POS_LO <= p <= _POS_HI:
            p = None
            st.out_of_range_values += 1
        if left is not None and not _FORCE_LO <= left <= _FORCE_HI:
            left = None
            st.out_of_range_values += 1
        if right is not None and not _FORCE_LO <= right <= _FORCE_HI:
            right = None
            st.out_of_range_values += 1
        run.position.append(p)
        run.left.append(left)
        run.right.append(right)
        if len(run.position) >= self.frame_samples + contract.MIN_FRAME_SAMPLES:
            out = [*out, self._frame(run, self.frame_samples)]
        return out

    @staticmethod
    def _append(run: _Run, p: float | None, left: float | None, right: float | None) -> None:
        run.position.append(p)
        run.left.append(left)
        run.right.append(right)

    def _close(self, run: _Run) -> list[Outgoing]:
        """Emit a run's tail as one frame, or two when it is too long for one."""
        n = len(run)
        if n < contract.MIN_FRAME_SAMPLES:
            self.stats.runt_samples += n
            return []
        if n <= contract.MAX_FRAME_SAMPLES:
            return [self._frame(run, n)]
        first = self._frame(run, n - contract.MIN_FRAME_SAMPLES)
        return [first, self._frame(run, contract.MIN_FRAME_SAMPLES)]

    def _frame(self, run: _Run, n: int) -> Outgoing:
        payload: dict[str, Any] = {
            "v": contract.SCHEMA_VERSION,
            "machine_id": self.machine_id,
            "clinic_id": self.clinic_id,
            "seq": self.next_seq,
            "session_id": run.session_id,
            "t0_ns": run.t0_ns,
            "rate_hz": self.rate_hz,
            "load_kg": run.load_kg,
            "position_mm": run.position[:n],
            "force_left_n": run.left[:n],
            "force_right_n": run.right[:n],
            "replayed": False,
        }
        del run.position[:n], run.left[:n], run.right[:n]
        run.t0_ns += round(n * 1e9 / self.rate_hz)
        self.seen_ns = max(self.seen_ns, run.t0_ns)
        self.next_seq += 1
        self.stats.frames += 1
        return Outgoing("telemetry", payload, n)

    def _event(self, e: SourceEvent) -> list[Outgoing]:
        out: list[Outgoing] = []
        fields = {k: v for k, v in e.fields.items() if k not in _RESERVED_EVENT_FIELDS}
        session_id = self.session_id
        if e.type == "session_started":
            session_id = fields.get("session_id")
        fields["session_id"] = session_id
        payload: dict[str, Any] = {
            "v": contract.SCHEMA_VERSION,
            "machine_id": self.machine_id,
            "clinic_id": self.clinic_id,
            "type": e.type,
            "event_id": str(uuid.uuid4()),
            "seq": self.next_event_seq,
            "ts_ns": e.t_ns,
            **fields,
            "replayed": False,
        }
        try:
            contract.validate_event(payload)
        except contract.ContractError as exc:
            self.stats.rejected_events += 1
            self.stats.last_rejection = f"{e.type}: {exc.reason}: {exc.detail}"[:200]
            return out
        self.seen_ns = max(self.seen_ns, e.t_ns)
        if e.type in _SESSION_EVENTS:
            out += self.flush()  # the frames before the check-in/out keep their session
            self.session_id = session_id if e.type == "session_started" else None
        self.next_event_seq += 1
        self.stats.events += 1
        out.append(Outgoing("event", payload))
        return out
