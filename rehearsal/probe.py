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


def _demo_config(args: argparse.Namespace) -> Any:
    from dashboards.demo.pipeline import DemoConfig

    return DemoConfig(
        clinics=args.clinics, machines_per_clinic=args.machines,
        patients_per_machine=args.patients, weeks=args.weeks, seed=args.seed,
        database="sledfleet",
    )  # fmt: skip


def _fleet(args: argparse.Namespace) -> Any:
    """The demo's backfill fleet; ``--id-prefix`` makes a segment's clinics and machines its
    own, ``--skew-s`` puts the first machine's clock that many seconds ahead (truth too)."""
    from dataclasses import replace

    from dashboards.demo.pipeline import fleet_config
    from edge.simulator import build_fleet

    config = replace(fleet_config(_demo_config(args), "backfill"), id_prefix=args.id_prefix)
    fleet = build_fleet(config)
    if args.skew_s:
        fleet.machines[0].t0_ns += int(args.skew_s * 1e9)
    return fleet


def setup(args: argparse.Namespace) -> dict[str, Any]:
    """Application role, fresh migrated database with clinic roles, topics, prescriptions."""
    import os
    from dataclasses import replace

    import psycopg
    from psycopg import sql

    from dashboards.demo.pipeline import ADMIN_DSN_ENV, DemoRun, prepare_database
    from edge.settings import KafkaSettings
    from stream.topics import TopicsSettings, ensure_topics

    deadline = time.monotonic() + args.timeout
    while True:
        try:
            conn = psycopg.connect(args.admin_dsn, autocommit=True, connect_timeout=3)
            break
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)
    with conn:
        password = psycopg.conninfo.conninfo_to_dict(args.dsn).get("password", "")
        if not conn.execute("SELECT 1 FROM pg_roles WHERE rolname = 'sledfleet'").fetchone():
            conn.execute(
                sql.SQL("CREATE ROLE sledfleet LOGIN PASSWORD {}").format(sql.Literal(password))
            )
    os.environ[ADMIN_DSN_ENV] = args.admin_dsn
    config = replace(_demo_config(args), clinics=0)  # clinics come with their segment
    run = DemoRun(config, "rehearsal", KafkaSettings(args.bootstrap, ""), args.dsn)
    prepare_database(config, run)
    created, existing = ensure_topics(
        run.kafka, replace(TopicsSettings(), replication_factor=args.replication)
    )
    return {"topics": len(created) + len(existing)}


def prepare_segment(args: argparse.Namespace) -> dict[str, Any]:
    """A segment's clinics (with their roles) and its patients' prescriptions."""
    import psycopg
    from psycopg.conninfo import make_conninfo

    from edge.settings import KafkaSettings
    from storage import registry, tenants
    from stream import clinic_zones
    from stream.prescribe import publish

    fleet = _fleet(args)
    clinics = sorted({m.clinic_id for m in fleet.machines})
    zones = {c: fleet.clinic_time_zones.get(c, "UTC") for c in clinics}
    admin = make_conninfo(args.admin_dsn, dbname="sledfleet")
    with psycopg.connect(admin, autocommit=True) as conn:
        for clinic in clinics:
            tenants.add_clinic(conn, clinic)
            registry.set_clinic_time_zone(conn, clinic, zones[clinic])
        rows = registry.clinic_zones(conn, clinics)
    kafka = KafkaSettings(args.bootstrap, "")
    # the clinic-local calendar (ISO weeks, adherence) before the first frame
    clinic_zones.publish([clinic_zones.build(c, tz, at) for c, tz, at in rows], kafka)
    for rx in fleet.prescriptions:
        publish({**rx, "end_date": None}, kafka)  # type: ignore[typeddict-item]
    return {"clinics": clinics, "zones": zones, "prescriptions": len(fleet.prescriptions)}


