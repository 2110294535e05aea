"""Records the stream processor writes and the sink stores: the stream→storage contract.

Each record is a JSON object carrying ``v`` (schema version), ``kind`` and its
natural key, so every database write is an idempotent upsert:

=============== ============================================= =====================
kind            natural key                                   Kafka topic (key)
=============== ============================================= =====================
rep             (machine_id, session_id, set_no, rep_no)      sledfleet.reps (machine_id)
set             (machine_id, session_id, set_no)              sledfleet.sets (machine_id)
session         (session_id)                                  sledfleet.sessions (machine_id)
adherence       (patient_id, iso_week)                        sledfleet.adherence (patient_id)
alert           (rule, subject_id, window_start_ns)           sledfleet.alerts (subject_id)
machine_status  (machine_id, ts_ns)                           sledfleet.machine-status (machine_id)
prescription    (prescription_id)                             sledfleet.prescriptions (patient_id)
=============== ============================================= =====================

Times are UTC epoch nanoseconds (``*_ns``) of the device clock corrected by the
stream's clock-offset estimate; SI units elsewhere (m/s, N, W, J, s, mm, kg).
Stdlib only.
"""

from __future__ import annotations

from typing import Any, Final, Literal, NotRequired, TypedDict

RECORD_VERSION: Final = 1

Side = Literal["left", "right"]


class Rep(TypedDict):
    v: int
    kind: Literal["rep"]
    clinic_id: str
    machine_id: str
    patient_id: str | None  # None when nobody was checked in (recorded, never attributed)
    session_id: str
    set_no: int  # 1-based within the session
    rep_no: int  # 1-based within the set; partial reps are numbered too
    valid: bool  # False = partial rep (ROM below the rep threshold)
    start_ns: int  # concentric onset (bottom turnaround)
    top_ns: int  # top turnaround (end of concentric phase)
    end_ns: int  # end of eccentric phase (next bottom turnaround)
    load_kg: float
    rom_mm: float
    concentric_s: float  # pauses excluded
    eccentric_s: float  # pauses excluded
    tut_s: float  # concentric + eccentric
    mcv_ms: float  # mean concentric velocity, m/s
    mpv_ms: float  # mean propulsive velocity, m/s
    pv_ms: float  # peak velocity, m/s
    time_to_pv_s: float
    pv_position_pct: float  # PV position as % of ROM
    mean_force_n: float
    peak_force_n: float
    mean_power_w: float
    peak_power_w: float
    work_j: float
    asi_pct: float | None  # (F_R − F_L)/max(F_R, F_L)×100 on mean concentric force
    weaker_side: Side | None
    sign_changes: int  # velocity sign changes in the concentric phase (smoothness)
    jerk_score: float  # normalised (dimensionless) jerk in the concentric phase
    dropout_samples: int  # samples marked missing within the rep
    replayed: bool  # any of its frames came from the edge's store-and-forward buffer
    emitted_at_ns: int  # wall clock when the stream emitted it (latency measurement)


class Set(TypedDict):
    v: int
    kind: Literal["set"]
    clinic_id: str
    machine_id: str
    patient_id: str | None
    session_id: str
    set_no: int
    start_ns: int
    end_ns: int
    load_kg: float  # load of the set's valid reps (mean)
    reps: int  # valid reps
    partial_reps: int
    best_mcv_ms: float | None
    last_mcv_ms: float | None
    mean_mcv_ms: float | None
    velocity_loss_pct: float | None  # (best − last)/best × 100
    mean_power_w: float | None
    peak_power_w: float | None
    work_j: float
    tut_s: float
    mean_asi_pct: float | None
    emitted_at_ns: int


