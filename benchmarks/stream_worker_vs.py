"""``benchmarks/stream_worker.py`` of this checkout beside the same benchmark of a baseline
checkout, interleaved in one run, so that both see the same machine and the same load.

The baseline is another checkout of the repository with its own ``.venv`` (for example the
main before the per-machine stream: ``git clone . /tmp/base && git -C /tmp/base checkout
cc8be88 && (cd /tmp/base && services/bootstrap)``). Rounds alternate baseline, current,
baseline, current, ...; each runs the checkout's own benchmark with its own interpreter
against the same Kafka. Prints each round's worker frames/s and frames per CPU-second, the
trivial Faust agent's frames/s of the same round (how loaded the machine was), the medians
and the ratios current / baseline, per frame size.

    .venv/bin/python benchmarks/stream_worker_vs.py --baseline /tmp/base [--rounds 3]
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ROWS = "stream\\.core alone|trivial Faust agent|sledfleet stream worker"
ROW = re.compile(rf"^({ROWS})\s+([\d,]+)\s+[\d,]+\s+([\d,]+)")
SIZE = re.compile(r"^=== (\d+)-sample frames ===")


def run(checkout: Path, extra: list[str]) -> dict[int, dict[str, tuple[float, float]]]:
    """{frame size: {row: (frames/s, frames per CPU-second)}} of one benchmark run."""
    proc = subprocess.run(
        [str(checkout / ".venv" / "bin" / "python"), "benchmarks/stream_worker.py", *extra],
        cwd=checkout,
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        sys.stderr.write(proc.stdout[-4000:] + proc.stderr[-4000:])
        raise SystemExit(f"{checkout}: benchmarks/stream_worker.py exited {proc.returncode}")
    out: dict[int, dict[str, tuple[float, float]]] = {}
    size = 0
    for line in proc.stdout.splitlines():
        if m := SIZE.match(line):
            size = int(m.group(1))
        elif m := ROW.match(line):
            fps, cpu = (float(g.replace(",", "")) for g in m.group(2, 3))
            out.setdefault(size, {})[m.group(1)] = (fps, cpu)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", type=Path, required=True, help="baseline checkout")
    parser.add_argument("--rounds", type=int, default=3, help="runs of each checkout")
    parser.add_argument("--frame-samples", default="20,50")
    args = parser.parse_args()
    base = args.baseline.resolve()
    rev = {
        name: subprocess.run(
            ["git", "-C", str(path), "log", "--oneline", "-1"],
            capture_output=True,
            text=True,
            check=False,
        ).stdout.strip()[:60]
        for name, path in (("baseline", base), ("current", REPO))
    }
    print(f"baseline: {rev['baseline']}\ncurrent:  {rev['current']}")
    extra = ["--frame-samples", args.frame_samples]
    results: dict[str, list[dict[int, dict[str, tuple[float, float]]]]] = {
        "baseline": [],
        "current": [],
    }
    for i in range(args.rounds):
        for name, path in (("baseline", base), ("current", REPO)):
            load = Path("/proc/loadavg").read_text().split()[0]
            r = run(path, extra)
            results[name].append(r)
            for size, rows in sorted(r.items()):
                w, t = rows["sledfleet stream worker"], rows["trivial Faust agent"]
                print(
                    f"round {i + 1} {name:8} {size:3}-sample: worker {w[0]:7,.0f} frames/s "
                    f"{w[1]:7,.0f} frames/CPU-s | trivial agent {t[0]:7,.0f} frames/s "
                    f"| load {load}",
                    flush=True,
                )
    print()
    print(f"{'median':14}{'frames/s':>22}{'frames/CPU-s':>24}{'worker/trivial':>22}")
    print(
        f"{'':14}{'base':>8}{'current':>9}{'ratio':>6}{'base':>9}{'current':>9}{'ratio':>6}"
        f"{'base':>9}{'current':>9}"
    )
    for size in sorted(results["current"][0]):
        med = {}
        for name, runs in results.items():
            rows = [r[size] for r in runs]
            fps = statistics.median(x["sledfleet stream worker"][0] for x in rows)
            cpu = statistics.median(x["sledfleet stream worker"][1] for x in rows)
            rel = statistics.median(
                x["sledfleet stream worker"][0] / x["trivial Faust agent"][0] for x in rows
            )
            med[name] = (fps, cpu, rel)
        b, c = med["baseline"], med["current"]
        print(
            f"{size:3}-sample    {b[0]:8,.0f}{c[0]:9,.0f}{c[0] / b[0]:6.2f}"
            f"{b[1]:9,.0f}{c[1]:9,.0f}{c[1] / b[1]:6.2f}{b[2]:9.2f}{c[2]:9.2f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