def score(args: argparse.Namespace) -> dict[str, Any]:
    """The database scored against the simulator's ground truth (the demo's scoring)."""
    from dataclasses import asdict, replace

    import psycopg

    from dashboards.demo.summary import score_against_truth

    fleet = _fleet(args)
    t0 = min(m.t0_ns for m in fleet.machines)
    window = (t0, t0 + args.weeks * 7 * 86_400 * 10**9)
    truth = fleet.truth()
    with psycopg.connect(args.dsn, autocommit=True) as conn:
        result = score_against_truth(conn, truth, window)
        # other segments' reps are not this segment's extras
        keys = {(r["machine_id"], r["session_id"], int(r["set_no"]), int(r["rep_no"]))
                for r in truth["reps"]}  # fmt: skip
        mine = conn.execute(
            "SELECT machine_id, session_id, set_no, rep_no FROM sledfleet.reps"
            " WHERE start_ns >= %s AND start_ns < %s AND machine_id = ANY(%s)",
            (window[0], window[1], [m.machine_id for m in fleet.machines]),
        ).fetchall()
        extra = sum(1 for r in mine if (r[0], r[1], int(r[2]), int(r[3])) not in keys)
        result = replace(result, extra_reps=extra)
        sessions = conn.execute(
            "SELECT count(*) FROM sledfleet.sessions WHERE machine_id = ANY(%s)",
            ([m.machine_id for m in fleet.machines],),
        ).fetchone()
    return {
        "truth_sessions": len(truth["sessions"]),
        "sessions": int(sessions[0]) if sessions else 0,
        **asdict(result),
        "sets_exact_fraction": result.sets_exact_fraction,
        "passed": result.passed(),
    }


def counts(dsn: str) -> dict[str, Any]:
    import psycopg

    with psycopg.connect(dsn, autocommit=True, connect_timeout=3) as conn:
        row = conn.execute(
            "SELECT (SELECT count(*) FROM sledfleet.reps), (SELECT count(*) FROM sledfleet.sets),"
            " (SELECT count(*) FROM sledfleet.sessions)"
        ).fetchone()
    assert row is not None
    return {"reps": int(row[0]), "sets": int(row[1]), "sessions": int(row[2])}


def group_lag(bootstrap: str, groups: list[str]) -> int:
    """Messages the consumer groups have not committed yet, over every partition of the
    topics they consume (a partition never committed counts from offset 0)."""
    from kafka import KafkaAdminClient, KafkaConsumer

    admin = KafkaAdminClient(bootstrap_servers=bootstrap.split(","), client_id="rehearsal-lag")
    consumer = KafkaConsumer(bootstrap_servers=bootstrap.split(","), client_id="rehearsal-lag")
    try:
        lag = 0
        for group in groups:
            offsets = admin.list_group_offsets({group: None}).get(group, {})
            done = {tp: m.offset for tp, m in offsets.items()}
            tps = [tp for topic in {tp.topic for tp in done} for tp in _partitions(consumer, topic)]
            for tp, end in consumer.end_offsets(tps).items():
                lag += max(0, end - max(0, done.get(tp, 0)))
        return lag
    finally:
        consumer.close()
        admin.close()


def _partitions(consumer: Any, topic: str) -> list[Any]:
    from kafka import TopicPartition

    return [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]


def monitor(args: argparse.Namespace) -> dict[str, Any]:
    """Append the database's row counts (and, with ``--bootstrap``, the consumer lag of
    ``--group``s) every ``--every`` seconds to ``--out`` until killed."""
    out = open(args.out, "a")  # noqa: SIM115 (held for the life of the process)
    while True:
        t = time.time()
        try:
            row: dict[str, Any] = {"t": t, **counts(args.dsn)}
        except Exception as e:  # a database restart is one of the faults: record, go on
            row = {"t": t, "error": type(e).__name__}
        if args.bootstrap and args.group:
            try:
                row["lag"] = group_lag(args.bootstrap, args.group)
            except Exception as e:  # a broker kill is one of the faults: record, go on
                row["lag_error"] = type(e).__name__
        out.write(json.dumps(row) + "\n")
        out.flush()
        time.sleep(max(0.0, args.every - (time.time() - t)))


