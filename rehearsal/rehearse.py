"""The rehearsal run: deploy on hosts, stream the fleet, inject faults, score, report."""

from __future__ import annotations

import json
import logging
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from rehearsal.deploy import Deployment, FleetSpec
from rehearsal.faults import FAULTS, SKEW_S, Fault
from rehearsal.procs import Proc
from rehearsal.topology import CTL

log = logging.getLogger(__name__)


@dataclass
class Monitor:
    """``rehearsal.probe monitor`` on ctl: the database's counts once a second."""

    dep: Deployment
    path: Path = field(init=False)
    proc: Proc | None = None

    def start(self) -> None:
        self.path = self.dep.logs / "counts.jsonl"
        self.proc = Proc(
            "monitor", CTL,
            [sys.executable, "-m", "rehearsal.probe", "monitor", "--dsn", self.dep.dsn,
             "--out", str(self.path), "--bootstrap", self.dep.kafka.bootstrap,
             *[a for g in self.dep.consumer_groups() for a in ("--group", g)]],
            {}, self.dep.logs / "monitor.log", cwd=Path.cwd(),
        ).start(self.dep.net)  # fmt: skip

    def samples(self) -> list[dict[str, Any]]:
        if not self.path.exists():
            return []
        rows = []
        for line in self.path.read_text().splitlines():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                continue  # the line being written
        return rows

    def latest_reps(self) -> int:
        good = [s for s in self.samples() if "reps" in s]
        return int(good[-1]["reps"]) if good else 0

    def caught_up(self) -> bool:
        """The latest sample found the workers and sinks with nothing left to consume."""
        good = [s for s in self.samples() if "reps" in s]
        return bool(good) and good[-1].get("lag") == 0

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.stop(5.0)


def _dials_default_loopback(ss_line: str) -> bool:
    from rehearsal.tripwire import DEFAULT_PORTS

    cols = ss_line.split()
    if len(cols) < 4:
        return False
    addr, _, port = cols[3].rpartition(":")
    return addr.startswith("127.") and port.isdigit() and int(port) in DEFAULT_PORTS


def loopback_report(dep: Deployment) -> dict[str, Any]:
    """Tripwire hits plus established connections to 127.x seen by ``ss`` on each host."""
    import subprocess

    trips = dep.loopback_trips()
    seen: dict[str, list[str]] = {}
    for host in dep.tripwires:
        out = subprocess.run(
            ["ip", "netns", "exec", dep.net.ns(host), "ss", "-Htnp", "state", "established"],
            capture_output=True, text=True, check=False,
        ).stdout  # fmt: skip
        bad = [line for line in out.splitlines() if _dials_default_loopback(line)]
        if bad:
            seen[host] = bad
    return {"tripwire": trips, "ss": seen, "ok": not trips and not seen}



INJECT_WHILE_PUBLISHING = frozenset({"mosquitto", "mosquitto-queued", "bridge"})
"""Faults on the MQTT side are injected while the edge agents publish, the others once a
fifth of the segment's reps are stored (the stream and the sink are busy)."""
PUBLISH_FAULT_AFTER_S = 5.0
SETTLE_S = 120.0
"""A segment ends when its reps are all stored, or nothing new was stored for this long
after the edge finished while the workers and sinks had consumed everything (a restarting
or lagging role never ends a segment early). Above the worker's stall exit
(``SLEDFLEET_STREAM_STALL_S``, 60 s) plus a restart: the second full run used 45 s and cut
the kafka-leader segment short."""


ADHERENCE_WAIT_S = 120.0
"""After its reps, a segment's weekly adherence rows may still be on their way (sessions are
re-keyed by patient, then counted): the score is taken again until they match or this
much time has passed (twice the patients' tick interval)."""


@dataclass(frozen=True, slots=True)
class Segment:
    """One slice of the fleet (its own clinics, machines, patients) and the fault it meets."""

    index: int
    name: str
    skew_s: float = 0.0

    def args(self, fleet: FleetSpec) -> list[str]:
        spec = replace(fleet, seed=fleet.seed + self.index)
        return [*spec.args(), "--id-prefix", f"s{self.index}", "--skew-s", str(self.skew_s)]


WINDOW_S = 10.0


def count_at(samples: list[dict[str, Any]], t: float) -> int:
    """Reps in the database at wall time ``t`` (the last good sample at or before it)."""
    best = 0
    for s in samples:
        if s["t"] > t:
            break
        if "reps" in s:
            best = int(s["reps"])
    return best


