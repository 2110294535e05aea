"""The bare components behind each stage of ``benchmarks/capacity.py``, measured in its run.

Each is the thing a stage is built on, doing only that, on the same servers and with
messages shaped like the pipeline's (50-sample frames, ~1.1 KB):

* Mosquitto: PUBLISHERS paho publishers (QoS 1, in-flight 1,000, own processes) → one paho
  subscriber (QoS 1, like the bridge's one client) on a topic of its own; messages/s from
  the first publish to the last message received.
* Kafka: librdkafka producer with the bridge's configuration (acks=all, idempotence,
  murmur2_random) into a fresh 12-partition topic, then a consumer reading it all back;
  messages/s for each.
* Stream worker: ``sledfleet stream worker`` (the pipeline's latency profile) on a topic
  pre-filled with a synthetic multi-clinic day (``tests/integration/stream_support.py``);
  frames/s from its first batch to its last.
* Sink: binary COPY of rep rows straight into ``sledfleet.reps`` (``benchmarks/sink.py``),
  rows/s: the database's ceiling for what the sink writes.

Run alone: .venv/bin/python benchmarks/capacity_bare.py [--messages 20000]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "integration"))
sys.path.insert(0, str(REPO / "benchmarks"))

from bridge_support import frame  # type: ignore[import-not-found]  # noqa: E402

from edge.settings import KafkaSettings, MqttSettings, load  # noqa: E402

PUBLISHERS = 2
WAIT_S = 600.0
"""A bare measurement that has not finished in this long has failed."""


@dataclass(frozen=True)
class Bare:
    name: str
    unit: str
    rate: float
    note: str = ""


# --- Mosquitto --------------------------------------------------------------------------------


def _mqtt_client(settings: MqttSettings, client_id: str) -> Any:
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
    if settings.username:
        c.username_pw_set(settings.username, settings.password.reveal() or None)
    c.max_inflight_messages_set(1000)
    return c


def _publish(settings: MqttSettings, topic: str, n: int, started: Any) -> None:
    c = _mqtt_client(settings, f"bare-pub-{uuid.uuid4().hex[:8]}")
    c.connect(settings.host, settings.port, keepalive=60)
    c.loop_start()
    payloads = [frame("cb", f"m{i % 100:03d}", i // 100) for i in range(min(n, 1000))]
    started.value = time.time()
    infos = [c.publish(topic, payloads[i % len(payloads)], qos=1) for i in range(n)]
    for info in infos:
        info.wait_for_publish(timeout=WAIT_S)
    c.disconnect()
    c.loop_stop()


def mosquitto(settings: MqttSettings, n: int) -> Bare:
    topic = f"sledfleet-bare/{uuid.uuid4().hex}"
    got = {"n": 0, "last": 0.0}
    done, subscribed = threading.Event(), threading.Event()

    def on_message(*_: Any) -> None:
        got["n"] += 1
        if got["n"] >= n // PUBLISHERS * PUBLISHERS:
            got["last"] = time.time()
            done.set()

    sub = _mqtt_client(settings, f"bare-sub-{uuid.uuid4().hex[:8]}")
    sub.on_connect = lambda c, *_: c.subscribe(topic, qos=1)
    sub.on_subscribe = lambda *_: subscribed.set()
    sub.on_message = on_message
    sub.connect(settings.host, settings.port, keepalive=60)
    sub.loop_start()
    try:
        if not subscribed.wait(30):
            raise RuntimeError("bare Mosquitto: the subscriber did not subscribe")
        ctx = mp.get_context("fork")
        starts = [ctx.Value("d", 0.0) for _ in range(PUBLISHERS)]
        pubs = [
            ctx.Process(target=_publish, args=(settings, topic, n // PUBLISHERS, started))
            for started in starts
        ]
        for pub in pubs:
            pub.start()
        if not done.wait(WAIT_S):
            raise RuntimeError(f"bare Mosquitto: {got['n']} of {n} messages arrived")
        for pub in pubs:
            pub.join(60)
    finally:
        sub.disconnect()
        sub.loop_stop()
    first = min(s.value for s in starts)
    return Bare("Mosquitto publish -> subscribe (QoS 1)", "msg/s", got["n"] / (got["last"] - first))


# --- Kafka ------------------------------------------------------------------------------------


def kafka(settings: KafkaSettings, n: int) -> tuple[Bare, Bare]:
    from confluent_kafka import Consumer, Producer
    from kafka import KafkaAdminClient
    from kafka.admin import NewTopic

    from stream.bridge.kafka_confluent import confluent_config
    from stream.bridge.settings import BridgeSettings

    topic = f"sledfleet-bare-{uuid.uuid4().hex[:10]}"
    admin = KafkaAdminClient(bootstrap_servers=settings.bootstrap)
    admin.create_topics([NewTopic(topic, num_partitions=12, replication_factor=1)])
    try:
        conf = confluent_config(settings, load(BridgeSettings), "bare-producer")
        conf.pop("logger", None)
        producer = Producer(conf)
        payloads = [frame("cb", f"m{i % 100:03d}", i // 100) for i in range(min(n, 1000))]
        t0 = time.perf_counter()
        for i in range(n):
            while True:
                try:
                    producer.produce(topic, payloads[i % len(payloads)], key=f"m{i % 100:03d}")
                    break
                except BufferError:
                    producer.poll(0.05)
            producer.poll(0)
        if producer.flush(WAIT_S):
            raise RuntimeError("bare Kafka: the producer did not deliver every message")
        produce_rate = n / (time.perf_counter() - t0)
        consumer = Consumer(
            {
                "bootstrap.servers": settings.bootstrap,
                "group.id": f"bare-{topic}",
                "auto.offset.reset": "earliest",
                "enable.auto.commit": False,
            }
        )
        consumer.subscribe([topic])
        seen, first, deadline = 0, 0.0, time.monotonic() + WAIT_S
        while seen < n and time.monotonic() < deadline:
            msgs = consumer.consume(1000, 1.0)
            if msgs and not first:
                first = time.perf_counter()
            seen += sum(1 for m in msgs if m.error() is None)
        consume_rate = seen / (time.perf_counter() - first) if first else 0.0
        consumer.close()
        if seen < n:
            raise RuntimeError(f"bare Kafka: consumed {seen} of {n}")
    finally:
        admin.delete_topics([topic])
        admin.close()
    return (
        Bare("Kafka produce (bridge config, acks=all)", "msg/s", produce_rate),
        Bare("Kafka consume", "msg/s", consume_rate, "first message to last"),
    )


# --- stream worker ----------------------------------------------------------------------------


def worker(settings: KafkaSettings, env: dict[str, str], machines: int) -> Bare:
    from stream_support import DayPlan, produce, synthetic_day  # type: ignore[import-not-found]
    from stream_worker import run_worker  # type: ignore[import-not-found]

    from stream.topics import ensure_topics

    plan = DayPlan(clinics=max(1, machines // 4), machines_per_clinic=4, sessions_per_machine=1)
    inputs = synthetic_day(plan)
    frames = sum(1 for k, _, _ in inputs if k == "telemetry")
    samples = sum(len(p["position_mm"]) for k, _, p in inputs if k == "telemetry")
    kafka_s = replace(settings, topic_prefix=f"bare{uuid.uuid4().hex[:8]}.")
    ensure_topics(kafka_s)
    produce(kafka_s, inputs)
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)  # the Worker helper starts its child from os.environ
    try:
        with tempfile.TemporaryDirectory(prefix="sf-cap-bare-") as tmp:
            fps, _ = run_worker(kafka_s, frames, Path(tmp))
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        _delete_prefix(kafka_s)
    return Bare(
        "stream worker from a pre-filled topic",
        "frames/s",
        fps,
        f"{frames:,} frames of {samples / frames:.0f} samples",
    )


def _delete_prefix(settings: KafkaSettings) -> None:
    from kafka import KafkaAdminClient

    admin = KafkaAdminClient(bootstrap_servers=settings.bootstrap)
    try:
        admin.delete_topics([t for t in admin.list_topics() if t.startswith(settings.topic_prefix)])
    finally:
        admin.close()


# --- sink -------------------------------------------------------------------------------------


def sink(dsn: str, rows: int) -> Bare:
    import psycopg
    from sink import bare_copy, rep_record  # type: ignore[import-not-found]

    from storage.routing import parse, topics
    from storage.rows import REP

    parser = topics("", frames=False, events=False, state=False, dead_letters=False)[
        "sledfleet.reps"
    ]
    from edge.contract import encode

    recs = [parse(parser, encode(rep_record(i))).row for i in range(rows)]
    with psycopg.connect(dsn, autocommit=True) as conn:
        seconds = bare_copy(conn, REP, recs, 5000)
        conn.execute("TRUNCATE sledfleet.reps")
    return Bare("PostgreSQL binary COPY of rep rows", "rows/s", rows / seconds)


def measure_all(
    mqtt: MqttSettings, kafka_s: KafkaSettings, dsn: str, env: dict[str, str], n: int
) -> dict[str, Bare]:
    out: dict[str, Bare] = {}
    out["mosquitto"] = mosquitto(mqtt, n)
    out["kafka produce"], out["kafka consume"] = kafka(kafka_s, n)
    out["worker"] = worker(kafka_s, env, 32)
    out["sink"] = sink(dsn, n)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--messages", type=int, default=20_000)
    ap.add_argument("--dsn", default=os.environ.get("SLEDFLEET_DATABASE_URL", ""))
    args = ap.parse_args()
    results = {
        "mosquitto": mosquitto(load(MqttSettings), args.messages),
    }
    results["kafka produce"], results["kafka consume"] = kafka(load(KafkaSettings), args.messages)
    results["worker"] = worker(load(KafkaSettings), {}, 32)
    if args.dsn:
        results["sink"] = sink(args.dsn, args.messages)
    print(json.dumps({k: vars(v) for k, v in results.items()}, indent=1))


if __name__ == "__main__":
    main()
