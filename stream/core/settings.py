"""Every threshold of the pure core, named and documented (``SLEDFLEET_CORE_*``).

Values marked *(ours)* in ``/work/shared/DOMAIN.md`` are our choices; the rest
follow the cited sources (OpenBarbell, Sánchez-Medina 2010/2011, MoXFo, Keiser).
"""

from __future__ import annotations

from dataclasses import dataclass

from edge.settings import env, load

NS_PER_S = 1_000_000_000
DAY_NS = 86_400 * NS_PER_S


@dataclass(frozen=True, slots=True)
class CoreSettings:
    # --- signal conditioning ---
    filter_window_s: float = env("SLEDFLEET_CORE_FILTER_WINDOW_S", 0.15)
    """Savitzky–Golay window (zero-phase low-pass; 15 samples at 100 Hz). With
    ``filter_order`` 3 its cutoff is ≈ 4/(3.2·N − 4.6)·rate ≈ 9 Hz: movement passes,
    sensor noise and most 7–10 Hz tremor do not."""
    filter_order: int = env("SLEDFLEET_CORE_FILTER_ORDER", 3)
    incline_deg: float = env("SLEDFLEET_CORE_INCLINE_DEG", 45.0)
    """Sled rail incline θ: MPV propulsive rule a ≥ −g·sin θ and F = m(a + g·sin θ)."""
    dropout_flag_samples: int = env("SLEDFLEET_CORE_DROPOUT_FLAG_SAMPLES", 1)
    """A rep overlapping a position dropout of at least this many samples is counted in
    ``dropout_samples`` (gaps are marked, never silently interpolated in the output)."""
    max_bridge_gap_s: float = env("SLEDFLEET_CORE_MAX_BRIDGE_GAP_S", 0.25)
    """Dropouts up to this long are bridged linearly *only* to keep the filter running;
    longer gaps reset the segmenter (an open rep is closed as partial)."""
    batch_samples: int = env("SLEDFLEET_CORE_BATCH_SAMPLES", 200)
    """Samples buffered per machine before the pipeline runs (4 frames of 50): amortises
    per-call overhead; adds at most batch/rate (2 s at 100 Hz) of latency to rep records."""
    # --- repetition segmentation ---
    detect_velocity_ms: float = env("SLEDFLEET_CORE_DETECT_VELOCITY_MS", 0.05)
    """Concentric phase detected when v exceeds this (OpenBarbell ~0.05 m/s)..."""
    detect_min_s: float = env("SLEDFLEET_CORE_DETECT_MIN_S", 0.05)
    """...for at least this long (ours: 50 ms)."""
    min_rom_mm: float = env("SLEDFLEET_CORE_MIN_ROM_MM", 150.0)
    """A rep counts only with concentric ROM ≥ max(this, fraction × calibrated ROM)."""
    min_rom_fraction: float = env("SLEDFLEET_CORE_MIN_ROM_FRACTION", 0.5)
    pause_velocity_ms: float = env("SLEDFLEET_CORE_PAUSE_VELOCITY_MS", 0.01)
    """|v| below this for longer than ``pause_min_s`` is a pause, excluded from durations."""
    pause_min_s: float = env("SLEDFLEET_CORE_PAUSE_MIN_S", 0.26)
    min_rep_gap_s: float = env("SLEDFLEET_CORE_MIN_REP_GAP_S", 0.3)
    """Reps at least this far apart (ours); closer concentric detections merge."""
    min_excursion_mm: float = env("SLEDFLEET_CORE_MIN_EXCURSION_MM", 20.0)
    """A concentric detection or a top reversal needs the sled to travel at least this:
    tremor and jitter of a few mm never start or split a rep (ours)."""
    turn_velocity_ms: float = env("SLEDFLEET_CORE_TURN_VELOCITY_MS", 0.01)
    """Turnaround points are where |v| falls to this (the pause band): above filtered
    sensor noise, within ~10 ms of the true v = 0 of a stroke."""
    refine_turnarounds: bool = env("SLEDFLEET_CORE_REFINE_TURNAROUNDS", True)
    """Refine concentric turnarounds by a minimum-jerk fit of the stroke (see
    ``stream.core.turnarounds``); off = the velocity-threshold turnarounds."""
    fit_max_rms_pct: float = env("SLEDFLEET_CORE_FIT_MAX_RMS_PCT", 2.0)
    """The fit is used only if its RMS residual is below this % of the ROM."""
    max_rep_s: float = env("SLEDFLEET_CORE_MAX_REP_S", 30.0)
    """A phase longer than this is closed where it stands (bounds the rep buffer)."""
    eccentric_settle_s: float = env("SLEDFLEET_CORE_ECCENTRIC_SETTLE_S", 1.0)
    """Eccentric phase ends at the next concentric onset or after velocity has stayed
    within the pause band this long (the sled rests at the bottom)."""
    # --- sets and sessions ---
    set_gap_s: float = env("SLEDFLEET_CORE_SET_GAP_S", 60.0)
    """A new set starts after this long with no rep (ours)."""
    session_idle_s: float = env("SLEDFLEET_CORE_SESSION_IDLE_S", 4 * 3600.0)
    """A session with no frame for this long ends with reason idle_timeout (Keiser: 4 h)."""
    session_end_tolerance_s: float = env("SLEDFLEET_CORE_SESSION_END_TOLERANCE_S", 0.5)
    """At check-out, a session is complete if its frames reach this close to the event
    (the edge drops a runt tail of < 10 samples); otherwise it waits for later frames..."""
    session_end_grace_s: float = env("SLEDFLEET_CORE_SESSION_END_GRACE_S", 30.0)
    """...or for the tick clock to pass check-out + this."""
    quiet_flush_s: float = env("SLEDFLEET_CORE_QUIET_FLUSH_S", 10.0)
    """When no frame has come for this long (tick clock), the pipeline's last rep is
    finished with edge padding and its set closed if the set gap has passed."""
    mvt_ms: float = env("SLEDFLEET_CORE_MVT_MS", 0.35)
    """Minimum velocity threshold for e1RM from the load–velocity fit (0.3–0.4 m/s)."""
    max_pending_records: int = env("SLEDFLEET_CORE_MAX_PENDING_RECORDS", 2000)
    """Records of a session whose check-in has not arrived yet are held (so they carry the
    patient_id) up to this many; beyond it they are released unattributed."""
    max_pending_s: float = env("SLEDFLEET_CORE_MAX_PENDING_S", 300.0)
    """...or for at most this long in event time."""
    # --- frames ---
    reorder_window: int = env("SLEDFLEET_CORE_REORDER_WINDOW", 64)
    """Out-of-order frames are held in a reorder buffer of this many frames (by seq); a
    frame arriving after its slot was given up is dead-lettered (``late_frame``). Sized
    for bridges in an MQTT share group: the broker hands a machine's messages to either
    bridge one by one, so they reach Kafka tens of frames out of order (issue #14's
    rehearsal; 8 gave up thousands). 64 frames of 100 samples are ~150 KB of state.
    A missing seq is given up only when the buffer overflows or the machine has been
    silent for ``reorder_hold_s``, never by device time: in a backlog burst a machine's
    device time runs minutes ahead within seconds of arrival. The cost: after a frame
    truly lost at the edge, that machine's results wait for this many frames (or the
    silence)."""
    reorder_hold_s: float = env("SLEDFLEET_CORE_REORDER_HOLD_S", 120.0)
    """A machine silent for this much wall time (its partition read to the end) gives up
    the missing seqs its reorder buffer waits for and processes what it holds. Longer than
    a bridge restart plus the edge's end-to-end ack timeout (``SLEDFLEET_EDGE_ACK_TIMEOUT_S``,
    30 s): an agent in ``ack`` mode stops sending while a frame is held by a killed bridge
    (``SLEDFLEET_EDGE_MAX_UNCONFIRMED_ROWS``) and sends it again after that timeout, so the
    machine looks silent while its missing frame is still on its way."""
    frame_gap_alert_count: int = env("SLEDFLEET_CORE_FRAME_GAP_ALERT_COUNT", 1)
    """A frame_gap alert is raised when this many frames are lost in one gap."""
    machine_offline_grace_s: float = env("SLEDFLEET_CORE_MACHINE_OFFLINE_GRACE_S", 300.0)
    """Offline (state message or silence) longer than this raises machine_offline."""
    clock_skew_bound_ms: float = env("SLEDFLEET_CORE_CLOCK_SKEW_BOUND_MS", 2000.0)
    """|clock_offset_ms| beyond this raises clock_skew."""
    flat_channel_s: float = env("SLEDFLEET_CORE_FLAT_CHANNEL_S", 30.0)
    """A force channel exactly constant this long while the sled moves is a sensor fault."""
    force_saturation_n: float = env("SLEDFLEET_CORE_FORCE_SATURATION_N", 9900.0)
    """Force samples at/above this are saturated (contract max 10 kN)..."""
    saturation_min_samples: int = env("SLEDFLEET_CORE_SATURATION_MIN_SAMPLES", 10)
    """...when a channel stays there this many samples in a row (a one-off spike is not)."""
    # --- patient alerts ---
    lapse_days: float = env("SLEDFLEET_CORE_LAPSE_DAYS", 7.0)
    dropout_days: float = env("SLEDFLEET_CORE_DROPOUT_DAYS", 28.0)
    low_adherence: float = env("SLEDFLEET_CORE_LOW_ADHERENCE", 0.75)
    """Rolling 4-week adherence below this raises low_adherence (ours)."""
    asi_alert_pct: float = env("SLEDFLEET_CORE_ASI_ALERT_PCT", 10.0)
    asi_consecutive: int = env("SLEDFLEET_CORE_ASI_CONSECUTIVE", 2)
    asi_baseline_delta_pp: float = env("SLEDFLEET_CORE_ASI_BASELINE_DELTA_PP", 5.0)
    baseline_weeks: int = env("SLEDFLEET_CORE_BASELINE_WEEKS", 4)
    vl_alert_pct: float = env("SLEDFLEET_CORE_VL_ALERT_PCT", 40.0)
    vl_prescribed_max_pct: float = env("SLEDFLEET_CORE_VL_PRESCRIBED_MAX_PCT", 20.0)
    mcv_drop_pct: float = env("SLEDFLEET_CORE_MCV_DROP_PCT", 10.0)
    mcv_drop_sessions: int = env("SLEDFLEET_CORE_MCV_DROP_SESSIONS", 2)
    performance_drop_persist_h: float = env("SLEDFLEET_CORE_PERFORMANCE_DROP_PERSIST_H", 24.0)
    reference_load_tolerance_kg: float = env("SLEDFLEET_CORE_REFERENCE_LOAD_TOLERANCE_KG", 2.5)
    """Sessions whose max load is within this of each other count as the same reference load."""


def load_core_settings() -> CoreSettings:
    """CoreSettings from ``SLEDFLEET_CORE_*`` environment variables."""
    return load(CoreSettings)
