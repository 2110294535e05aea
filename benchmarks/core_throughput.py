"""Throughput of the pure core: MachineProcessor.on_frame alone, frames/s and samples/s.

Frames come from the fleet simulator through the edge's real ``Framer`` (50 samples
each), pre-built in memory, so only the core is timed. Printed beside the figure the
Faust worker needs (3,000 frames/s of 50 samples per worker process) and a trivial
baseline in the same run (decoding the frame's arrays into numpy, the least any
processing must do) to show the ratio.

``python benchmarks/core_throughput.py [--machines 2 --days 7]``
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

import numpy as np

from edge.framing import Framer
from edge.simulator import FleetConfig, build_fleet
from stream.core import MachineProcessor, MachineState

TARGET_FPS = 3000


def build_inputs(machines: int, days: int) -> list[tuple[str, list[tuple[str, dict[str, Any]]]]]:
    fleet = build_fleet(
        FleetConfig(clinics=1, machines_per_clinic=machines, patients_per_machine=3, days=days)
    )
    out = []
    for sim in fleet.machines:
        framer = Framer(sim.clinic_id, sim.machine_id, sim.rate_hz, frame_samples=50)
        items: list[tuple[str, dict[str, Any]]] = []
        for item in sim.source().items():
            items += [(o.kind, o.payload) for o in framer.feed(item)]
        items += [(o.kind, o.payload) for o in framer.flush()]
        out.append((sim.machine_id, items))
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--machines", type=int, default=2)
    ap.add_argument("--days", type=int, default=7)
    a = ap.parse_args()
    inputs = build_inputs(a.machines, a.days)
    frames = sum(1 for _, items in inputs for k, _ in items if k == "telemetry")
    samples = sum(
        len(p["position_mm"]) for _, items in inputs for k, p in items if k == "telemetry"
    )
    # baseline: the unavoidable work, arrays to numpy
    t = time.perf_counter()
    for _, items in inputs:
        for kind, p in items:
            if kind == "telemetry":
                np.array([p["position_mm"], p["force_left_n"], p["force_right_n"]], dtype=float)
    base = time.perf_counter() - t
    # the core
    proc = MachineProcessor()
    busy = 0.0
    cpu = 0.0
    records = 0
    state_bytes = 0
    for machine_id, items in inputs:
        st = proc.new_state("c01", machine_id)
        for kind, p in items:
            if kind == "telemetry":
                t = time.perf_counter()
                c = time.process_time()
                records += len(proc.on_frame(st, p, 0))
                busy += time.perf_counter() - t
                cpu += time.process_time() - c
            else:
                records += len(proc.on_event(st, p, 0))
        state_bytes = max(state_bytes, len(json.dumps(st.to_json())))
    # state round trip cost (what a changelog write/read costs per batch)
    t = time.perf_counter()
    for _ in range(100):
        MachineState.from_json(json.loads(json.dumps(st.to_json())))
    rt_ms = (time.perf_counter() - t) * 10
    fps = frames / busy
    print(f"frames {frames:,}  samples {samples:,}  records out {records:,}")
    print(
        f"core on_frame        : {fps:10,.0f} frames/s  {samples / busy:12,.0f} samples/s"
        f"  ({busy:.2f} s)"
    )
    print(
        f"baseline to-numpy    : {frames / base:10,.0f} frames/s  {samples / base:12,.0f} samples/s"
        f"  (core costs {busy / base:.1f}x the baseline)"
    )
    print(
        f"core on_frame (CPU)  : {frames / cpu:10,.0f} frames/s  {samples / cpu:12,.0f} samples/s"
        f"  (process CPU time {cpu:.2f} s; wall time above includes other load on the host)"
    )
    print(
        f"target               : {TARGET_FPS:10,} frames/s  -> {fps / TARGET_FPS:.2f}x the target"
        f" (wall), {frames / cpu / TARGET_FPS:.2f}x (CPU)"
    )
    print(f"state JSON           : {state_bytes:,} bytes (end of run), round trip {rt_ms:.2f} ms")


if __name__ == "__main__":
    main()
