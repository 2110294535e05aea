"""Score the stream core against the simulator's ground truth, in one process, no servers.

    .venv/bin/python benchmarks/simulator_vs_stream.py [--seed 3] [--days 7] [--machines 1]

Each simulated machine's items go through the real edge framing (``edge.framing.Framer``)
and the pure stream core (``stream.core.processor.MachineProcessor``); the rep, set and
session records it emits are matched to the truth by natural key. Printed: match counts,
then per metric the truth value's median beside the median and 95th percentile of the
absolute error (reps on a faulty load cell are left out of force metrics).
"""

from __future__ import annotations

import argparse
from collections import defaultdict
from typing import Any

import numpy as np

from edge.framing import Framer
from edge.simulator import FleetConfig, build_fleet
from stream.core.processor import MachineProcessor

REP_METRICS = (
    "start_ns",
    "top_ns",
    "end_ns",
    "rom_mm",
    "concentric_s",
    "eccentric_s",
    "mcv_ms",
    "pv_ms",
    "mean_force_n",
    "asi_pct",
)
FORCE_METRICS = {"mean_force_n", "asi_pct"}


def run_stream(fleet: Any) -> dict[str, list[dict[str, Any]]]:
    out: list[dict[str, Any]] = []
    proc = MachineProcessor()
    for m in fleet.machines:
        framer = Framer(m.clinic_id, m.machine_id, m.rate_hz)
        state = proc.new_state(m.clinic_id, m.machine_id)

        def handle(outgoing: list[Any], state: Any = state) -> None:
            for o in outgoing:
                fn = proc.on_frame if o.kind == "telemetry" else proc.on_event
                out.extend(fn(state, o.payload, 0))

        for item in m.source().items():
            handle(framer.feed(item))
        handle(framer.flush())
        out.extend(proc.on_tick(state, 2**62))
    by_kind: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in out:
        by_kind[r["kind"]].append(r)
    return by_kind


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seed", type=int, default=3)
    ap.add_argument("--days", type=int, default=7)
    ap.add_argument("--machines", type=int, default=1)
    args = ap.parse_args()
    fleet = build_fleet(
        FleetConfig(
            clinics=1,
            machines_per_clinic=args.machines,
            patients_per_machine=3,
            days=args.days,
            seed=args.seed,
        )
    )
    truth = fleet.truth()
    got = run_stream(fleet)
    keys = {
        "reps": ("session_id", "set_no", "rep_no"),
        "sets": ("session_id", "set_no"),
        "sessions": ("session_id",),
    }
    for kind, key in keys.items():
        exp = {tuple(r[k] for k in key) for r in truth[kind]}
        have = {tuple(r[k] for k in key) for r in got[kind[:-1]]}
        print(
            f"{kind:9s} truth {len(exp):5d}  stream {len(have):5d}  matched {len(exp & have):5d}"
            f"  missing {len(exp - have):4d}  extra {len(have - exp):4d}"
        )
    t_reps = {(r["session_id"], r["set_no"], r["rep_no"]): r for r in truth["reps"]}
    s_reps = {(r["session_id"], r["set_no"], r["rep_no"]): r for r in got["rep"]}
    common = sorted(set(t_reps) & set(s_reps))
    agree = sum(t_reps[k]["valid"] == s_reps[k]["valid"] for k in common)
    print(f"valid flag agrees on {agree}/{len(common)} matched reps")
    print(f"{'metric':14s} {'truth p50':>12s} {'|err| p50':>12s} {'|err| p95':>12s}")
    for f in REP_METRICS:
        pairs = [
            (t_reps[k][f], s_reps[k][f])
            for k in common
            if s_reps[k].get(f) is not None and not (f in FORCE_METRICS and t_reps[k]["fault"])
        ]
        if not pairs:
            continue
        t = np.array([p[0] for p in pairs], dtype=float)
        err = np.abs(np.array([p[1] for p in pairs], dtype=float) - t)
        scale, unit = (1e6, " ms") if f.endswith("_ns") else (1.0, "")
        ref = "" if f.endswith("_ns") else f"{np.median(t):12.4g}"
        print(
            f"{f:14s} {ref:>12s} {np.median(err) / scale:12.4g} "
            f"{np.percentile(err, 95) / scale:12.4g}{unit}"
        )


if __name__ == "__main__":
    main()
