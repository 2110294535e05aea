"""Small operator actions run ON a rehearsal host (``python -m rehearsal.probe ...`` through
``Net.command``), each printing one JSON object: the driver outside the namespaces never
opens a socket itself, so everything it learns travelled over the rehearsal's own links."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from collections.abc import Sequence
from typing import Any


def _servers(bootstrap: str) -> list[str]:
    return [s for s in bootstrap.split(",") if s]


def _admin(bootstrap: str) -> Any:
    from kafka.admin import KafkaAdminClient

    return KafkaAdminClient(bootstrap_servers=_servers(bootstrap), client_id="rehearsal-probe")


def kafka_ready(args: argparse.Namespace) -> dict[str, Any]:
    """Wait until ``--brokers`` brokers are registered and a controller is elected."""
    deadline = time.monotonic() + args.timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            admin = _admin(args.bootstrap)
            try:
                cluster = admin.describe_cluster()
            finally:
                admin.close()
            brokers = sorted(b["broker_id"] for b in cluster["brokers"] if not b.get("is_fenced"))
            last = {"brokers": brokers, "controller": cluster.get("controller_id")}
            if len(brokers) >= args.brokers and (cluster.get("controller_id") or -1) >= 0:
                return {"ok": True, **last}
        except Exception as e:
            last = repr(e)
        time.sleep(0.5)
    return {"ok": False, "last": last}


def kafka_leaders(args: argparse.Namespace) -> dict[str, Any]:
    """Partition leaders and in-sync replicas of ``--topic``."""
    admin = _admin(args.bootstrap)
    try:
        (topic,) = admin.describe_topics([args.topic])
    finally:
        admin.close()
    parts = topic["partitions"]
    return {
        "leaders": dict(Counter(str(p["leader_id"]) for p in parts)),
        "replicas": sorted({len(p["replica_nodes"]) for p in parts}),
        "min_isr": min(len(p["isr_nodes"]) for p in parts),
        "partitions": len(parts),
    }


def kafka_create(args: argparse.Namespace) -> dict[str, Any]:
    from kafka.admin import NewTopic

    admin = _admin(args.bootstrap)
    try:
        admin.create_topics(
            [NewTopic(args.topic, args.partitions, args.replication)], timeout_ms=30_000
        )
        admin.wait_for_topics([args.topic], timeout_ms=30_000)
    finally:
        admin.close()
    return {"ok": True}


def kafka_produce(args: argparse.Namespace) -> dict[str, Any]:
    """Send values start..start+count-1 with acks=all; count what the cluster acknowledged."""
    from kafka import KafkaProducer

    producer = KafkaProducer(
        bootstrap_servers=_servers(args.bootstrap),
        acks="all",
        enable_idempotence=True,
        retries=2_147_483_647,
        delivery_timeout_ms=int(args.timeout * 1000),
        request_timeout_ms=10_000,
        linger_ms=5,
    )
    futures = [
        producer.send(args.topic, key=str(i % 97).encode(), value=str(i).encode())
        for i in range(args.start, args.start + args.count)
    ]
    producer.flush(args.timeout)
    acked, errors = 0, Counter[str]()
    for f in futures:
        try:
            f.get(0)
            acked += 1
        except Exception as e:
            errors[type(e).__name__] += 1
    producer.close(10)
    return {"acked": acked, "errors": dict(errors)}


def kafka_consume(args: argparse.Namespace) -> dict[str, Any]:
    """Every value of ``--topic`` from the beginning to the end offsets of now."""
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(
        bootstrap_servers=_servers(args.bootstrap), enable_auto_commit=False, group_id=None
    )
    parts = [TopicPartition(args.topic, p) for p in consumer.partitions_for_topic(args.topic)]
    consumer.assign(parts)
    consumer.seek_to_beginning()
    end = consumer.end_offsets(parts)
    values: Counter[int] = Counter()
    deadline = time.monotonic() + args.timeout
    while any(consumer.position(tp) < end[tp] for tp in parts) and time.monotonic() < deadline:
        for records in consumer.poll(1000).values():
            values.update(int(r.value) for r in records)
    consumer.close()
    return {
        "distinct": len(values),
        "duplicates": sum(n - 1 for n in values.values()),
        "min": min(values, default=None),
        "max": max(values, default=None),
    }


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m rehearsal.probe")
    sub = p.add_subparsers(dest="command", required=True)
    for name, func in [
        ("kafka-ready", kafka_ready), ("kafka-leaders", kafka_leaders),
        ("kafka-create", kafka_create), ("kafka-produce", kafka_produce),
        ("kafka-consume", kafka_consume),
    ]:  # fmt: skip
        s = sub.add_parser(name)
        s.add_argument("--bootstrap", required=True)
        s.add_argument("--timeout", type=float, default=60.0)
        s.set_defaults(func=func)
        if name != "kafka-ready":
            s.add_argument("--topic", required=True)
        if name == "kafka-ready":
            s.add_argument("--brokers", type=int, default=1)
        if name == "kafka-create":
            s.add_argument("--partitions", type=int, default=6)
            s.add_argument("--replication", type=int, default=3)
        if name == "kafka-produce":
            s.add_argument("--start", type=int, default=0)
            s.add_argument("--count", type=int, default=1000)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    result = args.func(args)
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
