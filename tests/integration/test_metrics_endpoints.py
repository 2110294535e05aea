"""Every role's /metrics on the real servers, parsed with prometheus_client's parser.

The edge agent (simulated machine) publishes to the shared Mosquitto, a bridge forwards to
Kafka, a sink reads records produced to its topics: each endpoint must parse, use the
``sledfleet_<role>_`` names with HELP and TYPE, and count what really went through. The
stream worker's endpoint is scraped in tests/integration/test_stream_worker.py
(``test_day_flows_to_output_topics``), its collector unit-tested in
tests/unit/stream/test_app_metrics.py.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from bridge_support import BridgeProcess, free_port, kafka_topics, wait_until

from edge.settings import KafkaSettings, MqttSettings
from storage.synth import Fleet, records
from tests.conftest import REPO_ROOT
from tests.integration import storage_support
from tests.promtext import check_names, scrape, value

pytestmark = pytest.mark.integration


def _sample(port: int, name: str, **labels: str) -> float:
    try:
        _, s = scrape(port)
    except OSError:
        return 0.0
    return s.get((name, frozenset(labels.items())), 0.0)


@pytest.fixture
def procs() -> Iterator[list[Any]]:
    started: list[Any] = []
    yield started
    for p in started:
        if isinstance(p, BridgeProcess):
            p.stop_quietly()
        elif p.poll() is None:
            p.kill()
            p.wait(10)


def test_edge_agent_and_bridge_endpoints(
    mqtt_settings: MqttSettings,
    kafka_settings: KafkaSettings,
    unique: str,
    tmp_path: Path,
    procs: list[Any],
) -> None:
    clinic, machine = f"c{unique}", f"m{unique}"
    with kafka_topics(kafka_settings):
        bridge = BridgeProcess(
            mqtt_settings,
            kafka_settings,
            client_id=f"bridge-{unique}",
            group=f"g{unique}",
            clinic=clinic,
            log_dir=tmp_path,
        ).start()
        procs.append(bridge)
        bridge.wait_healthy()
        edge_port = free_port()
        env = {
            **os.environ,
            "SLEDFLEET_MQTT_HOST": mqtt_settings.host,
            "SLEDFLEET_MQTT_PORT": str(mqtt_settings.port),
        }
        log = (tmp_path / "edge.log").open("ab")
        edge = subprocess.Popen(
            [
                *(sys.executable, "-m", "edge.cli", "edge", "run", "--source", "sim"),
                *("--clinic-id", clinic, "--machine-id", machine),
                *("--outbox-dir", str(tmp_path / "outbox"), "--metrics-port", str(edge_port)),
            ],
            env=env,
            cwd=REPO_ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        procs.append(edge)
        wait_until(
            lambda: _sample(edge_port, "sledfleet_edge_acked_total") >= 10,
            120,
            "the edge agent's frames to be acknowledged",
        )
        families, s = scrape(edge_port)
        check_names(families, "edge")
        assert value(s, "sledfleet_edge_machines") == 1
        assert value(s, "sledfleet_edge_mqtt_connected") == 1
        assert value(s, "sledfleet_edge_frames_total") >= value(s, "sledfleet_edge_acked_total")
        assert value(s, "sledfleet_edge_outbox_dropped_frames_total") == 0
        assert families["sledfleet_edge_outbox_rows"][0] == "gauge"

        telemetry = kafka_settings.topic_prefix + "sledfleet.telemetry"
        forwarded = "sledfleet_bridge_forwarded_total"
        wait_until(
            lambda: _sample(bridge.metrics_port, forwarded, topic=telemetry) >= 5,
            60,
            "the bridge to forward the edge agent's frames",
        )
        families, s = scrape(bridge.metrics_port)
        check_names(families, "bridge")
        assert value(s, "sledfleet_bridge_mqtt_subscribed") == 1
        assert value(s, "sledfleet_bridge_received_total") >= value(
            s, "sledfleet_bridge_mqtt_acks_total"
        )
        assert families["sledfleet_bridge_kafka_ack_latency_seconds"][0] == "histogram"

        edge.send_signal(signal.SIGTERM)
        assert edge.wait(60) == 0
        log.close()


def test_sink_endpoint_counts_records_and_reports_lag(
    admin_dsn: str, kafka_settings: KafkaSettings, tmp_path: Path
) -> None:
    fleet = Fleet(clinics=1, machines_per_clinic=1, patients_per_clinic=2, weeks=1)
    with (
        storage_support.migrated_database(admin_dsn) as db,
        storage_support.kafka_topics(kafka_settings),
    ):
        reps = [r for r in records(fleet) if r["kind"] == "rep"]
        sent = storage_support.produce(kafka_settings, reps, [("sledfleet.reps", b"{bad json")])
        sink = storage_support.SinkProcess(
            db.owner, kafka_settings, f"g{storage_support.short_id()}", tmp_path
        ).start()
        try:
            reps_topic = kafka_settings.topic_prefix + "sledfleet.reps"
            wait_until(
                lambda: _sample(sink.port, "sledfleet_sink_records_in_total", topic=reps_topic)
                == sent,
                120,
                "the sink to consume every record",
            )
            wait_until(
                lambda: _sample(sink.port, "sledfleet_sink_last_commit_unix") > 0,
                60,
                "an offset commit",
            )
            families, s = scrape(sink.port)
            check_names(families, "sink")
            assert value(s, "sledfleet_sink_dead_letters_total", reason="malformed_json") == 1
            assert value(s, "sledfleet_sink_rows_written_total", kind="rep") == len(reps)
            lags = {
                dict(labels)["partition"]: v
                for (name, labels), v in s.items()
                if name == "sledfleet_sink_consumer_lag" and dict(labels)["topic"] == reps_topic
            }
            assert lags, "no lag gauge for the reps topic"
            assert set(lags.values()) == {0}  # everything consumed and committed
        finally:
            assert sink.stop() == 0