def recovery(samples: list[dict[str, Any]], t_fault: float, t_end: float) -> dict[str, float]:
    """Rates around a fault from the monitor's samples (one a second).

    ``recovery_s``: from the injection until the 10-s rep rate is back to half the rate of
    the 15 s before it, after having dropped below that (0 when it never dropped; the
    segment's last 10 s, where the rate falls because the data ends, are not a dip);
    ``stall_s``: the longest time after the injection with no new rep stored."""
    pre = (count_at(samples, t_fault) - count_at(samples, t_fault - 15.0)) / 15.0
    good = [s for s in samples if "reps" in s and t_fault <= s["t"] <= t_end]
    dipped, rec_t = False, t_fault
    for s in good:
        if s["t"] > t_end - WINDOW_S:
            break  # the segment's own end is not a fault's dip
        rate = (int(s["reps"]) - count_at(samples, s["t"] - WINDOW_S)) / WINDOW_S
        if rate < 0.5 * pre and s["t"] - t_fault >= WINDOW_S:
            dipped = True
        elif dipped and rate >= 0.5 * pre:
            rec_t = s["t"]
            break
    else:
        rec_t = t_end if dipped else t_fault
    stall, last_t, last_n = 0.0, t_fault, count_at(samples, t_fault)
    for s in good:
        if int(s["reps"]) > last_n:
            stall = max(stall, s["t"] - last_t)
            last_t, last_n = s["t"], int(s["reps"])
    rec = rec_t - t_fault
    during = (count_at(samples, rec_t) - count_at(samples, t_fault)) / rec if rec > 0 else pre
    after_end = min(t_end, rec_t + 30.0)
    after = (
        (count_at(samples, after_end) - count_at(samples, rec_t)) / (after_end - rec_t)
        if after_end > rec_t else 0.0
    )  # fmt: skip
    return {"pre_rate": pre, "recovery_s": rec, "stall_s": stall,
            "rate_during": during, "rate_after": after}  # fmt: skip


def run_segment(
    dep: Deployment, mon: Monitor, seg: Segment, fault: Fault, timeout_s: float,
    inject_frac: float = 0.2,
) -> dict[str, Any]:  # fmt: skip
    args = seg.args(dep.fleet)
    dep.probe("prepare-segment", "--admin-dsn", dep.admin_dsn,
              "--bootstrap", dep.kafka.bootstrap, *args)  # fmt: skip
    truth = int(dep.probe("score", "--dsn", dep.dsn, *args)["truth_reps"])
    r0 = mon.latest_reps()
    t_start = time.time()
    fleet = dep.start_fleet(args, name=f"fleet-{seg.name}")
    deadline = time.monotonic() + timeout_s
    if seg.name in INJECT_WHILE_PUBLISHING:
        # at the edge: the agents must still be publishing when the fault hits
        while time.time() < t_start + PUBLISH_FAULT_AFTER_S and fleet.alive():
            time.sleep(0.2)
    else:
        while mon.latest_reps() < r0 + inject_frac * truth and time.monotonic() < deadline:
            _check_roles(dep)
            time.sleep(0.5)
    t_fault = time.time()
    what = fault(dep)
    t_restored = time.time()
    log.info("segment %s: %s", seg.name, what)
    last, since = -1, time.monotonic()
    while time.monotonic() < deadline:
        _check_roles(dep)
        reps = mon.latest_reps()
        if reps >= r0 + truth and not fleet.alive():
            break
        if reps != last or not mon.caught_up():
            last, since = reps, time.monotonic()
        elif time.monotonic() - since > SETTLE_S and not fleet.alive():
            break  # nothing new for SETTLE_S: what is missing will stay missing
        time.sleep(1.0)
    fleet.stop(10.0)
    samples = mon.samples()
    t_last = max((s["t"] for s in samples if s.get("reps", -1) == mon.latest_reps()),
                 default=time.time())  # fmt: skip
    score = dep.probe("score", "--dsn", dep.dsn, *args)
    wait = time.monotonic() + ADHERENCE_WAIT_S
    while score["adherence_exact"] < score["adherence_rows"] and time.monotonic() < wait:
        time.sleep(5.0)  # polling: the weekly rows follow the sessions through the patients
        score = dep.probe("score", "--dsn", dep.dsn, *args)
    published = _fleet_stats(fleet).get("frames", -1)
    kafka = dep.probe("kafka-seqs", "--bootstrap", dep.kafka.bootstrap,
                      "--machine-prefix", f"s{seg.index}c")  # fmt: skip
    return {
        "frames_published": published, "frames_in_kafka": kafka["frames"],
        "frames_lost": published - kafka["frames"], "frames_duplicated": kafka["duplicates"],
        "segment": seg.name, "fault": what, "truth_reps": truth, "score": score,
        "t_start": t_start, "t_fault": t_fault, "t_restored": t_restored, "t_last": t_last,
        "throughput": truth / max(1e-9, t_last - t_start),
        **recovery(samples, t_fault, t_last),
    }  # fmt: skip


def _fleet_stats(fleet: Proc) -> dict[str, Any]:
    """The fleet's last output line: FleetStats as JSON (frames the broker acknowledged)."""
    for line in reversed(fleet.log_path.read_text().splitlines()):
        if line.startswith("{"):
            try:
                stats: dict[str, Any] = json.loads(line)
                return stats
            except json.JSONDecodeError:
                break
    return {}


