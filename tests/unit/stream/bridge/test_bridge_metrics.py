"""The bridge's collector (parsed with prometheus_client's parser) and its /metrics endpoint."""

from __future__ import annotations

import urllib.error
import urllib.request

import pytest

from edge.metrics_http import MetricsServer
from stream.bridge.metrics import BridgeMetrics
from tests.promtext import check_names, parse, scrape, value

LAT = "sledfleet_bridge_kafka_ack_latency_seconds"


def test_collector_counts_forwarded_dead_letters_and_latency():
    m = BridgeMetrics()
    for _ in range(3):
        m.on_received()
    m.on_kafka_ack("sledfleet.telemetry", None, 0.003)
    m.on_kafka_ack("sledfleet.deadletter", "bad_id", 0.2)
    m.on_acks(2)
    m.on_connection(True)
    families, s = parse(m.render())
    check_names(families, "bridge")
    assert value(s, "sledfleet_bridge_received_total") == 3
    assert value(s, "sledfleet_bridge_forwarded_total", topic="sledfleet.telemetry") == 1
    assert value(s, "sledfleet_bridge_dead_lettered_total", reason="bad_id") == 1
    assert value(s, "sledfleet_bridge_in_flight") == 1
    assert value(s, "sledfleet_bridge_mqtt_connected") == 1
    assert value(s, "sledfleet_bridge_mqtt_subscribed") == 0
    assert value(s, "sledfleet_bridge_mqtt_acks_total") == 2
    assert value(s, LAT + "_bucket", le="0.005") == 1
    assert value(s, LAT + "_bucket", le="0.25") == 2
    assert value(s, LAT + "_bucket", le="+Inf") == 2
    assert value(s, LAT + "_count") == 2
    assert families[LAT][0] == "histogram"
    assert families["sledfleet_bridge_dead_lettered"][0] == "counter"
    assert m.forwarded_total() == 1
    assert m.dead_lettered_total() == 1


def test_latency_buckets_are_inclusive_upper_bounds_and_acks_count_with_the_ack():
    m = BridgeMetrics()
    for latency in (0.001, 0.0010001, 5.0, 7.0):
        m.on_received()
        m.on_kafka_ack("t", None, latency, acks_sent=2)
    _, s = parse(m.render())
    assert value(s, LAT + "_bucket", le="0.001") == 1
    assert value(s, LAT + "_bucket", le="0.0025") == 2
    assert value(s, LAT + "_bucket", le="5.0") == 3
    assert value(s, LAT + "_bucket", le="+Inf") == 4
    assert value(s, LAT + "_sum") == pytest.approx(12.0020001)
    assert value(s, "sledfleet_bridge_mqtt_acks_total") == 8
    assert value(s, "sledfleet_bridge_in_flight") == 0


def test_label_values_are_escaped():
    m = BridgeMetrics()
    m.on_received()
    m.on_kafka_error('Weird"Error\\x\nnext')
    assert 'error="Weird\\"Error\\\\x\\nnext"' in m.render()
    _, s = parse(m.render())
    assert value(s, "sledfleet_bridge_kafka_errors_total", error='Weird"Error\\x\nnext') == 1


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


@pytest.fixture
def server():
    m = BridgeMetrics()
    state = {"ok": False}
    srv = MetricsServer(
        m.registry(), lambda: (state["ok"], "ok" if state["ok"] else "mqtt down"), port=0
    ).start()
    yield srv, m, state
    srv.stop()


def test_endpoint_serves_metrics_and_health(server):
    srv, m, state = server
    base = f"http://127.0.0.1:{srv.port}"
    m.on_received()
    families, s = scrape(srv.port)
    check_names(families, "bridge")
    assert value(s, "sledfleet_bridge_received_total") == 1
    assert _get(base + "/healthz") == (503, "mqtt down\n")
    state["ok"] = True
    assert _get(base + "/healthz") == (200, "ok\n")
    assert _get(base + "/nope")[0] == 404
