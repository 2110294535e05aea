"""The machine agent (``stream.app.machines``) in-process, against a stand-in for the few
Faust objects ``FaustPort`` touches. Real Kafka runs in tests/integration; here the
adapter's own decisions are checked: decode, forward, per-machine timelines, dead
letters, one bounded table value per machine, liveness on (injected) wall time."""

from __future__ import annotations

import asyncio
import json
import threading
from collections import defaultdict
from types import SimpleNamespace
from typing import Any

import pytest
from faust.types import TP

from edge import contract
from stream.app.agents import Plumbing, TopicNames
from stream.app.machines import MachineAgent, Timing
from stream.core.processor import MachineProcessor
from stream.core.settings import CoreSettings
from stream.core.timeline import frame_end_ns
from tests.unit.stream.core import synth

TOPIC = "t.sledfleet.telemetry"


class FakeProducer:
    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes, bytes, int | None]] = []

    async def send(self, topic: str, key: bytes, value: bytes, partition: Any, *_: Any) -> Any:
        self.sent.append((topic, key, value, partition))
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        future.set_result(None)
        return future


class FakeConsumer:
    def __init__(self, partitions: int) -> None:
        self.tps = {TP(TOPIC, p) for p in range(partitions)}
        self.ends: dict[int, int] = {}
        self._committed_offset: defaultdict[Any, Any] = defaultdict(lambda: None)
        self._acked: defaultdict[Any, list[int]] = defaultdict(list)
        self._acked_index: defaultdict[Any, set[int]] = defaultdict(set)
        from intervaltree import IntervalTree

        self._gap: defaultdict[Any, Any] = defaultdict(IntervalTree)

    def assignment(self) -> set[Any]:
        return self.tps

    def highwater(self, tp: Any) -> int | None:
        return self.ends.get(tp.partition)


def fake_app(partitions: int = 2) -> Any:
    done = threading.Event()
    done.set()
    return SimpleNamespace(
        consumer=FakeConsumer(partitions),
        producer=FakeProducer(),
        consumer_generation_id=1,
        rebalancing=False,
        tables=SimpleNamespace(recovery=SimpleNamespace(completed=done)),
    )


def fake_table() -> Any:
    return SimpleNamespace(
        data={}, changelog_topic=SimpleNamespace(get_topic_name=lambda: "t.machines-changelog")
    )


def names() -> TopicNames:
    return TopicNames(
        machines=TOPIC,
        events="t.sledfleet.events",
        state="t.sledfleet.state",
        prescriptions="t.sledfleet.prescriptions",
        sessions="t.sledfleet.sessions",
        deadletter="t.sledfleet.deadletter",
        sessions_by_patient="t.by-patient",
        outputs={
            "rep": "t.reps",
            "set": "t.sets",
            "session": "t.sessions",
            "alert": "t.alerts",
            "machine_status": "t.status",
            "adherence": "t.adh",
        },
    )


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def agent(clock: Clock | None = None) -> tuple[MachineAgent, Any, Any]:
    app, table = fake_app(), fake_table()
    plumbing = Plumbing(app, names())
    a = MachineAgent(
        plumbing,
        table,
        MachineProcessor(CoreSettings()),
        Timing(reorder_idle_s=2.0),
        bootstrap=["kafka-a:19092"],
        clock=clock or Clock(),
    )
    return a, app, table


class Msg(SimpleNamespace):
    pass


def batch(items: list[tuple[str, dict[str, Any] | bytes]], partition: int, start: int) -> list[Any]:
    out = []
    for i, (kind, payload) in enumerate(items):
        value = payload if isinstance(payload, bytes) else contract.encode(payload)
        tp = TP(TOPIC, partition)
        message = Msg(
            topic=TOPIC,
            partition=partition,
            offset=start + i,
            value=value,
            headers=[("kind", kind.encode())],
            tp=tp,
        )
        out.append(SimpleNamespace(message=message))
    return out


