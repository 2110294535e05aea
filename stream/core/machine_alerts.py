"""Machine alert rules: frame gaps, sensor faults, clock skew, offline beyond a grace.

Every alert's ``window_start_ns`` is an event-time fact (the first frame after a gap,
the first bad sample of an episode, the state message's timestamp, the time the machine
went offline), so replays re-emit the same natural key.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from stream.core.alerts import alert
from stream.core.settings import CoreSettings

if TYPE_CHECKING:
    from stream.core.frames import Gap
    from stream.core.machine_state import MachineState

Records = list[dict[str, Any]]
EPISODE_QUIET_S = 600.0
"""A sensor-fault episode ends after this long without the fault; the next one is a new alert."""


class MachineAlertState:
    def __init__(self) -> None:
        self.saturated: list[int] | None = None  # [episode start, last seen] ns
        self.flat: dict[str, list[float]] = {}  # channel -> [value, since_ns, moved_mm]
        self.flat_alerted: dict[str, int] = {}  # channel -> episode start already alerted
        self.offline_alerted: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "saturated": self.saturated,
            "flat": self.flat,
            "flat_alerted": self.flat_alerted,
            "offline_alerted": self.offline_alerted,
        }

    def load_json(self, d: dict[str, Any]) -> None:
        self.saturated = d["saturated"]
        self.flat = d["flat"]
        self.flat_alerted = d["flat_alerted"]
        self.offline_alerted = d["offline_alerted"]


def _machine_alert(st: MachineState, rule: str, start: int, ts: int, **kw: Any) -> dict[str, Any]:
    return alert(rule, st.machine_id, start, ts, st.clinic_id, machine_id=st.machine_id, **kw)


def frame_gap(st: MachineState, gap: Gap, s: CoreSettings, now_ns: int) -> Records:
    if gap.count < s.frame_gap_alert_count:
        return []
    t = int(gap.before["t0_ns"])
    return [
        _machine_alert(
            st,
            "frame_gap",
            t,
            t,
            severity="warning",
            value=float(gap.count),
            threshold=float(s.frame_gap_alert_count),
            message=f"{gap.count} frame(s) lost from seq {gap.first_seq}",
            now_ns=now_ns,
        )
    ]


def check_frame(
    st: MachineState,
    rows: npt.NDArray[np.float64],
    t: npt.NDArray[np.int64],
    s: CoreSettings,
    now_ns: int,
) -> Records:
    """Saturated force samples and flat (stuck) force channels while the sled moves."""
    out: Records = []
    a = st.alerts
    t_end = int(t[-1])
    forces = rows[1:3]
    peak = float(np.fmax.reduce(forces, axis=None))
    first_sat = (
        _sustained(forces, s.force_saturation_n, s.saturation_min_samples)
        if peak >= s.force_saturation_n
        else None
    )
    if first_sat is not None:
        first = int(t[first_sat])
        if a.saturated is None or first - a.saturated[1] > EPISODE_QUIET_S * 1e9:
            a.saturated = [first, t_end]
            out.append(
                _machine_alert(
                    st,
                    "sensor_fault",
                    first,
                    first,
                    severity="warning",
                    value=peak,
                    threshold=s.force_saturation_n,
                    message="force channel saturated",
                    now_ns=now_ns,
                )
            )
        a.saturated[1] = t_end
    # max − min per channel (np.ptp without its wrapper): NaN when a sample is missing
    spread = np.maximum.reduce(forces, axis=1) - np.minimum.reduce(forces, axis=1)
    if not (spread == 0).any():
        if a.flat:
            a.flat.clear()
        return out
    x = rows[0]
    moved = float(np.fmax.reduce(x) - np.fmin.reduce(x)) if x.size else 0.0
    moved = 0.0 if math.isnan(moved) else moved
    for i, ch in enumerate(("force_left_n", "force_right_n")):
        if spread[i] != 0:
            a.flat.pop(ch, None)
            continue
        value = float(forces[i, 0])
        run = a.flat.get(ch)
        if run is None or run[0] != value:
            run = a.flat[ch] = [value, float(int(t[0])), 0.0]
        run[2] += moved
        since = int(run[1])
        if (
            t_end - since >= s.flat_channel_s * 1e9
            and run[2] >= s.min_rom_mm
            and a.flat_alerted.get(ch) != since
        ):
            a.flat_alerted[ch] = since
            out.append(
                _machine_alert(
                    st,
                    "sensor_fault",
                    since,
                    t_end,
                    severity="warning",
                    value=value,
                    threshold=s.flat_channel_s,
                    message=f"{ch} flat at {value:g} N for ≥ {s.flat_channel_s:g} s while moving",
                    now_ns=now_ns,
                )
            )
    return out


def _sustained(forces: npt.NDArray[np.float64], level: float, n: int) -> int | None:
    """Index where a channel first stays at/above ``level`` for ``n`` samples (a one-off
    spike is noise, a saturated load cell stays saturated)."""
    with np.errstate(invalid="ignore"):
        high = forces >= level
    best: int | None = None
    for row in high:
        edges = np.diff(np.concatenate(([0], row.astype(np.int8), [0])))
        starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
        long = starts[(ends - starts) >= n]
        if long.size and (best is None or int(long[0]) < best):
            best = int(long[0])
    return best


def fault_event(st: MachineState, event: dict[str, Any], now_ns: int) -> Records:
    ts = int(event["ts_ns"])
    code = str(event.get("code", "fault"))
    detail = str(event.get("detail", ""))
    return [
        _machine_alert(
            st,
            "sensor_fault",
            ts,
            ts,
            severity="warning",
            message=f"{code}: {detail}"[:500],
            now_ns=now_ns,
        )
    ]


def clock_skew(
    st: MachineState, msg: dict[str, Any], ts: int, s: CoreSettings, now_ns: int
) -> Records:
    offset = msg.get("clock_offset_ms")
    if offset is None or abs(float(offset)) <= s.clock_skew_bound_ms:
        return []
    return [
        _machine_alert(
            st,
            "clock_skew",
            ts,
            ts,
            severity="warning",
            value=float(offset),
            threshold=s.clock_skew_bound_ms,
            message=f"device clock off by {float(offset):.0f} ms",
            now_ns=now_ns,
        )
    ]


def offline(st: MachineState, now_ns: int, s: CoreSettings) -> Records:
    since = st.status["offline_since_ns"]
    if since is None or st.alerts.offline_alerted == since:
        return []
    if now_ns - since < s.machine_offline_grace_s * 1e9:
        return []
    st.alerts.offline_alerted = since
    return [
        _machine_alert(
            st,
            "machine_offline",
            since,
            now_ns,
            severity="critical",
            value=(now_ns - since) / 1e9,
            threshold=s.machine_offline_grace_s,
            message=f"offline for more than {s.machine_offline_grace_s:g} s",
            now_ns=now_ns,
        )
    ]
