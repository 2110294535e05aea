"""kill -9 a bridge mid-stream and restart it: every frame reaches Kafka.

Nothing the bridge had not seen acknowledged by Kafka was PUBACKed, so the broker
redelivers it to the restarted bridge (same client id, persistent session). Duplicates
are allowed only as exact repeats of a (machine_id, seq) frame, which downstream drops.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from pathlib import Path

import pytest
from bridge_support import BridgeProcess, Publisher, frame, kafka_topics, read_topic, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.slow]

MACHINES = [f"m{i}" for i in range(5)]
PER_MACHINE = 600
RATE_HZ = 500.0
"""Frames per second the publisher offers (so the kill lands mid-stream)."""


def test_kill_dash_nine_mid_stream_loses_nothing(
    mqtt_settings, kafka_settings, unique, tmp_path: Path
):
    clinic = f"c{unique}"
    with kafka_topics(kafka_settings) as topics:

        def new_bridge() -> BridgeProcess:
            return BridgeProcess(
                mqtt_settings,
                kafka_settings,
                client_id=f"bridge-{unique}-0",
                group=f"g{unique}",
                clinic=clinic,
                log_dir=tmp_path,
            ).start()

        bridge = new_bridge()
        restarted: BridgeProcess | None = None
        try:
            bridge.wait_healthy()
            pub = Publisher(mqtt_settings, f"pub-{unique}")
            sent = threading.Event()

            def publish() -> None:
                for seq in range(PER_MACHINE):
                    for m in MACHINES:
                        pub.publish(f"sledfleet/v1/{clinic}/{m}/telemetry", frame(clinic, m, seq))
                    time.sleep(len(MACHINES) / RATE_HZ)
                sent.set()

            feeder = threading.Thread(target=publish, daemon=True)
            feeder.start()
            wait_until(
                lambda: bridge.metric_sum("forwarded_total") >= 800, 60, "the stream to be flowing"
            )
            bridge.kill()
            killed_at = bridge.metrics()  # unreachable now: {}
            assert killed_at == {}
            time.sleep(1.0)  # frames keep arriving at the broker while no bridge runs
            restarted = new_bridge()
            restarted.wait_healthy()
            assert "session present: True" in restarted.log()
            feeder.join(timeout=120)
            assert sent.is_set()
            pub.wait_all()
            pub.close()

            total = PER_MACHINE * len(MACHINES)
            want = {(m, s) for m in MACHINES for s in range(PER_MACHINE)}

            def complete() -> list | None:
                recs = read_topic(kafka_settings, topics.telemetry, total, timeout=120)
                keys = {
                    (json.loads(r.value)["machine_id"], json.loads(r.value)["seq"]) for r in recs
                }
                return recs if keys >= want else None

            records = wait_until(complete, 120, "every frame in Kafka", every=1.0)
            counts = Counter()
            payloads: dict[tuple[str, int], bytes] = {}
            for r in records:
                p = json.loads(r.value)
                k = (p["machine_id"], p["seq"])
                counts[k] += 1
                assert payloads.setdefault(k, r.value) == r.value, "a duplicate must be identical"
            assert set(counts) == want
            dups = sum(c - 1 for c in counts.values())
            # duplicates are at most what one bridge can have in flight
            assert dups <= 2000
            print(f"kill -9: {total} frames, {dups} duplicates (redelivered after the kill)")
            assert restarted.terminate() == 0
        finally:
            bridge.stop_quietly()
            if restarted is not None:
                restarted.stop_quietly()
