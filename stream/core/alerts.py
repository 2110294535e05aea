"""Alert records and the pure patient alert rules, each with named thresholds.

An alert's natural key is (rule, subject_id, window_start_ns). ``window_start_ns`` is
always derived from event-time facts (the start of the episode or the session that
triggered it), never from the wall clock, so re-processing the same input re-emits the
same key and the sink upserts one row.
"""

from __future__ import annotations

import statistics
from typing import Any

from stream.records import RECORD_VERSION


def alert(
    rule: str,
    subject_id: str,
    window_start_ns: int,
    ts_ns: int,
    clinic_id: str,
    *,
    patient_id: str | None = None,
    machine_id: str | None = None,
    severity: str = "warning",
    value: float | None = None,
    threshold: float | None = None,
    message: str,
    now_ns: int,
) -> dict[str, Any]:
    return {
        "v": RECORD_VERSION,
        "kind": "alert",
        "rule": rule,
        "subject_id": subject_id,
        "window_start_ns": int(window_start_ns),
        "ts_ns": int(ts_ns),
        "clinic_id": clinic_id,
        "patient_id": patient_id,
        "machine_id": machine_id,
        "severity": severity,
        "value": value,
        "threshold": threshold,
        "message": message,
        "emitted_at_ns": int(now_ns),
    }


# --- patient rules on the per-session history (oldest first) --------------------------------
# Each history entry: {"session_id", "start_ns", "end_ns", "asi", "max_vl", "ref_load",
# "mcv", "prescribed_vl"}; a rule returns (window_start_ns, value, threshold, message) or None.


def asymmetry_rule(
    history: list[dict[str, Any]], alert_pct: float, consecutive: int, delta_pp: float, week_ns: int
) -> tuple[int, float, float, str] | None:
    """|ASI| > alert_pct in ``consecutive`` consecutive sessions, or ≥ delta_pp above the
    patient's 4-week baseline (mean |ASI| of the sessions in the 4 weeks before)."""
    with_asi = [h for h in history if h["asi"] is not None]
    if not with_asi:
        return None
    run = 0  # trailing run of sessions above the threshold: one alert per run (episode)
    while run < len(with_asi) and abs(with_asi[-1 - run]["asi"]) > alert_pct:
        run += 1
    if run >= consecutive:
        v = abs(with_asi[-1]["asi"])
        msg = f"|ASI| above {alert_pct:g}% in {run} consecutive sessions ({v:.1f}% last)"
        return with_asi[-run]["start_ns"], v, alert_pct, msg
    cur = with_asi[-1]
    base = [
        abs(h["asi"])
        for h in with_asi[:-1]
        if cur["start_ns"] - 4 * week_ns <= h["start_ns"] < cur["start_ns"]
    ]
    if base:
        baseline = statistics.fmean(base)
        if abs(cur["asi"]) - baseline >= delta_pp:
            return (
                cur["start_ns"],
                abs(cur["asi"]),
                baseline + delta_pp,
                (
                    f"|ASI| {abs(cur['asi']):.1f}% is ≥ {delta_pp:g} pp above the 4-week "
                    f"baseline {baseline:.1f}%"
                ),
            )
    return None


def fatigue_rule(
    history: list[dict[str, Any]],
    vl_alert: float,
    vl_prescribed_max: float,
    drop_pct: float,
    drop_sessions: int,
    load_tol: float,
    week_ns: int,
) -> tuple[int, float, float, str] | None:
    """VL > vl_alert where the prescription allows ≤ vl_prescribed_max; or MCV at the
    reference load > drop_pct below its 4-week median in ``drop_sessions`` sessions."""
    cur = history[-1]
    pvl = cur.get("prescribed_vl")
    if (
        cur["max_vl"] is not None
        and pvl is not None
        and pvl <= vl_prescribed_max
        and cur["max_vl"] > vl_alert
    ):
        return (
            cur["start_ns"],
            cur["max_vl"],
            vl_alert,
            (f"velocity loss {cur['max_vl']:.0f}% above {vl_alert:g}% (prescribed ≤ {pvl:g}%)"),
        )
    drops = mcv_drops(history, drop_pct, load_tol, week_ns)
    run = 0
    while run < len(drops) and drops[-1 - run]:
        run += 1
    if run >= drop_sessions:
        first = history[-run]
        return (
            first["start_ns"],
            cur["mcv"],
            drop_pct,
            (
                f"MCV at the reference load > {drop_pct:g}% below its 4-week median "
                f"in {drop_sessions} sessions"
            ),
        )
    return None


def mcv_drops(
    history: list[dict[str, Any]], drop_pct: float, load_tol: float, week_ns: int
) -> list[bool]:
    """Per session: is its MCV at its reference load > drop_pct below the 4-week median
    of earlier sessions at the same reference load (± load_tol)?"""
    out = []
    for i, h in enumerate(history):
        if h["mcv"] is None or h["ref_load"] is None:
            out.append(False)
            continue
        prior = [
            p["mcv"]
            for p in history[:i]
            if p["mcv"] is not None
            and p["ref_load"] is not None
            and abs(p["ref_load"] - h["ref_load"]) <= load_tol
            and h["start_ns"] - 4 * week_ns <= p["start_ns"] < h["start_ns"]
        ]
        if len(prior) < 2:
            out.append(False)
            continue
        med = statistics.median(prior)
        out.append(h["mcv"] < med * (1 - drop_pct / 100.0))
    return out
