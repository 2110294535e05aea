"""Hostile and broken input on the real brokers: each lands in the dead-letter topic with its
reason and original bytes, and good traffic interleaved with it is complete and ordered."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from bridge_support import (
    BridgeProcess,
    Publisher,
    Topics,
    frame,
    kafka_topics,
    read_topic,
    wait_until,
)

from edge.settings import KafkaSettings

pytestmark = pytest.mark.integration

TEN_MB = 10 * 1000 * 1000


@pytest.fixture
def topics(kafka_settings: KafkaSettings) -> Iterator[Topics]:
    with kafka_topics(kafka_settings) as t:
        yield t


def _edit(raw: bytes, **changes: object) -> bytes:
    payload = json.loads(raw)
    payload.update(changes)
    return json.dumps(payload, separators=(",", ":")).encode()


def bad_inputs(clinic: str) -> list[tuple[str, str, bytes, str]]:
    """(name, MQTT topic, payload, expected reason)."""
    t = f"sledfleet/v1/{clinic}/bad/telemetry"
    good = frame(clinic, "bad", 0)
    return [
        ("malformed json", t, good[:-7], "malformed_json"),
        ("unknown version", t, _edit(good, v=7), "unknown_version"),
        ("topic/payload mismatch", t, _edit(good, machine_id="other"), "topic_mismatch"),
        ("clinic mismatch", t, _edit(good, clinic_id="elsewhere"), "topic_mismatch"),
        ("unequal arrays", t, _edit(good, force_left_n=[1.0] * 49), "unequal_lengths"),
        ("oversized arrays", t, _edit(good, position_mm=[1.0] * 500), "bad_length"),
        ("NaN", t, good.replace(b'"load_kg":80.0', b'"load_kg":NaN'), "non_finite"),
        ("Infinity", t, good.replace(b'"rate_hz":50.0', b'"rate_hz":Infinity'), "non_finite"),
        ("negative rate", t, _edit(good, rate_hz=-50.0), "out_of_range"),
        ("binary garbage", t, bytes(range(256)) * 4, "not_utf8"),
        ("10 MB payload", t, b"[" + b"1," * (TEN_MB // 2 - 1) + b"1]", "too_large"),
        ("sql in id", t, _edit(good, machine_id="'; DROP TABLE frames;--"), "bad_id"),
        ("html in id", t, _edit(good, clinic_id="<script>alert(1)</script>"), "bad_id"),
        ("unicode id", t, _edit(good, machine_id="машина-1"), "bad_id"),
        ("hostile topic", f"sledfleet/v1/{clinic}/<script>/telemetry", good, "bad_id"),
        ("unicode topic", f"sledfleet/v1/{clinic}/ÿü€/event", good, "bad_id"),
        ("not an object", t, b"[1, 2, 3]", "not_an_object"),
        ("empty", t, b"", "malformed_json"),
        (
            "400-digit number",
            t,
            good.replace(b'"load_kg":80.0', b'"load_kg":' + b"9" * 400),
            "unprocessable",
        ),
        ("JSON nested 30,000 deep", t, b"[" * 30_000 + b"]" * 30_000, "unprocessable"),
    ]


def test_bad_input_is_dead_lettered_with_reasons_and_good_traffic_flows(
    mqtt_settings, kafka_settings, topics, unique, tmp_path: Path
):
    clinic = f"c{unique}"
    bridge = BridgeProcess(
        mqtt_settings,
        kafka_settings,
        client_id=f"bridge-{unique}-0",
        group=f"g{unique}",
        clinic=clinic,
        log_dir=tmp_path,
    ).start()
    try:
        bridge.wait_healthy()
        bad = bad_inputs(clinic)
        pub = Publisher(mqtt_settings, f"pub-{unique}")
        per_machine = 40
        for seq in range(per_machine):
            for m in ("g1", "g2"):
                pub.publish(f"sledfleet/v1/{clinic}/{m}/telemetry", frame(clinic, m, seq))
            if seq < len(bad):
                _, topic, payload, _ = bad[seq]
                pub.publish(topic, payload)
        pub.wait_all(timeout=120)
        pub.close()

        letters = read_topic(kafka_settings, topics.deadletter, len(bad), timeout=120)
        assert len(letters) == len(bad)
        by_origin_and_hash = {}
        for r in letters:
            d = json.loads(r.value)
            assert d["source"] == "bridge"
            raw = base64.b64decode(d["payload_b64"])
            assert hashlib.sha256(raw).hexdigest() == d["payload_sha256"]
            assert len(raw) == d["payload_size"]  # whole, even the 10 MB one
            assert r.headers["reason"].decode() == d["reason"]
            by_origin_and_hash[(d["origin"], d["payload_sha256"])] = d["reason"]
        for name, topic, payload, reason in bad:
            key = (topic, hashlib.sha256(payload).hexdigest())
            assert by_origin_and_hash.get(key) == reason, name

        good = read_topic(kafka_settings, topics.telemetry, 2 * per_machine)
        assert len(good) == 2 * per_machine
        seqs: dict[str, list[int]] = {"g1": [], "g2": []}
        for r in good:
            p = json.loads(r.value)
            seqs[p["machine_id"]].append(p["seq"])
        assert seqs == {"g1": list(range(per_machine)), "g2": list(range(per_machine))}

        wait_until(
            lambda: bridge.metric_sum("dead_lettered_total") == len(bad), 30, "dead-letter counts"
        )
        m = bridge.metrics()
        assert m['dead_lettered_total{reason="too_large"}'] == 1
        assert m['dead_lettered_total{reason="bad_id"}'] == 5
        assert m["in_flight"] == 0
        assert bridge.terminate() == 0
    finally:
        bridge.stop_quietly()
