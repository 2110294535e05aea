"""How cheap is the fleet simulator? Backfill speed and live (paced) capacity, side by side.

    .venv/bin/python benchmarks/simulator.py [--days 28] [--live-machines 50] [--live-s 10]

1. Backfill: plan a 3 clinics × 3 machines fleet over ``--days`` days, compute its ground
   truth, then pull every item of every machine's source (as an agent would).
2. Generation capacity: samples/s one process can generate (CPU time), against the
   5,000 samples/s that 50 machines at 100 Hz need.
3. Live: ``--live-machines`` paced sources, one thread each (as ``edge.fleet_runner``
   runs them), for ``--live-s`` seconds: samples delivered vs. due, CPU used.
"""

from __future__ import annotations

import argparse
import threading
import time

from edge.samples import Sample
from edge.simulator import FleetConfig, build_fleet, live_sources


def backfill(days: int) -> float:
    t0, c0 = time.perf_counter(), time.process_time()
    fleet = build_fleet(FleetConfig(clinics=3, machines_per_clinic=3, days=days))
    t_plan = time.perf_counter() - t0
    truth = fleet.truth()
    t_truth = time.perf_counter() - t0 - t_plan
    samples = events = 0
    c_gen = time.process_time()
    for m in fleet.machines:
        for item in m.source().items():
            if isinstance(item, Sample):
                samples += 1
            else:
                events += 1
    wall = time.perf_counter() - t0
    cpu = time.process_time() - c0
    gen_cpu = time.process_time() - c_gen
    gen = wall - t_plan - t_truth
    print(
        f"backfill {days} d x 9 machines: {len(truth['sessions'])} sessions, "
        f"{len(truth['reps'])} reps, {samples:,} samples, {events} events"
    )
    print(
        f"  plan {t_plan:.2f} s + truth {t_truth:.2f} s + samples {gen:.2f} s = {wall:.2f} s wall "
        f"({cpu:.2f} s CPU, of which samples {gen_cpu:.2f} s)"
    )
    print(
        f"  samples/s: {samples / gen:,.0f} per wall second, {samples / gen_cpu:,.0f} per CPU "
        f"second = {samples / gen_cpu / 100:,.0f} machines at 100 Hz in real time per core"
    )
    return samples / gen_cpu


def live(machines: int, seconds: float) -> None:
    sources = live_sources(machines, clinics=5, seed=1, duration_s=seconds)
    counts = [0] * machines
    late: list[float] = []

    def feed(i: int) -> None:
        worst = 0.0
        for item in sources[i][2].items():
            counts[i] += 1
            worst = max(worst, (time.time_ns() - item.t_ns) / 1e6)
        late.append(worst)

    c0, t0 = time.process_time(), time.perf_counter()
    threads = [threading.Thread(target=feed, args=(i,)) for i in range(machines)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    due = machines * seconds * 100
    print(
        f"live {machines} machines x {seconds:.0f} s paced: {sum(counts):,} items "
        f"(due ~{due:,.0f} samples), wall {wall:.1f} s, CPU {cpu:.2f} s "
        f"= {cpu / wall * 100:.1f} % of one core; worst lateness {max(late):.0f} ms"
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--days", type=int, default=28)
    ap.add_argument("--live-machines", type=int, default=50)
    ap.add_argument("--live-s", type=float, default=10.0)
    args = ap.parse_args()
    rate = backfill(args.days)
    need = args.live_machines * 100
    print(
        f"generation capacity {rate:,.0f} samples/CPU-s vs {need:,} needed by "
        f"{args.live_machines} machines at 100 Hz: headroom x{rate / need:.0f}"
    )
    live(args.live_machines, args.live_s)


if __name__ == "__main__":
    main()
