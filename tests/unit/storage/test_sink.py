"""Sink loop logic with in-memory fakes of the Kafka client objects (no network): poison
routing, write → dead letters → offset commit order, outage retries without polling."""

from __future__ import annotations

import threading
from collections import namedtuple
from typing import Any

import psycopg
import pytest

from edge.contract import encode
from edge.settings import KafkaSettings
from storage.metrics import Metrics
from storage.sink import Item, Sink, SinkSettings
from stream.app.watchdog import RebalanceWatch
from tests.unit.storage.test_rows import rep

TP = namedtuple("TP", "topic partition")
Msg = namedtuple("Msg", "value")


class FakeFuture:
    def get(self, timeout: float) -> None:
        return None


class FakeProducer:
    def __init__(self, log: list[str]) -> None:
        self.sent: list[tuple[str, bytes]] = []
        self.log = log

    def send(self, topic: str, key: bytes, value: bytes) -> FakeFuture:
        self.sent.append((topic, value))
        return FakeFuture()

    def flush(self) -> None:
        self.log.append("flush")

    def close(self, timeout: float) -> None:
        pass


class FakeConsumer:
    def __init__(
        self, batches: list[dict[Any, list[Any]]], log: list[str], stop: threading.Event
    ) -> None:
        self.batches = batches
        self.log = log
        self.stop = stop
        self.polls = 0

    def poll(self, timeout_ms: int, max_records: int) -> dict[Any, list[Any]]:
        self.polls += 1
        if self.batches:
            return self.batches.pop(0)
        self.stop.set()
        return {}

    def commit(self) -> None:
        self.log.append("commit")

    def assignment(self) -> set[Any]:
        return set()  # lag: nothing assigned, nothing to report

    def close(self, autocommit: bool) -> None:
        pass


def make_sink() -> Sink:
    settings = SinkSettings(
        metrics_port=0, max_wait_ms=10, refresh_s=0, backoff_min_s=0.01, backoff_max_s=0.02
    )
    return Sink("postgresql://unused", settings, KafkaSettings(topic_prefix="t."), Metrics())


def test_collect_dead_letters_poison_and_skips_tombstones() -> None:
    sink = make_sink()
    producer = FakeProducer([])
    records = {
        TP("t.sledfleet.reps", 0): [
            Msg(encode(rep())),
            Msg(b"{oops"),
            Msg(None),
            Msg(encode(rep(clinic_id="a b"))),
        ],
        TP("t.unknown", 0): [Msg(b"{}")],
    }
    items = sink.collect(records, producer)
    assert [i.parsed.kind for i in items] == ["rep"]
    assert [t for t, _ in producer.sent] == ["t.sledfleet.deadletter"] * 3
    assert sink.metrics.get("tombstones_total", topic="t.sledfleet.reps") == 1
    assert sink.metrics.get("dead_letters_total", reason="malformed_json") == 1


def test_offsets_are_committed_only_after_the_write_and_dead_letters(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sink = make_sink()
    log: list[str] = []
    stop = threading.Event()
    batch = {TP("t.sledfleet.reps", 0): [Msg(encode(rep())), Msg(b"bad")]}
    consumer = FakeConsumer([batch], log, stop)
    monkeypatch.setattr(sink, "_connect_with_retry", lambda stop: None)
    monkeypatch.setattr(sink, "_drop_connection", lambda: None)
    monkeypatch.setattr(
        sink, "write_items", lambda items, producer, stop: log.append(f"write {len(items)}")
    )
    sink.run(stop, consumer, FakeProducer(log))
    assert log == ["write 1", "flush", "commit"]


def test_outage_retries_the_same_batch_without_polling(monkeypatch: pytest.MonkeyPatch) -> None:
    sink = make_sink()
    calls: list[int] = []
    health: list[bool] = []

    def flaky(items: list[Item], producer: Any) -> None:
        calls.append(len(items))
        health.append(sink.metrics.healthy)
        if len(calls) < 3:
            raise psycopg.OperationalError("connection refused")

    monkeypatch.setattr(sink, "_write_isolating", flaky)
    monkeypatch.setattr(sink, "_drop_connection", lambda: None)
    monkeypatch.setattr(sink, "_own_clinic_only", lambda items, producer: items)
    items = sink.collect({TP("t.sledfleet.reps", 0): [Msg(encode(rep()))]}, FakeProducer([]))
    sink.write_items(items, FakeProducer([]), threading.Event())
    assert calls == [1, 1, 1]
    assert health == [True, False, False]
    assert sink.metrics.healthy
    assert sink.metrics.get("db_errors_total") == 2


def test_stop_during_an_outage_leaves_the_batch_uncommitted(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sink = make_sink()

    def down(items: list[Item], producer: Any) -> None:
        raise psycopg.OperationalError("down")

    monkeypatch.setattr(sink, "_write_isolating", down)
    monkeypatch.setattr(sink, "_drop_connection", lambda: None)
    monkeypatch.setattr(sink, "_own_clinic_only", lambda items, producer: items)
    stop = threading.Event()
    stop.set()
    with pytest.raises(InterruptedError):
        sink.write_items([], FakeProducer([]), stop)


def test_unassigned_counts_only_a_continuous_stretch_past_its_limit() -> None:
    watch = RebalanceWatch(limit_s=120.0)  # observe(unassigned, now)
    assert watch.observe(True, 0.0) is None
    assert watch.observe(True, 100.0) is None
    assert watch.observe(False, 110.0) is None  # assigned meanwhile: start again
    assert watch.observe(True, 111.0) is None
    assert watch.observe(True, 231.0) is None
    assert watch.observe(True, 231.5) == 120.5
    assert watch.observe(True, 232.0) is None  # counting again after reporting
    off = RebalanceWatch(limit_s=0.0)
    assert off.observe(True, 0.0) is None
    assert off.observe(True, 10_000.0) is None


def test_a_consumer_that_never_gets_a_partition_is_replaced(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """kafka-python hung in a rebalance at start: the group leader logged its assignment
    and never synced; the sink must join again rather than read nothing for good."""
    sink = make_sink()
    log: list[str] = []
    stop = threading.Event()
    clock = iter(range(0, 10_000, 50))
    monkeypatch.setattr("storage.sink.time.monotonic", lambda: float(next(clock)))

    class Stuck(FakeConsumer):
        def __init__(self) -> None:
            super().__init__([{}] * 10, log, stop)
            self.closed = False

        def close(self, autocommit: bool) -> None:
            self.closed = True

    stuck = Stuck()
    batch = {TP("t.sledfleet.reps", 0): [Msg(encode(rep()))]}

    class Healthy(FakeConsumer):
        def assignment(self) -> set[Any]:
            return {TP("t.sledfleet.reps", 0)}

        def highwater(self, tp: Any) -> None:
            return None  # lag: nothing fetched yet

    fresh = Healthy([batch], log, stop)
    monkeypatch.setattr(sink, "_consumer", lambda: fresh)
    monkeypatch.setattr(sink, "_connect_with_retry", lambda stop: None)
    monkeypatch.setattr(sink, "_drop_connection", lambda: None)
    monkeypatch.setattr(
        sink, "write_items", lambda items, producer, stop: log.append(f"write {len(items)}")
    )
    sink.run(stop, stuck, FakeProducer(log))
    assert stuck.closed
    assert sink.metrics.get("consumer_rejoins_total") == 1
    assert log == ["write 1", "commit"]  # the new consumer's batch, written and committed