def _check_roles(dep: Deployment) -> None:
    """compose's ``restart: unless-stopped``: a role that exited is started again (a worker
    exits on purpose when a partition stalls, so that a restart resumes it)."""
    for name in dep.check_alive():
        if name in dep.shape.bridge_hosts:
            dep.start_bridge(name)
        elif name in dep.shape.worker_hosts:
            dep.start_worker(name)
        elif name in dep.shape.sink_hosts:
            dep.start_sink(name)
        else:
            raise RuntimeError(f"{name} died; logs in {dep.logs}")
        dep.restarts[name] = dep.restarts.get(name, 0) + 1
        log.warning("%s exited: restarted (%d so far)", name, dep.restarts[name])


def scale_to(dep: Deployment, bridges: int, workers: int) -> None:
    """Stop (SIGTERM) or start bridges and workers so that ``bridges`` and ``workers`` run."""
    for i, host in enumerate(dep.shape.bridge_hosts):
        if i >= bridges and dep.roles[host].alive():
            dep.roles[host].stop()
            dep.leave_share_group(host)
        elif i < bridges and not dep.roles[host].alive():
            dep.start_bridge(host)
    for i, host in enumerate(dep.shape.worker_hosts):
        if i >= workers and dep.roles[host].alive():
            dep.roles[host].stop()
        elif i < workers and not dep.roles[host].alive():
            dep.start_worker(host)
    dep.stopped = {h for h in [*dep.shape.bridge_hosts, *dep.shape.worker_hosts]
                   if not dep.roles[h].alive()}  # fmt: skip
    dep.wait_healthy_subset()


def plan(faults: list[str], scale: bool) -> list[tuple[Segment, str]]:
    """(segment, fault name) in order: scale-out pair first, then one segment per fault."""
    out: list[tuple[Segment, str]] = []
    if scale:
        out += [(Segment(0, "scale-1x1"), "baseline"), (Segment(1, "scale-full"), "baseline")]
    for name in faults:
        skew = SKEW_S if name == "clock-skew" else 0.0
        out.append((Segment(len(out), name, skew), name))
    return out


def run(
    dep: Deployment, faults: list[str], scale: bool, segment_timeout_s: float = 900.0
) -> dict[str, Any]:
    """Deploy, run every segment with its fault, score each, check loopback, tear down."""
    mon = Monitor(dep)
    t0 = time.monotonic()
    results: list[dict[str, Any]] = []
    try:
        dep.up()
        timings = {"deploy_s": time.monotonic() - t0}
        mon.start()
        for seg, fault in plan(faults, scale):
            if seg.name == "scale-1x1":
                scale_to(dep, 1, 1)
            elif seg.name == "scale-full":
                scale_to(dep, dep.shape.bridges, dep.shape.workers)
            results.append(run_segment(dep, mon, seg, FAULTS[fault], segment_timeout_s))
            log.info("segment %s: %s", seg.name, _brief(results[-1]))
        return {"segments": results, "timings": timings, "loopback": loopback_report(dep),
                "restarts": dep.restarts,
                "samples": mon.samples()}  # fmt: skip
    finally:
        mon.stop()
        dep.down()


def _brief(r: dict[str, Any]) -> str:
    sc = r["score"]
    return (f"{sc['matched_reps']}/{sc['truth_reps']} reps, {sc['missing_reps']} missing, "
            f"{sc['extra_reps']} extra, recovery {r['recovery_s']:.0f} s")  # fmt: skip


def table(result: dict[str, Any]) -> str:
    """The fault table: what was lost, duplicated, how long recovery took, throughput."""
    head = (f"{'segment':<14} {'frames lost':>11} {'dup':>5} {'reps miss':>9} "
            f"{'extra':>5} {'sets':>6} {'adh':>7} "
            f"{'recov s':>7} {'stall s':>7} {'rate pre':>8} {'during':>7} {'after':>7} "
            f"{'reps/s':>7}  fault")  # fmt: skip
    lines = [head, "-" * len(head)]
    for r in result["segments"]:
        sc = r["score"]
        lines.append(
            f"{r['segment']:<14} {r['frames_lost']:>11} {r['frames_duplicated']:>5} "
            f"{sc['missing_reps']:>9} {sc['extra_reps']:>5} "
            f"{sc['sets_exact_fraction']:>6.3f} "
            f"{sc['adherence_exact']:>3}/{sc['adherence_rows']:<3} "
            f"{r['recovery_s']:>7.1f} {r['stall_s']:>7.1f} {r['pre_rate']:>8.1f} "
            f"{r['rate_during']:>7.1f} {r['rate_after']:>7.1f} "
            f"{r['throughput']:>7.1f}  {r['fault']}"
        )  # fmt: skip
    return "\n".join(lines)
