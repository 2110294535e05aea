"""Prometheus text rendering and the /metrics + /healthz endpoint (loopback only)."""

from __future__ import annotations

import urllib.error
import urllib.request

import pytest

from stream.bridge.metrics import BridgeMetrics, MetricsServer


def test_render_counts_forwarded_dead_letters_and_latency():
    m = BridgeMetrics()
    for _ in range(3):
        m.on_received()
    m.on_kafka_ack("sledfleet.telemetry", None, 0.003)
    m.on_kafka_ack("sledfleet.deadletter", "bad_id", 0.2)
    m.on_acks(2)
    m.on_connection(True)
    text = m.render()
    assert "sledfleet_bridge_received_total 3\n" in text
    assert 'sledfleet_bridge_forwarded_total{topic="sledfleet.telemetry"} 1\n' in text
    assert 'sledfleet_bridge_dead_lettered_total{reason="bad_id"} 1\n' in text
    assert "sledfleet_bridge_in_flight 1\n" in text
    assert "sledfleet_bridge_mqtt_connected 1\n" in text
    assert "sledfleet_bridge_mqtt_acks_total 2\n" in text
    assert 'sledfleet_bridge_kafka_ack_latency_seconds_bucket{le="0.005"} 1\n' in text
    assert 'sledfleet_bridge_kafka_ack_latency_seconds_bucket{le="0.25"} 2\n' in text
    assert 'sledfleet_bridge_kafka_ack_latency_seconds_bucket{le="+Inf"} 2\n' in text
    assert "sledfleet_bridge_kafka_ack_latency_seconds_count 2\n" in text
    assert "# TYPE sledfleet_bridge_kafka_ack_latency_seconds histogram\n" in text
    assert m.forwarded_total() == 1
    assert m.dead_lettered_total() == 1


def test_latency_buckets_are_inclusive_upper_bounds_and_acks_count_with_the_ack():
    m = BridgeMetrics()
    for latency in (0.001, 0.0010001, 5.0, 7.0):
        m.on_received()
        m.on_kafka_ack("t", None, latency, acks_sent=2)
    text = m.render()
    name = "sledfleet_bridge_kafka_ack_latency_seconds_bucket"
    assert f'{name}{{le="0.001"}} 1\n' in text
    assert f'{name}{{le="0.0025"}} 2\n' in text
    assert f'{name}{{le="5.0"}} 3\n' in text
    assert f'{name}{{le="+Inf"}} 4\n' in text
    assert "sledfleet_bridge_mqtt_acks_total 8\n" in text
    assert "sledfleet_bridge_in_flight 0\n" in text


def test_label_values_are_escaped():
    m = BridgeMetrics()
    m.on_received()
    m.on_kafka_error('Weird"Error\\x')
    assert 'error="Weird\\"Error\\\\x"' in m.render()


def test_every_sample_line_has_a_type():
    text = BridgeMetrics().render()
    names = {line.split()[2] for line in text.splitlines() if line.startswith("# TYPE")}
    for line in text.splitlines():
        if not line.startswith("#"):
            base = line.split("{")[0].split()[0]
            assert any(base.startswith(n) for n in names), line


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
        m, lambda: (state["ok"], "ok" if state["ok"] else "mqtt down"), "127.0.0.1", 0
    )
    srv.start()
    yield srv, m, state
    srv.stop()


def test_endpoint_serves_metrics_and_health(server):
    srv, m, state = server
    base = f"http://127.0.0.1:{srv.port}"
    m.on_received()
    status, body = _get(base + "/metrics")
    assert status == 200
    assert "sledfleet_bridge_received_total 1" in body
    assert _get(base + "/healthz") == (503, "mqtt down\n")
    state["ok"] = True
    assert _get(base + "/healthz") == (200, "ok\n")
    assert _get(base + "/nope")[0] == 404