def session(
    machine: str, reps: int = 4, checkout_after_last_frame: bool = False
) -> list[tuple[str, dict[str, Any]]]:
    """A check-in, the frames of ``reps`` reps, a check-out: at the last frame's start
    (applied at once), or just after its end (held until a later frame or liveness)."""
    sig = synth.Signal().rest(2.0)
    for _ in range(reps):
        sig.rep(rom=400.0, up_s=1.4, down_s=1.8, rest_s=0.8)
    sig.rest(3.0)
    sid = f"{machine}-s"
    frames = synth.frames(sig, session_id=sid, machine_id=machine)
    end = frame_end_ns(frames[-1]) if checkout_after_last_frame else frames[-1]["t0_ns"]
    return [
        ("event", synth.check_in(synth.T0, sid, "p1", machine_id=machine)),
        *[("telemetry", f) for f in frames],
        ("event", synth.check_out(end, sid, machine_id=machine)),
    ]


def produced(app: Any, topic: str) -> list[dict[str, Any]]:
    return [json.loads(v) for t, _, v, _ in app.producer.sent if t == topic]


def test_a_batch_becomes_records_forwarded_events_and_one_state_value_per_machine() -> None:
    a, app, table = agent()
    items = session("m1") + session("m2", reps=3)
    asyncio.run(a.on_batch(batch(items, partition=0, start=0)))
    reps = produced(app, "t.reps")
    assert sorted((r["machine_id"], r["rep_no"]) for r in reps) == sorted(
        [("m1", n) for n in range(1, 5)] + [("m2", n) for n in range(1, 4)]
    )
    assert len(produced(app, "t.sessions")) == 2
    assert [e["type"] for e in produced(app, "t.sledfleet.events")] == [
        "session_started",
        "session_ended",
        "session_started",
        "session_ended",
    ]
    assert set(table.data) == {"m1", "m2"}  # one value per machine, never per partition
    assert a.side.bootstrap == ["kafka-a:19092"]  # the side reader dials what it was given
    changelog = [(k, p) for t, k, _, p in app.producer.sent if t == "t.machines-changelog"]
    assert sorted(changelog) == [(b'"m1"', 0), (b'"m2"', 0)]
    assert a.p.counters.state_max_bytes > 0
    assert a.p.counters.state_max_bytes < 1024 * 1024


def test_bad_input_is_dead_lettered_with_its_reason_and_the_rest_goes_on() -> None:
    a, app, _ = agent()
    items: list[tuple[str, Any]] = [("telemetry", b"{not json"), *session("m1")]
    asyncio.run(a.on_batch(batch(items, partition=1, start=0)))
    dead = produced(app, "t.sledfleet.deadletter")
    assert [d["reason"] for d in dead] == ["malformed_json"]
    assert len(produced(app, "t.reps")) == 4


def test_a_frame_of_a_finalized_session_is_dead_lettered_not_dropped() -> None:
    a, app, _ = agent()
    items = session("m1")
    asyncio.run(a.on_batch(batch(items, partition=0, start=0)))
    n_frames = sum(1 for kind, _ in items if kind == "telemetry")
    late = dict(items[5][1], seq=n_frames)  # the next seq, but of the finalized session
    asyncio.run(a.on_batch(batch([("telemetry", late)], partition=0, start=len(items))))
    dead = produced(app, "t.sledfleet.deadletter")
    assert [d["reason"] for d in dead] == ["closed_session"]
    assert a.p.counters.rejected == {"closed_session": 1}


def test_held_events_wait_for_frames_then_for_wall_silence_on_a_caught_up_partition() -> None:
    clock = Clock()
    a, app, _ = agent(clock)
    items = session("m1", checkout_after_last_frame=True)
    asyncio.run(a.on_batch(batch(items, partition=0, start=0)))
    assert len(produced(app, "t.sessions")) == 0  # the check-out waits for frames past it
    app.consumer.ends[0] = len(items)  # ... the partition is read to its end
    clock.t += 1.0
    asyncio.run(a.on_idle_check())
    assert len(produced(app, "t.sessions")) == 0  # 1 s: not silent long enough
    clock.t += 1.5
    asyncio.run(a.on_idle_check())
    assert len(produced(app, "t.sessions")) == 1  # released by liveness, nothing dropped


