"""Score the stream core against the fleet simulator's exact ground truth.

Runs a simulated multi-clinic fleet through the edge's real ``Framer`` (contract frames
of 50 samples) and :class:`stream.core.MachineProcessor`, then the session records
through :class:`stream.core.PatientTracker`, and compares with ``fleet.truth()``:

* rep count exact per set (valid reps), share of sets;
* per-rep MCV and ROM absolute error (p50/p95/max) and ASI error in percentage points;
* adherence rows exactly equal (prescribed/attended/completed and rolling sums).

``python benchmarks/score_core.py [--clinics 3 --machines 2 --patients 4 --days 28]``
prints the figures; ``tests/unit/stream/core/test_scoring.py`` asserts them on a smaller
fleet.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import time
from collections import defaultdict
from typing import Any

import numpy as np

from edge.framing import Framer
from edge.simulator import FleetConfig, build_fleet
from stream.core import MachineProcessor, MachineState, PatientTracker
from stream.core.settings import CoreSettings

ADHERENCE_FIELDS = (
    "prescription_id",
    "prescribed",
    "attended",
    "completed",
    "rolling4_prescribed",
    "rolling4_attended",
    "rolling4_completed",
    "adherence",
    "compliance",
    "relative_compliance",
    "rolling4_adherence",
    "rolling4_compliance",
)


def run_fleet(
    cfg: FleetConfig,
    settings: CoreSettings | None = None,
    roundtrip_every: int = 0,
    attach_prescription: bool = False,
) -> tuple[dict[str, list[dict[str, Any]]], dict[str, list[dict[str, Any]]], dict[str, float]]:
    """(outputs by kind, truth by kind, timing) for one simulated fleet.

    ``roundtrip_every`` > 0 replaces each machine's state by its JSON round trip every that
    many frames, as a restarted Faust worker would (the outputs must not change).
    ``attach_prescription`` adds the Prescription record to check-in events (the machine
    side then decides completed_as_prescribed itself); by default the patient side does,
    from the session record's ``set_loads_reps``."""
    fleet = build_fleet(cfg)
    truth = fleet.truth()
    rx_by_id = {rx["prescription_id"]: rx for rx in truth["prescriptions"]}
    proc = MachineProcessor(settings)
    out: dict[str, list[dict[str, Any]]] = defaultdict(list)
    frames = 0
    busy = 0.0
    last_ns = 0
    for sim in fleet.machines:
        st = proc.new_state(sim.clinic_id, sim.machine_id)
        framer = Framer(sim.clinic_id, sim.machine_id, sim.rate_hz, frame_samples=50)
        src = sim.source()

        holder = {"st": st}

        def handle(payloads: list[Any], holder: dict[str, Any] = holder) -> None:
            nonlocal frames, busy, last_ns
            for o in payloads:
                p = o.payload
                st = holder["st"]
                if o.kind == "telemetry":
                    frames += 1
                    if roundtrip_every and frames % roundtrip_every == 0:
                        st = holder["st"] = MachineState.from_json(
                            json.loads(json.dumps(st.to_json())), settings
                        )
                    t = time.perf_counter()
                    recs = proc.on_frame(st, p, 0)
                    busy += time.perf_counter() - t
                    last_ns = max(last_ns, p["t0_ns"])
                else:
                    if (
                        attach_prescription
                        and p["type"] == "session_started"
                        and p.get("prescription_id") in rx_by_id
                    ):
                        p = {**p, "prescription": rx_by_id[p["prescription_id"]]}
                    recs = proc.on_event(st, p, 0)
                for r in recs:
                    out[r["kind"]].append(r)

        for item in src.items():
            handle(framer.feed(item))
        handle(framer.flush())
        for r in proc.on_tick(holder["st"], last_ns + 10**12):  # long after: idle flush
            out[r["kind"]].append(r)
    # patients: prescriptions, then sessions in event-time order, then a tick at the end
    tracker = PatientTracker(settings)
    pstates: dict[str, Any] = {}
    for rx in truth["prescriptions"]:
        ps = pstates.setdefault(
            rx["patient_id"], tracker.new_state(rx["patient_id"], rx["clinic_id"])
        )
        tracker.on_prescription(ps, rx)
    adherence: dict[tuple[str, str], dict[str, Any]] = {}
    for s in sorted(out["session"], key=lambda r: r["end_ns"]):
        if s["patient_id"] is None:
            continue
        ps = pstates.setdefault(s["patient_id"], tracker.new_state(s["patient_id"], s["clinic_id"]))
        for r in tracker.on_session(ps, s, s["end_ns"]):
            if r["kind"] == "adherence":
                adherence[(r["patient_id"], r["iso_week"])] = r
            else:
                out[r["kind"]].append(r)
    last_date = cfg.start_date + dt.timedelta(days=cfg.days - 1)
    today = int(dt.datetime(*last_date.timetuple()[:3], 12, tzinfo=dt.UTC).timestamp()) * 10**9
    for ps in pstates.values():
        for r in tracker.on_tick(ps, today, today):
            if r["kind"] == "adherence":
                adherence[(r["patient_id"], r["iso_week"])] = r
            else:
                out[r["kind"]].append(r)
    out["adherence"] = list(adherence.values())
    return dict(out), truth, {"frames": frames, "busy_s": busy}


