"""The sink's collector: declared names only, HELP/TYPE, lag gauges, parsed by prometheus_client."""

from __future__ import annotations

from collections import namedtuple
from typing import Any

import pytest

from storage.metrics import FAMILIES, Metrics, serve
from tests.promtext import check_names, parse, scrape, value

TP = namedtuple("TP", "topic partition")


class LagConsumer:
    def __init__(self, high: dict[Any, int | None], pos: dict[Any, int]) -> None:
        self.high, self.pos = high, pos

    def assignment(self) -> set[Any]:
        return set(self.high)

    def highwater(self, tp: Any) -> int | None:
        return self.high[tp]

    def position(self, tp: Any) -> int:
        return self.pos[tp]


def test_counters_gauges_summary_and_lag_parse():
    m = Metrics()
    m.inc("records_in_total", 5, topic="t.sledfleet.reps")
    m.inc("dead_letters_total", reason='bad "id"')
    m.inc("frames_expired_total", 2)
    m.inc("batches_total")
    m.inc("batch_seconds_sum", 0.25)
    m.set("last_commit_unix", 1.7e9)
    a, b, c = TP("t.sledfleet.reps", 0), TP("t.sledfleet.reps", 1), TP("t.sledfleet.sets", 0)
    m.record_lag(LagConsumer({a: 120, b: 7, c: None}, {a: 100, b: 7, c: 0}))
    families, s = parse(m.render())
    check_names(families, "sink")
    assert families["sledfleet_sink_dead_letters"][0] == "counter"
    assert value(s, "sledfleet_sink_records_in_total", topic="t.sledfleet.reps") == 5
    assert value(s, "sledfleet_sink_dead_letters_total", reason='bad "id"') == 1
    assert value(s, "sledfleet_sink_frames_expired_total") == 2
    assert value(s, "sledfleet_sink_db_errors_total") == 0  # declared counters start at 0
    assert value(s, "sledfleet_sink_batch_seconds_count") == 1
    assert value(s, "sledfleet_sink_batch_seconds_sum") == 0.25
    assert value(s, "sledfleet_sink_last_commit_unix") == 1.7e9
    lag = "sledfleet_sink_consumer_lag"
    assert value(s, lag, topic="t.sledfleet.reps", partition="0") == 20
    assert value(s, lag, topic="t.sledfleet.reps", partition="1") == 0
    assert (lag, frozenset({("topic", "t.sledfleet.sets"), ("partition", "0")})) not in s
    assert value(s, "sledfleet_sink_healthy") == 1
    assert m.get("records_in_total", topic="t.sledfleet.reps") == 5


def test_undeclared_names_and_wrong_labels_are_refused():
    m = Metrics()
    with pytest.raises(KeyError, match="undeclared"):
        m.inc("made_up_total")
    with pytest.raises(KeyError, match="labels"):
        m.inc("records_in_total")
    assert all(f.help for f in FAMILIES.values())


def test_endpoint_serves_metrics_and_health():
    m = Metrics()
    srv = serve(m, 0)
    try:
        families, s = scrape(srv.port)
        check_names(families, "sink")
        m.healthy, m.status = False, "db_unavailable"
        _, s = scrape(srv.port)
        assert value(s, "sledfleet_sink_healthy") == 0
    finally:
        srv.shutdown()
