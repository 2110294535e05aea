"""Disorder knobs: device clocks, mixed rates and frame sizes, delays, outages, offline
machines, and the lockstep that makes a simulated fleet stream together."""

from __future__ import annotations

import dataclasses
import datetime as dt
import itertools
import threading
from collections import Counter

import pytest

from edge.agent_settings import EdgeSettings
from edge.samples import Sample, SourceEvent
from edge.simulator import DeviceClock, FleetConfig, build_fleet
from edge.simulator.disorder import DAY_NS, Delivery
from edge.simulator.lockstep import Lockstep

DISORDERED = FleetConfig(
    clinics=2,
    machines_per_clinic=4,
    patients_per_machine=2,
    days=4,
    seed=5,
    start_date=dt.date(2026, 11, 2),
    time_zones=("Europe/Berlin", "Australia/Sydney"),
    clinic_weekdays=(0, 1, 2, 3, 4, 5, 6),
    sets=1,
    reps=4,
    rates_hz=(50.0, 100.0, 200.0),
    frame_sizes=(20, 50, 100),
    clock_offset_max_h=0.5,
    clock_drift_max_ppm=30.0,
    clock_offset_reported=0.5,
    clocks=((1, DeviceClock(3 * 3_600_000.0)), (2, DeviceClock(-4 * 3_600_000.0, reported=False))),
    lockstep_s=30.0,
    network_delay_max_s=300.0,
    reconnect_prob=0.3,
    offline_machines=(3,),
    offline_fraction=0.25,
)


@pytest.mark.parametrize(
    "clock",
    [DeviceClock(), DeviceClock(7_200_000.0), DeviceClock(-3.6e6, 80.0, ref_ns=10**18)],
)
def test_device_clock_round_trips(clock: DeviceClock) -> None:
    for t in (10**18, 10**18 + 3 * DAY_NS, 10**18 - 12345):
        assert abs(clock.true_ns(clock.device_ns(t)) - t) <= 1
        expected = clock.offset_ms * 1e6 + clock.drift_ppm * 1e-6 * (t - clock.ref_ns)
        assert abs(clock.device_ns(t) - t - expected) <= 1


def test_delivery_holds_data_through_an_outage() -> None:
    d = Delivery(delay_ns=5, outages=((100, 200),))
    assert [d.due_ns(t) for t in (0, 94, 95, 150, 194, 195)] == [5, 99, 200, 200, 200, 200]
    off = Delivery(reconnect_at_ns=10 * DAY_NS, offline_days=2.0)
    assert off.offline_since_ns == 8 * DAY_NS
    assert off.backlog(10 * DAY_NS - 1)
    assert not off.backlog(10 * DAY_NS)


def test_knobs_are_deterministic_and_named_per_machine() -> None:
    a, b = build_fleet(DISORDERED), build_fleet(DISORDERED)
    assert a.truth() == b.truth()
    machines = a.truth()["machines"]
    assert [m["rate_hz"] for m in machines[:4]] == [50.0, 100.0, 200.0, 50.0]
    assert [m["frame_samples"] for m in machines[:4]] == [20, 50, 100, 20]
    assert machines[1]["clock_offset_ms"] == 3 * 3_600_000.0
    assert machines[2]["clock_offset_ms"] == -4 * 3_600_000.0
    assert not machines[2]["clock_offset_reported"]
    others = [m for i, m in enumerate(machines) if i not in (1, 2)]
    assert all(abs(m["clock_offset_ms"]) <= 0.5 * 3_600_000 for m in others)
    assert all(abs(m["clock_drift_ppm"]) <= 30 for m in others)
    assert len({m["clock_offset_ms"] for m in others}) == len(others)
    assert all(0 <= m["delay_s"] <= 300 for m in machines)
    offline = [m for m in machines if m["reconnect_at_ns"] is not None]
    assert len(offline) in (2, 3)
    assert machines[3] in offline
    assert all(1.0 <= m["offline_days"] <= 3.0 for m in offline)
    assert {m["time_zone"] for m in machines} == {"Europe/Berlin", "Australia/Sydney"}
    settings = a.machines[2].edge_settings(EdgeSettings())
    assert (settings.machine_id, settings.frame_samples) == (a.machines[2].machine_id, 100)
    other = build_fleet(dataclasses.replace(DISORDERED, seed=6)).truth()["machines"]
    assert [m["clock_offset_ms"] for m in other] != [m["clock_offset_ms"] for m in machines]