class Session(TypedDict):
    v: int
    kind: Literal["session"]
    session_id: str
    clinic_id: str
    machine_id: str
    patient_id: str | None
    prescription_id: str | None
    start_ns: int
    end_ns: int
    end_reason: Literal["checkout", "idle_timeout"]
    sets: int
    reps: int
    partial_reps: int
    volume_load_kg: float  # Σ load × valid reps
    work_j: float
    mean_asi_pct: float | None
    mean_mcv_ms: float | None  # mean MCV of the valid reps
    max_velocity_loss_pct: float | None  # worst set's velocity loss
    duration_s: float
    density_j_per_min: float
    max_load_kg: float
    seat_position: float | None  # reported by the machine at check-in
    footplate_position: float | None
    completed_as_prescribed: bool | None  # None without a prescription
    lv_intercept_ms: float | None  # load–velocity profile MCV = a + b·load
    lv_slope_ms_per_kg: float | None
    e1rm_kg: float | None  # load at the minimum velocity threshold
    emitted_at_ns: int
    # [load_kg, valid reps] of each set, in order: lets the patient side decide
    # completed_as_prescribed when the machine side did not know the prescription
    set_loads_reps: NotRequired[list[list[float]]]


class Adherence(TypedDict):
    v: int
    kind: Literal["adherence"]
    patient_id: str
    clinic_id: str
    prescription_id: str | None
    iso_week: str  # e.g. "2026-W47"
    week_start: str  # ISO date of that week's Monday, in the clinic's local calendar
    time_zone: str  # the clinic's IANA zone the week was counted in (e.g. "Australia/Sydney")
    prescribed: int
    attended: int
    completed: int
    adherence: float | None  # attended / prescribed
    compliance: float | None  # completed / prescribed
    relative_compliance: float | None  # completed / attended
    rolling4_prescribed: int
    rolling4_attended: int
    rolling4_completed: int
    rolling4_adherence: float | None
    rolling4_compliance: float | None
    emitted_at_ns: int


AlertRule = Literal[
    "lapse",
    "dropout_risk",
    "low_adherence",
    "asymmetry",
    "unusual_fatigue",
    "performance_drop",
    "machine_offline",
    "sensor_fault",
    "frame_gap",
    "clock_skew",
]


class Alert(TypedDict):
    v: int
    kind: Literal["alert"]
    rule: AlertRule
    subject_id: str  # patient_id or machine_id
    window_start_ns: int
    ts_ns: int
    clinic_id: str
    patient_id: str | None
    machine_id: str | None
    severity: Literal["info", "warning", "critical"]
    value: float | None
    threshold: float | None
    message: str
    emitted_at_ns: int
    historical: NotRequired[bool]
    """About the past (older than the stream's historical alert age when raised, e.g. from
    a replayed backlog): recorded, never counted as a new open alert."""


class MachineStatus(TypedDict):
    v: int
    kind: Literal["machine_status"]
    machine_id: str
    clinic_id: str
    ts_ns: int
    status: Literal["online", "offline"]
    agent_version: str | None
    firmware: str | None
    rate_hz: float | None
    config_version: int | None
    clock_offset_ms: float | None
    frames: int  # frames accepted since the stream started tracking this machine
    frames_replayed: int
    frames_duplicate: int
    frames_missing: int  # seq gaps not (yet) filled
    edge_dropped: int  # frames the edge outbox reported dropping
    last_seq: int | None
    emitted_at_ns: int


class Prescription(TypedDict):
    v: int
    kind: Literal["prescription"]
    prescription_id: str
    patient_id: str
    clinic_id: str
    sessions_per_week: int
    sets: int
    reps: int
    load_kg: float
    max_velocity_loss_pct: float
    start_date: str  # ISO date
    end_date: str | None
    seat_position: NotRequired[float | None]
    footplate_position: NotRequired[float | None]


NATURAL_KEYS: Final[dict[str, tuple[str, ...]]] = {
    "rep": ("machine_id", "session_id", "set_no", "rep_no"),
    "set": ("machine_id", "session_id", "set_no"),
    "session": ("session_id",),
    "adherence": ("patient_id", "iso_week"),
    "alert": ("rule", "subject_id", "window_start_ns"),
    "machine_status": ("machine_id", "ts_ns"),
    "prescription": ("prescription_id",),
}


def natural_key(record: dict[str, Any]) -> tuple[Any, ...]:
    """The tuple that identifies ``record``; equal keys mean the same fact."""
    return tuple(record[f] for f in NATURAL_KEYS[record["kind"]])