def test_liveness_waits_while_the_partition_has_a_backlog() -> None:
    clock = Clock()
    a, app, _ = agent(clock)
    asyncio.run(a.on_batch(batch(session("m1", checkout_after_last_frame=True), 0, 0)))
    app.consumer.ends[0] = 10_000  # more to read: the frames that release it may be there
    clock.t += 30.0
    asyncio.run(a.on_idle_check())
    assert len(produced(app, "t.sessions")) == 0


@pytest.mark.parametrize("order", ["m1 first", "m2 first"])
def test_a_neighbour_hours_ahead_changes_nothing_for_a_machine(order: str) -> None:
    """The old partition clock let one machine's time close another's sets."""
    a1, app1, _ = agent()
    alone = session("m1")
    asyncio.run(a1.on_batch(batch(alone, partition=0, start=0)))

    a2, app2, _ = agent()
    ahead = [
        (
            k,
            {**p, "t0_ns": p["t0_ns"] + 5 * 3600 * 10**9}
            if k == "telemetry"
            else {**p, "ts_ns": p["ts_ns"] + 5 * 3600 * 10**9},
        )
        for k, p in session("m2")
    ]
    mixed = [*ahead, *alone] if order == "m2 first" else [*alone[:10], *ahead, *alone[10:]]
    asyncio.run(a2.on_batch(batch(mixed, partition=0, start=0)))

    def mine(app: Any, topic: str) -> list[Any]:
        return sorted(
            json.dumps({k: v for k, v in r.items() if k != "emitted_at_ns"}, sort_keys=True)
            for r in produced(app, topic)
            if r["machine_id"] == "m1"
        )

    for topic in ("t.reps", "t.sets", "t.sessions"):
        assert mine(app2, topic) == mine(app1, topic), topic


def test_alerts_about_the_past_are_marked_historical_and_fresh_ones_are_not() -> None:
    import time

    clock = Clock()
    a, app, _ = agent(clock)
    now = time.time_ns()
    old = synth.event("fault", now - 26 * 3600 * 10**9, code="load_cell_flat_left")
    new = synth.event("fault", now - 10**9, seq=1, code="load_cell_flat_right")
    asyncio.run(a.on_batch(batch([("event", old), ("event", new)], partition=0, start=0)))
    app.consumer.ends[0] = 2  # no frames come: liveness releases the held events
    clock.t += 3.0
    asyncio.run(a.on_idle_check())
    alerts = {
        ("flat_left" in r["message"], r.get("historical", False)) for r in produced(app, "t.alerts")
    }
    assert alerts == {(True, True), (False, False)}  # the old fault is history, the new is news
    assert a.p.counters.historical_alerts == 1


def test_a_silent_machine_is_released_while_its_neighbours_keep_its_partition_busy() -> None:
    clock = Clock()
    a, app, _ = agent(clock)
    items = session("m1", checkout_after_last_frame=True)
    asyncio.run(a.on_batch(batch(items, partition=0, start=0)))
    offset = len(items)
    neighbour = session("m2", reps=2)
    for k in range(0, len(neighbour), 3):  # m2 streams on, one batch every 0.5 s
        chunk = neighbour[k : k + 3]
        clock.t += 0.5
        asyncio.run(a.on_batch(batch(chunk, partition=0, start=offset)))
        offset += len(chunk)
        app.consumer.ends[0] = offset
        asyncio.run(a.on_idle_check())
    assert clock.t - 1000.0 > 2.0  # m1 has been silent past the idle threshold
    assert "m1-s" in {r["session_id"] for r in produced(app, "t.sessions")}