def _pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def score(
    out: dict[str, list[dict[str, Any]]], truth: dict[str, list[dict[str, Any]]]
) -> dict[str, Any]:
    # --- sets: valid rep count per (session, set_no) ---------------------------------------
    got_sets = {(s["session_id"], s["set_no"]): s for s in out.get("set", [])}
    set_ok = 0
    set_bad: list[str] = []
    for t in truth["sets"]:
        g = got_sets.get((t["session_id"], t["set_no"]))
        if g is not None and g["reps"] == t["reps"]:
            set_ok += 1
        else:
            set_bad.append(
                f"{t['session_id']}#{t['set_no']}: truth {t['reps']}+{t['partial_reps']}p, "
                f"got {None if g is None else (g['reps'], g['partial_reps'])}"
            )
    # --- reps: matched by time overlap of the concentric phase ------------------------------
    by_session: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in out.get("rep", []):
        by_session[r["session_id"]].append(r)
    mcv_err, rom_err, asi_err, pv_err, con_err = [], [], [], [], []
    unmatched = 0
    for t in truth["reps"]:
        cands = [
            r
            for r in by_session.get(t["session_id"], [])
            if r["start_ns"] < t["top_ns"] and r["top_ns"] > t["start_ns"]
        ]
        if len(cands) != 1:
            unmatched += 1
            continue
        g = cands[0]
        mcv_err.append(abs(g["mcv_ms"] - t["mcv_ms"]))
        rom_err.append(abs(g["rom_mm"] - t["rom_mm"]))
        pv_err.append(abs(g["pv_ms"] - t["pv_ms"]))
        con_err.append(abs(g["concentric_s"] - t["concentric_s"]))
        if g["asi_pct"] is not None and t["asi_pct"] is not None and not t.get("fault"):
            asi_err.append(abs(g["asi_pct"] - t["asi_pct"]))
    # --- sessions ------------------------------------------------------------------------
    got_sess = {s["session_id"]: s for s in out.get("session", [])}
    sess_ok = sum(
        1
        for t in truth["sessions"]
        if (g := got_sess.get(t["session_id"])) is not None
        and g["sets"] == t["sets"]
        and g["reps"] == t["reps"]
        and g["completed_as_prescribed"] == t["completed_as_prescribed"]
    )
    # --- adherence -------------------------------------------------------------------------
    got_adh = {(a["patient_id"], a["iso_week"]): a for a in out.get("adherence", [])}
    adh_bad = []
    for t in truth["adherence"]:
        g = got_adh.get((t["patient_id"], t["iso_week"]))
        if g is None or any(g[f] != t[f] for f in ADHERENCE_FIELDS):
            adh_bad.append((t, g))
    extra_adh = set(got_adh) - {(t["patient_id"], t["iso_week"]) for t in truth["adherence"]}
    return {
        "sets": len(truth["sets"]),
        "sets_exact": set_ok,
        "sets_exact_share": set_ok / max(1, len(truth["sets"])),
        "set_mismatches": set_bad,
        "reps_truth": len(truth["reps"]),
        "reps_found": len(out.get("rep", [])),
        "reps_unmatched": unmatched,
        "mcv_err_p50": _pct(mcv_err, 50),
        "mcv_err_p95": _pct(mcv_err, 95),
        "mcv_err_max": max(mcv_err, default=float("nan")),
        "rom_err_p50": _pct(rom_err, 50),
        "rom_err_p95": _pct(rom_err, 95),
        "rom_err_max": max(rom_err, default=float("nan")),
        "pv_err_p95": _pct(pv_err, 95),
        "concentric_err_p95": _pct(con_err, 95),
        "asi_err_p95": _pct(asi_err, 95),
        "asi_err_max": max(asi_err, default=float("nan")),
        "sessions": len(truth["sessions"]),
        "sessions_exact": sess_ok,
        "adherence_rows": len(truth["adherence"]),
        "adherence_exact": len(truth["adherence"]) - len(adh_bad),
        "adherence_mismatches": adh_bad,
        "adherence_extra_rows": sorted(extra_adh),
    }