def wait_http(args: argparse.Namespace) -> dict[str, Any]:
    import urllib.request

    deadline = time.monotonic() + args.timeout
    pending = list(args.url)
    while pending and time.monotonic() < deadline:
        for url in list(pending):
            try:
                with urllib.request.urlopen(url, timeout=2.0) as resp:  # noqa: S310
                    if 200 <= int(resp.status) < 300:
                        pending.remove(url)
            except OSError:
                pass
        if pending:
            time.sleep(0.5)
    return {"ok": not pending, "unhealthy": pending}


def _add_fleet_args(s: argparse.ArgumentParser) -> None:
    s.add_argument("--clinics", type=int, default=3)
    s.add_argument("--machines", type=int, default=2)
    s.add_argument("--patients", type=int, default=3)
    s.add_argument("--weeks", type=int, default=4)
    s.add_argument("--seed", type=int, default=7)
    s.add_argument("--id-prefix", default="")
    s.add_argument("--skew-s", type=float, default=0.0)


def kafka_seqs(args: argparse.Namespace) -> dict[str, Any]:
    """Distinct telemetry frames ``(machine_id, seq)`` in Kafka for machines whose id starts
    with ``--machine-prefix``: what the edge published minus this is what was lost."""
    from kafka import KafkaConsumer, TopicPartition

    from edge import contract

    consumer = KafkaConsumer(
        bootstrap_servers=_servers(args.bootstrap), enable_auto_commit=False, group_id=None,
        max_partition_fetch_bytes=16 * 1024 * 1024,
    )  # fmt: skip
    parts = [TopicPartition(args.topic, p) for p in consumer.partitions_for_topic(args.topic)]
    consumer.assign(parts)
    consumer.seek_to_beginning()
    end = consumer.end_offsets(parts)
    prefix = args.machine_prefix.encode()
    seen: Counter[tuple[bytes, int]] = Counter()
    deadline = time.monotonic() + args.timeout
    while any(consumer.position(tp) < end[tp] for tp in parts) and time.monotonic() < deadline:
        for records in consumer.poll(1000).values():
            for r in records:
                if r.key is None or not r.key.startswith(prefix):
                    continue
                kind = dict(r.headers or []).get(contract.KIND_HEADER, b"telemetry")
                if kind != b"telemetry":
                    continue
                seen[(r.key, int(json.loads(r.value)["seq"]))] += 1
    consumer.close()
    return {"frames": len(seen), "duplicates": sum(n - 1 for n in seen.values())}


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
    ks = sub.add_parser("kafka-seqs")
    ks.add_argument("--bootstrap", required=True)
    ks.add_argument("--topic", default="sledfleet.telemetry")
    ks.add_argument("--machine-prefix", required=True)
    ks.add_argument("--timeout", type=float, default=300.0)
    ks.set_defaults(func=kafka_seqs)
    st = sub.add_parser("setup")
    st.add_argument("--admin-dsn", required=True)
    st.add_argument("--dsn", required=True)
    st.add_argument("--bootstrap", required=True)
    st.add_argument("--replication", type=int, default=3)
    st.add_argument("--timeout", type=float, default=120.0)
    _add_fleet_args(st)
    st.set_defaults(func=setup)
    ps = sub.add_parser("prepare-segment")
    ps.add_argument("--admin-dsn", required=True)
    ps.add_argument("--bootstrap", required=True)
    _add_fleet_args(ps)
    ps.set_defaults(func=prepare_segment)
    sc = sub.add_parser("score")
    sc.add_argument("--dsn", required=True)
    _add_fleet_args(sc)
    sc.set_defaults(func=score)
    mo = sub.add_parser("monitor")
    mo.add_argument("--dsn", required=True)
    mo.add_argument("--out", required=True)
    mo.add_argument("--every", type=float, default=1.0)
    mo.add_argument("--bootstrap", default="")
    mo.add_argument("--group", action="append", default=[])
    mo.set_defaults(func=monitor)
    wh = sub.add_parser("wait-http")
    wh.add_argument("--url", action="append", required=True)
    wh.add_argument("--timeout", type=float, default=120.0)
    wh.set_defaults(func=wait_http)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    result = args.func(args)
    json.dump(result, sys.stdout, default=str)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