def test_sources_carry_device_time_and_what_the_agent_knows() -> None:
    fleet = build_fleet(DISORDERED)
    truth = fleet.truth()
    for sim in fleet.machines[1:3]:
        sessions = [s for s in truth["sessions"] if s["machine_id"] == sim.machine_id]
        if not sessions:
            continue
        src = build_fleet(dataclasses.replace(DISORDERED, lockstep_s=None)).machines[sim.index]
        items = list(itertools.islice(src.source().items(), 50_000))
        started = [i for i in items if isinstance(i, SourceEvent) and i.type == "session_started"]
        assert started[0].t_ns == sessions[0]["device_start_ns"]
        shift = started[0].t_ns - sessions[0]["start_ns"]
        assert abs(shift - sim.clock.offset_ms * 1e6) < 1e9
        samples = [i for i in items[:1000] if isinstance(i, Sample)]
        steps = Counter(b.t_ns - a.t_ns for a, b in itertools.pairwise(samples))
        assert steps.most_common(1)[0][0] == round(1e9 / sim.rate_hz)  # device-time grid
    s1, s2 = fleet.machines[1].source(), fleet.machines[2].source()
    assert s1.reported_clock_offset_ms == pytest.approx(3 * 3_600_000.0, abs=1e-6)
    assert s2.reported_clock_offset_ms is None
    for s in (s1, s2):
        s.close()


def test_offline_machines_have_no_sessions_before_their_outage() -> None:
    fleet = build_fleet(DISORDERED)
    truth = fleet.truth()
    window_end = max(s["end_ns"] for s in truth["sessions"])
    for sim in fleet.machines:
        since = sim.delivery.offline_since_ns
        if since is None:
            continue
        reconnect = sim.delivery.reconnect_at_ns
        assert reconnect is not None
        assert window_end - 2 * DAY_NS < reconnect
        starts = [s["start_ns"] for s in truth["sessions"] if s["machine_id"] == sim.machine_id]
        assert all(t >= since for t in starts)


def test_lockstep_sources_stream_together_in_due_order() -> None:
    """Every source in its own thread, as the fleet runner runs them: items reach the
    consumer in due order up to the lockstep window plus one chunk; an offline machine's
    backlog comes first (into its outbox) and its uplink opens at its reconnect time."""
    cfg = dataclasses.replace(DISORDERED, reconnect_prob=0.0)
    fleet = build_fleet(cfg)
    sources = [m.source() for m in fleet.machines]
    log: list[tuple[int, int, bool, bool]] = []  # (machine, due, backlog, gate open)
    lock = threading.Lock()

    def consume(i: int) -> None:
        src = sources[i]
        delivery = fleet.machines[i].delivery
        for item in src.items():
            true = fleet.machines[i].clock.true_ns(item.t_ns)
            gate = src.connect_gate
            with lock:
                log.append(
                    (i, src.due_ns(item), delivery.backlog(true), gate is None or gate.is_set())
                )

    threads = [threading.Thread(target=consume, args=(i,)) for i in range(len(sources))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not any(t.is_alive() for t in threads)
    live = [(i, due) for i, due, backlog, _ in log if not backlog]
    slack = 30 * 10**9 + round(1000 / 50 * 1e9)  # window + one chunk at the slowest rate
    high = 0
    for _, due in live:
        assert due >= high - slack, (due, high)
        high = max(high, due)
    for _i, _, backlog, gate_open in log:
        if backlog:
            assert not gate_open  # stored before the uplink came back
    assert any(b for _, _, b, _ in log), "no backlog replayed"
    assert fleet.machines[0].lockstep is not None
    assert fleet.machines[0].lockstep.members() == 0


def test_a_member_that_never_runs_holds_the_others_until_it_leaves() -> None:
    step = Lockstep(window_ns=10)
    a, b = step.join(), step.join()
    stop = threading.Event()
    done = threading.Event()
    threading.Thread(target=lambda: (step.advance(a, 100, stop), done.set())).start()
    assert not done.wait(0.3)
    step.leave(b)
    assert done.wait(5)