def report(s: dict[str, Any], timing: dict[str, float]) -> str:
    fps = timing["frames"] / max(timing["busy_s"], 1e-9)
    rows = [
        (
            "sets with exact rep count",
            f"{s['sets_exact']}/{s['sets']} = {s['sets_exact_share']:.2%}",
            "target >= 99%",
        ),
        (
            "reps found / truth",
            f"{s['reps_found']} / {s['reps_truth']}",
            f"unmatched truth reps {s['reps_unmatched']}",
        ),
        (
            "MCV abs error m/s",
            f"p50 {s['mcv_err_p50']:.4f}  p95 {s['mcv_err_p95']:.4f}  max {s['mcv_err_max']:.4f}",
            "target p95 <= 0.02",
        ),
        (
            "ROM abs error mm",
            f"p50 {s['rom_err_p50']:.2f}  p95 {s['rom_err_p95']:.2f}  max {s['rom_err_max']:.2f}",
            "target p95 <= 5",
        ),
        (
            "PV abs error m/s",
            f"p95 {s['pv_err_p95']:.4f}",
            f"concentric duration error p95 {s['concentric_err_p95']:.4f} s",
        ),
        (
            "ASI abs error pp",
            f"p95 {s['asi_err_p95']:.3f}  max {s['asi_err_max']:.3f}",
            "target <= 2",
        ),
        ("sessions exact", f"{s['sessions_exact']}/{s['sessions']}", "sets, reps, completed"),
        (
            "adherence rows exact",
            f"{s['adherence_exact']}/{s['adherence_rows']}",
            f"extra rows {len(s['adherence_extra_rows'])}",
        ),
        (
            "core on_frame",
            f"{timing['frames']} frames in {timing['busy_s']:.2f} s",
            f"{fps:,.0f} frames/s (with the rest of this run competing)",
        ),
    ]
    lines = [f"{a:<26}: {b}  ({c})" for a, b, c in rows]
    lines += [f"  set mismatch {m}" for m in s["set_mismatches"][:10]]
    lines += [f"  adherence mismatch truth {t} got {g}" for t, g in s["adherence_mismatches"][:5]]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--clinics", type=int, default=3)
    ap.add_argument("--machines", type=int, default=2)
    ap.add_argument("--patients", type=int, default=4)
    ap.add_argument("--days", type=int, default=28)
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    cfg = FleetConfig(
        clinics=a.clinics,
        machines_per_clinic=a.machines,
        patients_per_machine=a.patients,
        days=a.days,
        seed=a.seed,
    )
    t = time.perf_counter()
    out, truth, timing = run_fleet(cfg)
    s = score(out, truth)
    print(report(s, timing))
    print(f"(total run {time.perf_counter() - t:.1f} s)")


if __name__ == "__main__":
    main()
