"""The worker's collector over ``Counters`` and consumer lag, parsed by prometheus_client."""

from __future__ import annotations

import asyncio
from collections import namedtuple
from dataclasses import fields
from typing import Any

from faust.web.drivers.aiohttp import Web

from stream.app.agents import Counters
from stream.app.metrics import (
    BYTES_HELP,
    COUNTER_HELP,
    GAUGE_HELP,
    LABELLED_HELP,
    SECONDS_HELP,
    WorkerMetrics,
    faust_lag,
    page,
)
from tests.promtext import check_names, parse, value

TP = namedtuple("TP", "topic partition")


def test_every_counter_field_is_described():
    described = (
        set(COUNTER_HELP)
        | set(SECONDS_HELP)
        | set(GAUGE_HELP)
        | set(BYTES_HELP)
        | set(LABELLED_HELP)
    )
    assert {f.name for f in fields(Counters)} == described


def test_counters_and_lag_parse():
    c = Counters(frames=10, dead_letters=2, errors=1, compute_ns=1_500_000_000)
    c.by_kind["rep"] = 7
    c.rejected["late_frame"] = 3
    c.state_max_bytes = 51_234
    m = WorkerMetrics(lambda: c, lambda: {("t.sledfleet.telemetry", 3): 42})
    families, s = parse(m.render().decode())
    check_names(families, "worker")
    assert value(s, "sledfleet_worker_frames_total") == 10
    assert value(s, "sledfleet_worker_dead_letters_total") == 2
    assert value(s, "sledfleet_worker_errors_total") == 1
    assert value(s, "sledfleet_worker_compute_seconds_total") == 1.5
    assert value(s, "sledfleet_worker_records_out_by_kind_total", kind="rep") == 7
    assert value(s, "sledfleet_worker_rejected_total", reason="late_frame") == 3
    assert value(s, "sledfleet_worker_state_max_bytes") == 51_234
    lag = "sledfleet_worker_consumer_lag"
    assert value(s, lag, topic="t.sledfleet.telemetry", partition="3") == 42
    assert families[lag][0] == "gauge"
    c.frames += 5  # read at scrape time, not copied
    assert value(parse(m.render().decode())[1], "sledfleet_worker_frames_total") == 15


class FakeConsumer:
    def __init__(self) -> None:
        self.a, self.b, self.c = TP("x", 0), TP("x", 1), TP("y", 0)
        self._committed_offset = {self.a: 90, self.b: None, self.c: 5}

    def assignment(self) -> set[Any]:
        return {self.a, self.b, self.c}

    def highwater(self, tp: Any) -> int:
        if tp == self.c:
            raise KeyError(tp)  # aiokafka before its first fetch
        return 100


def test_faust_lag_from_committed_offset_and_highwater():
    app = type("App", (), {"consumer": FakeConsumer()})()
    assert faust_lag(app) == {("x", 0): 10}


def test_page_serves_the_text_through_faust_aiohttp_driver():
    m = WorkerMetrics(Counters)
    view = page(m)

    class FakeWeb:
        def bytes(self, value: bytes, **kw: Any) -> Any:
            return Web.bytes(self, value, **kw)  # type: ignore[arg-type]

    response = asyncio.run(view(FakeWeb(), None))
    assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    check_names(parse(response.body.decode())[0], "worker")
