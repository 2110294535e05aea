"""Edge agent throughput beside mosquitto_pub, in one run, on a private Mosquitto.

Measures, each in a fresh child process (so CPU and peak RSS are the agent's alone):

1. fast, 1 machine: one agent (QoS 1, SQLite outbox on, synchronous=FULL) fed as fast as
   possible, timed until every frame is acknowledged; beside ``mosquitto_pub -l -q 1`` sending
   the same frames (same JSON bytes) over one connection.
2. fast, N machines: N agents (own client ids, own outboxes) in one process, beside N
   concurrent ``mosquitto_pub`` processes with the same frames.
3. live: N machines at 100 Hz in real time for a while: CPU % of one core, peak RSS,
   frames delivered vs expected, backlog at the end: does one process carry them?

Usage: ``.venv/bin/python benchmarks/edge_agent.py [--machines 50] [--frames 400]
[--live-seconds 30]``. Starts and stops its own Mosquitto via ``services/start`` with a
private run dir and port.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from edge import contract  # noqa: E402
from edge.agent_settings import EdgeSettings  # noqa: E402
from edge.fleet_runner import FleetRunner  # noqa: E402
from edge.framing import Framer  # noqa: E402
from edge.samples import Sample, SourceItem  # noqa: E402
from edge.settings import MqttSettings  # noqa: E402

RATE_HZ = 100.0
FRAME = 50
T0_NS = 1_763_900_000 * 10**9
LIVE_BURST = 10
"""A live source delivers 10 samples every 100 ms (like a buffered serial line)."""


class StrokeSource:
    """Leg-press-like signal; ``live`` paces it at RATE_HZ in bursts of LIVE_BURST.

    One stroke cycle is precomputed so the source costs little of the measured CPU: the
    figures are the agent's (framing, JSON, SQLite, MQTT), not the signal generator's.
    """

    CYCLE = 250

    def __init__(self, n: int, seed: int, live: bool, t0_ns: int = T0_NS) -> None:
        self.n, self.seed, self.live, self.rate_hz = n, seed, live, RATE_HZ
        self.t0_ns = t0_ns
        self._stop = threading.Event()
        self._cycle = []
        for i in range(self.CYCLE):
            ph = 2 * math.pi * (i + seed * 37) / self.CYCLE
            x, f = 220 + 200 * math.sin(ph), 600 + 300 * math.cos(ph)
            self._cycle.append((round(x, 1), round(f * 0.48, 1), round(f * 0.52, 1)))

    def items(self) -> Iterator[SourceItem]:
        start = time.monotonic()
        period_ns = int(1e9 / RATE_HZ)
        cycle, t0 = self._cycle, self.t0_ns
        for i in range(self.n):
            if i % LIVE_BURST == 0:
                if self.live:
                    delay = start + (i + LIVE_BURST) / RATE_HZ - time.monotonic()
                    if delay > 0 and self._stop.wait(delay):
                        return
                elif self._stop.is_set():
                    return
            x, fl, fr = cycle[i % self.CYCLE]
            yield Sample(t0 + i * period_ns, x, fl, fr, 60.0)

    def close(self) -> None:
        self._stop.set()


# --- child: one measured agent process ----------------------------------------------------------


def child(args: argparse.Namespace) -> None:
    mqtt = MqttSettings(host="127.0.0.1", port=args.port, max_inflight=1000)
    base = EdgeSettings(
        outbox_dir=args.outbox,
        frame_samples=FRAME,
        outbox_synchronous=args.synchronous,
        connect_wait_s=10.0,
    )
    live = args.child == "live"
    samples = int(args.seconds * RATE_HZ) if live else args.frames * FRAME
    t0 = time.time_ns() if live else T0_NS
    machines = [
        (base.for_machine("bench", f"m{i:03d}"), StrokeSource(samples, i, live, t0))
        for i in range(args.machines)
    ]
    runner = FleetRunner(machines, mqtt, drain_timeout_s=30.0)
    r0 = resource.getrusage(resource.RUSAGE_SELF)
    w0 = time.monotonic()
    stats = runner.run()
    wall = time.monotonic() - w0
    r1 = resource.getrusage(resource.RUSAGE_SELF)
    # CPU over the whole run (connect, feed, drain, disconnect), divided below by the
    # delivery time: a slight overestimate of the CPU share while frames flow
    cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
    print(
        json.dumps(
            {
                "wall_s": stats.deliver_s or wall,
                "process_wall_s": wall,
                "cpu_s": cpu,
                "frames": stats.frames,
                "samples": stats.samples,
                "acked": stats.acked,
                "undelivered": stats.undelivered_rows,
                "dropped": stats.dropped_frames,
                "maxrss_mb": peak_rss_mb(),
            }
        )
    )


def peak_rss_mb() -> float:
    """VmHWM of this process (ru_maxrss would include the parent's memory at exec)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def run_child(kind: str, port: int, machines: int, frames: int, seconds: float, sync: str) -> dict:
    with tempfile.TemporaryDirectory(prefix="edge-bench-") as outbox:
        cmd = [
            sys.executable,
            __file__,
            "--child",
            kind,
            "--port",
            str(port),
            "--machines",
            str(machines),
            "--frames",
            str(frames),
            "--seconds",
            str(seconds),
            "--synchronous",
            sync,
            "--outbox",
            outbox,
        ]
        out = subprocess.run(cmd, capture_output=True, text=True, check=True, timeout=900)
        return dict(json.loads(out.stdout.strip().splitlines()[-1]))


# --- mosquitto_pub baseline --------------------------------------------------------------------


def frame_lines(machine: str, frames: int) -> bytes:
    f = Framer("bench", machine, RATE_HZ, FRAME)
    out = []
    for item in StrokeSource(frames * FRAME + 10, int(machine[1:]), live=False).items():
        out += [contract.encode(o.payload) for o in f.feed(item)]
    return b"\n".join(out[:frames]) + b"\n"


PUB_ARGS = ["mosquitto_pub", "-h", "127.0.0.1", "-V", "mqttv5", "-q", "1", "-M", "1000"]


def mosquitto_pub(port: int, machines: int, frames: int, tmp: Path) -> tuple[float, float]:
    """Wall seconds and CPU seconds of the mosquitto_pub processes."""
    files = []
    for i in range(machines):
        path = tmp / f"pub{i}.txt"
        path.write_bytes(frame_lines(f"p{i:03d}", frames))
        files.append(path)
    c0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.monotonic()
    procs = []
    for i, path in enumerate(files):
        topic = contract.mqtt_topic("bench", f"p{i:03d}", "telemetry")
        with path.open("rb") as stdin:
            procs.append(
                subprocess.Popen(
                    [*PUB_ARGS, "-p", str(port), "-i", f"pub-{i}", "-t", topic, "-l"],
                    stdin=stdin,
                )
            )
    for p in procs:
        if p.wait(600) != 0:
            raise RuntimeError("mosquitto_pub failed")
    wall = time.monotonic() - t0
    c1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (c1.ru_utime - c0.ru_utime) + (c1.ru_stime - c0.ru_stime)


# --- private broker ----------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def broker(cmd: str, run_dir: Path, port: int) -> None:
    env = {**os.environ, "SLEDFLEET_RUN_DIR": str(run_dir), "SLEDFLEET_MQTT_PORT": str(port)}
    subprocess.run([str(REPO / "services" / cmd), "mosquitto"], env=env, check=True, timeout=120)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--machines", type=int, default=50)
    ap.add_argument("--frames", type=int, default=400, help="frames per machine, fast runs")
    ap.add_argument("--live-seconds", type=float, default=30.0)
    ap.add_argument("--child")
    ap.add_argument("--port", type=int)
    ap.add_argument("--seconds", type=float, default=0)
    ap.add_argument("--synchronous", default="FULL")
    ap.add_argument("--outbox")
    args = ap.parse_args()
    if args.child:
        child(args)
        return
    n, frames = args.machines, args.frames
    with tempfile.TemporaryDirectory(prefix="edge-bench-broker-") as tmp:
        port = free_port()
        broker("start", Path(tmp), port)
        try:
            total = n * frames
            print(
                f"private mosquitto on :{port}; {FRAME}-sample frames at QoS 1, payload "
                f"{len(frame_lines('p000', 1)) - 1} bytes; 2-core host\n"
            )
            pub1, pub1_cpu = mosquitto_pub(port, 1, total, Path(tmp))
            one = run_child("fast", port, 1, total, 0, "FULL")
            one_normal = run_child("fast", port, 1, total, 0, "NORMAL")
            pubn, pubn_cpu = mosquitto_pub(port, n, frames, Path(tmp))
            fleet = run_child("fast", port, n, frames, 0, "FULL")
            live = run_child("live", port, n, 0, args.live_seconds, "FULL")
        finally:
            broker("stop", Path(tmp), port)

    def row(name: str, r: dict, ref_fps: float, ref_per_cpu: float) -> None:
        fps = r["acked"] / r["wall_s"]
        per_cpu = r["acked"] / r["cpu_s"]
        print(
            f"{name:<40} {fps:>7.0f} frames/s {fps * FRAME:>9.0f} samples/s "
            f"{per_cpu:>7.0f} frames/CPU-s  CPU {100 * r['cpu_s'] / r['wall_s']:>4.0f} %  "
            f"RSS {r['maxrss_mb']:>4.0f} MB  ratio to mosquitto_pub: "
            f"{fps / ref_fps:.3f} (wall), {per_cpu / ref_per_cpu:.3f} (CPU)"
        )

    def pub_row(name: str, wall: float, cpu: float) -> None:
        fps = total / wall
        print(
            f"{name:<40} {fps:>7.0f} frames/s {fps * FRAME:>9.0f} samples/s "
            f"{total / cpu:>7.0f} frames/CPU-s  ({total} frames in {wall:.2f} s)"
        )

    load = os.getloadavg()[0]
    print(f"host load average at the end: {load:.1f} on {os.cpu_count()} cores\n")
    pub_row("mosquitto_pub -l -q 1, 1 connection", pub1, pub1_cpu)
    row("agent, 1 machine, outbox FULL", one, total / pub1, total / pub1_cpu)
    row("agent, 1 machine, outbox NORMAL", one_normal, total / pub1, total / pub1_cpu)
    pub_row(f"mosquitto_pub x {n} processes", pubn, pubn_cpu)
    row(f"agent, {n} machines in 1 process, FULL", fleet, total / pubn, total / pubn_cpu)
    expected = n * int(args.live_seconds * RATE_HZ) // FRAME
    cpu_pct = 100 * live["cpu_s"] / live["wall_s"]
    need = n * RATE_HZ / FRAME
    print(
        f"\nlive: {n} machines x {RATE_HZ:.0f} Hz for {args.live_seconds:.0f} s "
        f"(needs {need:.0f} frames/s, {n * RATE_HZ:.0f} samples/s)"
    )
    print(
        f"  frames framed {live['frames']} (expected ~{expected}), acknowledged {live['acked']}, "
        f"undelivered {live['undelivered']}, dropped {live['dropped']}"
    )
    print(
        f"  CPU {cpu_pct:.0f} % of one core, peak RSS {live['maxrss_mb']:.0f} MB; "
        f"headroom: fast fleet rate / needed = {fleet['acked'] / fleet['wall_s'] / need:.1f}x"
    )
    ok = live["undelivered"] == 0 and live["acked"] >= live["frames"] and cpu_pct < 100
    print(f"  one process carries {n} machines at 100 Hz in real time: {'YES' if ok else 'NO'}")


if __name__ == "__main__":
    main()
