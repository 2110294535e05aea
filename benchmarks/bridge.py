"""Bridge throughput: ``sledfleet bridge`` (validate, ack after Kafka) vs a bare loop.

One run, same payloads, same brokers (Mosquitto and Kafka from ``services/start``):

1. Create the contract topics under a unique prefix; open a persistent MQTT session for
   the bridge and one for each bare loop (each its own shared-subscription group, so each
   gets a copy of every frame), then leave the sessions offline.
2. Several publisher processes publish N realistic 50-sample frames (QoS 1) from many
   machines; Mosquitto queues them for the offline sessions. Publishing finishes before
   any consumer runs, so publishers never compete with a consumer for the 2 cores.
3. Start ``sledfleet bridge`` (a subprocess, as in production) and time the drain from its
   first received message to N forwarded (polled from its /metrics); check N records in
   Kafka.
4. Run the bare loop (paho auto-ack subscribe → kafka-python send, no validation, no
   ack-after-Kafka, same producer settings) twice: with stock paho and with the bridge's
   buffered paho client, each draining its own copy the same way.
5. Optionally (--live) run publishers concurrently with a fresh bridge.

Prints frames/s side by side and the ratios. Target: >= 5,000 frames/s per bridge process.
Usage: .venv/bin/python benchmarks/bridge.py [--frames 30000] [--publishers 3] [--live]
"""

from __future__ import annotations

import argparse
import json
import logging
import multiprocessing as mp
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import KafkaAdminClient
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from edge.settings import KafkaSettings, MqttSettings, load
from stream.bridge.kafka_out import producer_config
from stream.bridge.paho_buffered import BufferedClient
from stream.bridge.settings import BridgeSettings
from stream.topics import TopicsSettings, ensure_topics, topic_specs

REPO = Path(__file__).resolve().parents[1]
DRAIN_POLL_S = 0.1
"""How often /metrics is read during a drain. Each scrape costs the bridge ~1.5 ms of CPU
(a thread and an HTTP parse); at 20 ms that was ~8% of its CPU during a 6 s drain. The
end of a drain is seen up to this late, so the frames/s printed err on the low side."""
RECEIVE_MAXIMUM = BridgeSettings().receive_maximum
sys.path.insert(0, str(REPO / "tests" / "integration"))

# the same 50-sample frame the bridge tests publish
from bridge_support import frame  # type: ignore[import-not-found]  # noqa: E402
from servers import free_port  # type: ignore[import-not-found]  # noqa: E402

# --- publishers -----------------------------------------------------------------------------


def publish_worker(
    host: str, port: int, clinic: str, machines: list[str], per_machine: int
) -> None:
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2, client_id=f"pub-{uuid.uuid4().hex[:8]}", protocol=mqtt.MQTTv5
    )
    client.max_inflight_messages_set(1000)
    client.max_queued_messages_set(0)
    client.connect(host, port, keepalive=60)
    client.loop_start()
    infos = []
    for seq in range(per_machine):
        for m in machines:
            topic = f"sledfleet/v1/{clinic}/{m}/telemetry"
            infos.append(client.publish(topic, frame(clinic, m, seq), qos=1))
    for info in infos:
        info.wait_for_publish(timeout=300)
    client.disconnect()
    client.loop_stop()


def publish_all(
    mqtt_s: MqttSettings, clinic: str, machines: int, per_machine: int, publishers: int
) -> float:
    names = [f"m{i:03d}" for i in range(machines)]
    groups = [names[i::publishers] for i in range(publishers)]
    started = time.perf_counter()
    procs = [
        mp.Process(target=publish_worker, args=(mqtt_s.host, mqtt_s.port, clinic, g, per_machine))
        for g in groups
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
        assert p.exitcode == 0, "publisher failed"
    return time.perf_counter() - started


# --- the bare loop (subprocess) -------------------------------------------------------------


def connect_props() -> Properties:
    props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
    props.SessionExpiryInterval = 3600
    props.ReceiveMaximum = RECEIVE_MAXIMUM
    return props


def bare_loop(args: argparse.Namespace) -> None:
    """paho subscribe → kafka-python send, no validation, auto-ack; prints timings as JSON."""
    kafka = load(KafkaSettings)
    topic = kafka.topic_prefix + "sledfleet.telemetry"
    producer = KafkaProducer(**producer_config(kafka, BridgeSettings(), args.client_id))
    producer.partitions_for(topic)
    count = 0
    first = 0.0
    cpu = [0.0]
    done = threading.Event()
    subscribed = threading.Event()

    def on_message(client: Any, userdata: Any, msg: Any) -> None:
        nonlocal count, first
        if count == 0:
            first = time.perf_counter()
            cpu[0] = time.process_time()
        producer.send(topic, value=msg.payload, key=msg.topic.split("/")[3].encode())
        count += 1
        if count >= args.expect:
            done.set()

    def on_connect(client: Any, *_: Any) -> None:
        client.subscribe(f"$share/{args.group}/sledfleet/v1/{args.clinic}/+/telemetry", qos=1)

    cls = BufferedClient if args.buffered else mqtt.Client
    client = cls(CallbackAPIVersion.VERSION2, client_id=args.client_id, protocol=mqtt.MQTTv5)
    client.on_connect = on_connect
    client.on_subscribe = lambda *a: subscribed.set()
    client.on_message = on_message if args.expect else None
    mqtt_s = load(MqttSettings)
    client.connect(
        mqtt_s.host, mqtt_s.port, keepalive=60, clean_start=False, properties=connect_props()
    )
    client.loop_start()
    subscribed.wait(30)
    if not args.expect:  # only register the persistent session
        client.disconnect()
        client.loop_stop()
        producer.close()
        print(json.dumps({"registered": True}), flush=True)
        return
    done.wait(600)
    producer.flush()
    elapsed = time.perf_counter() - first
    cpu_s = time.process_time() - cpu[0]
    client.disconnect()
    client.loop_stop()
    producer.close()
    print(json.dumps({"count": count, "elapsed": elapsed, "cpu_s": cpu_s}), flush=True)


def run_bare(
    env: dict[str, str], client_id: str, group: str, clinic: str, expect: int, buffered: bool
) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--bare", "--client-id", client_id, "--group", group]
    cmd += ["--clinic", clinic, "--expect", str(expect)]
    if buffered:
        cmd.append("--buffered")
    out = subprocess.run(
        cmd, env=env, cwd=REPO, capture_output=True, text=True, timeout=900, check=True
    )
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


# --- the real bridge (subprocess) -----------------------------------------------------------


class Bridge:
    def __init__(
        self,
        env: dict[str, str],
        client_id: str,
        group: str,
        clinic: str,
        log: Path,
        profile: Path | None = None,
        py_spy: Path | None = None,
    ) -> None:
        self.port = free_port()
        self.env = {
            **env,
            "SLEDFLEET_BRIDGE_CLIENT_ID": client_id,
            "SLEDFLEET_BRIDGE_SHARE_GROUP": group,
            "SLEDFLEET_BRIDGE_CLINIC_FILTER": clinic,
            "SLEDFLEET_BRIDGE_METRICS_PORT": str(self.port),
        }
        cmd = [sys.executable, "-m", "edge.cli", "bridge"]
        self.wrapped = py_spy is not None
        if profile is not None:
            cmd = [sys.executable, "-m", "pyinstrument", "-r", "text", "-o", str(profile)]
            cmd += ["-m", "edge.cli", "bridge"]
        elif py_spy is not None:  # raw stacks per thread while holding the GIL, 200 samples/s
            spy = [str(Path(sys.executable).parent / "py-spy"), "record", "-f", "raw", "-r", "200"]
            cmd = [*spy, "--threads", "--gil", "--nonblocking", "-o", str(py_spy), "--", *cmd]
        with log.open("ab") as fh:
            self.proc = subprocess.Popen(
                cmd, env=self.env, cwd=REPO, stdout=fh, stderr=subprocess.STDOUT
            )

    def metrics(self) -> dict[str, float]:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/metrics", timeout=2) as r:
                text = r.read().decode()
        except OSError:
            return {}
        out: dict[str, float] = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                name, value = line.rsplit(" ", 1)
                key = name.removeprefix("sledfleet_bridge_").split("{")[0]
                out[key] = out.get(key, 0.0) + float(value)
        return out

    def wait(
        self, pred: Callable[[dict[str, float]], bool], timeout: float, every: float = DRAIN_POLL_S
    ) -> dict[str, float]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"bridge exited with {self.proc.returncode}")
            m = self.metrics()
            if m and pred(m):
                return m
            time.sleep(every)
        raise SystemExit("bridge timed out")

    @property
    def pid(self) -> int:
        """The bridge's own pid (under py-spy, its child)."""
        if not self.wrapped:
            return self.proc.pid
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            children = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children").read_text()
            if children.split():
                return int(children.split()[0])
            time.sleep(0.05)
        raise SystemExit("no bridge process under py-spy")

    def stop(self) -> int:
        # signal the bridge itself: py-spy writes its profile when its child exits
        os.kill(self.pid, signal.SIGTERM)
        return self.proc.wait(timeout=120)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process and its threads, from /proc (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


def drain_bridge(
    env: dict[str, str],
    client_id: str,
    group: str,
    clinic: str,
    n: int,
    log: Path,
    profile: Path | None,
    py_spy: Path | None = None,
) -> tuple[float, dict[str, float]]:
    b = Bridge(env, client_id, group, clinic, log, profile, py_spy)
    b.wait(lambda m: m.get("received_total", 0) > 0, 120, every=0.005)
    first = time.perf_counter()
    cpu0 = cpu_seconds(b.pid)
    m = b.wait(lambda m: m.get("forwarded_total", 0) >= n, 600)
    elapsed = time.perf_counter() - first
    m["cpu_s"] = cpu_seconds(b.pid) - cpu0
    b.stop()
    return elapsed, m


def py_spy_summary(path: Path, cpu_us: float, top: int = 18) -> None:
    """Per-thread and per-function (self) share of the samples, in us per frame."""
    threads: dict[str, int] = {}
    own: dict[str, int] = {}
    for line in path.read_text().splitlines():
        stack, count = line.rsplit(" ", 1)
        frames = [f.split(" (")[0] for f in stack.split(";")[1:]]
        frames = [f for f in frames if not f.startswith("Thread.")]
        if not frames or frames[0].startswith(("_run_module_as_main", "_find_and_load")):
            continue  # start-up imports: before the drain
        threads[frames[0]] = threads.get(frames[0], 0) + int(count)
        own[frames[-1]] = own.get(frames[-1], 0) + int(count)
    total = sum(threads.values()) or 1
    print(f"py-spy: {total} samples after start-up, shares scaled to {cpu_us:.0f} us/frame")
    for name, n in sorted(threads.items(), key=lambda kv: -kv[1])[:4]:
        print(f"  thread {name:58}{n / total * cpu_us:6.1f} us")
    for name, n in sorted(own.items(), key=lambda kv: -kv[1])[:top]:
        print(f"  self   {name:58}{n / total * cpu_us:6.1f} us")


def kafka_count(kafka: KafkaSettings, topic: str) -> int:
    c = KafkaConsumer(bootstrap_servers=kafka.bootstrap)
    try:
        parts = [TopicPartition(topic, p) for p in c.partitions_for_topic(topic) or []]
        return int(sum(c.end_offsets(parts).values()))
    finally:
        c.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--frames", type=int, default=30000)
    ap.add_argument("--machines", type=int, default=60)
    ap.add_argument("--publishers", type=int, default=3)
    ap.add_argument("--profile", action="store_true", help="run the bridge under pyinstrument")
    ap.add_argument(
        "--py-spy",
        action="store_true",
        help="record the bridge with py-spy (GIL holders) and print where its CPU goes",
    )
    ap.add_argument("--live", action="store_true", help="also measure with concurrent publishers")
    ap.add_argument(
        "--producers",
        default="confluent,kafka-python",
        help="bridge producers to measure in this run, each draining its own queued copy",
    )
    ap.add_argument("--bare", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--buffered", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--client-id", help=argparse.SUPPRESS)
    ap.add_argument("--group", help=argparse.SUPPRESS)
    ap.add_argument("--clinic", help=argparse.SUPPRESS)
    ap.add_argument("--expect", type=int, default=0, help=argparse.SUPPRESS)
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    if args.bare:
        bare_loop(args)
        return

    run = f"bench{uuid.uuid4().hex[:6]}"
    per_machine = max(1, args.frames // args.machines)
    n = per_machine * args.machines
    mqtt_s = load(MqttSettings)
    kafka = load(KafkaSettings, topic_prefix=f"{run}.")
    env = {
        **os.environ,
        "SLEDFLEET_KAFKA_TOPIC_PREFIX": kafka.topic_prefix,
        "SLEDFLEET_KAFKA_BOOTSTRAP": kafka.bootstrap,
        "SLEDFLEET_MQTT_HOST": mqtt_s.host,
        "SLEDFLEET_MQTT_PORT": str(mqtt_s.port),
    }
    logdir = REPO / ".run" / "bench"
    logdir.mkdir(parents=True, exist_ok=True)
    log = logdir / f"{run}.log"
    ensure_topics(kafka, TopicsSettings())
    bridge_group, bare_group = f"{run}-bridge", f"{run}-bare"
    print(
        f"run {run}: {n} frames of 50 samples ({len(frame('c', 'm', 0))} bytes) from "
        f"{args.machines} machines, {args.publishers} publisher processes"
    )
    try:
        # 1. persistent sessions, then offline (one per producer measured, one per bare loop)
        producers = [p.strip() for p in args.producers.split(",") if p.strip()]
        for producer in producers:
            b = Bridge(
                {**env, "SLEDFLEET_BRIDGE_PRODUCER": producer},
                f"{run}-b-{producer}",
                f"{bridge_group}-{producer}",
                run,
                log,
            )
            b.wait(lambda m: m.get("mqtt_subscribed", 0) == 1, 120)
            b.stop()
        for buffered in (False, True):
            tag = str(int(buffered))
            run_bare(env, f"{run}-bare{tag}", bare_group + tag, run, 0, buffered)
        # 2. publish everything into the queues
        pub_s = publish_all(mqtt_s, run, args.machines, per_machine, args.publishers)
        print(
            f"published {n} frames in {pub_s:.1f} s ({n / pub_s:,.0f} frames/s into Mosquitto, "
            f"queued for {len(producers) + 2} offline sessions)"
        )
        # 3. each bridge drains its queue
        profile = logdir / f"{run}.pyinstrument.txt" if args.profile else None
        spy = logdir / f"{run}.py-spy.txt" if args.py_spy else None
        drained: dict[str, tuple[float, dict[str, float]]] = {}
        for producer in producers:
            drained[producer] = drain_bridge(
                {**env, "SLEDFLEET_BRIDGE_PRODUCER": producer},
                f"{run}-b-{producer}",
                f"{bridge_group}-{producer}",
                run,
                n,
                log,
                profile,
                spy,
            )
        in_kafka = kafka_count(kafka, kafka.topic_prefix + "sledfleet.telemetry")
        # 4. the bare loops drain their own copies into the same topic
        bare_s: dict[bool, float] = {}
        bare_cpu: dict[bool, float] = {}
        for buffered in (False, True):
            tag = str(int(buffered))
            result = run_bare(env, f"{run}-bare{tag}", bare_group + tag, run, n, buffered)
            bare_s[buffered] = result["elapsed"]
            bare_cpu[buffered] = result["cpu_s"]
        bridge_s, m = drained[producers[0]]
        bridge_rate = n / bridge_s
        mean_latency = m.get("kafka_ack_latency_seconds_sum", 0) / max(
            1, m.get("kafka_ack_latency_seconds_count", 1)
        )
        cpu_us = m["cpu_s"] / n * 1e6
        print(f"load average (1 min) after the drains: {os.getloadavg()[0]:.1f} on 2 cores")
        print(
            f"{'':44}{'frames/s':>9}{'seconds':>8}{'bridge/x':>9}{'CPU us/frame':>13}"
            f"{'frames/CPU-s':>13}"
        )
        for producer in producers:
            p_s, pm = drained[producer]
            p_us = pm["cpu_s"] / n * 1e6
            label = f"bridge, {producer} producer"
            print(
                f"{label:44}{n / p_s:>9,.0f}{p_s:>8.2f}{bridge_rate / (n / p_s):>9.2f}"
                f"{p_us:>13.0f}{1e6 / p_us:>13,.0f}"
            )
        for buffered, label in (
            (False, "bare paho->kafka-python, stock paho"),
            (True, "bare paho->kafka-python, buffered paho"),
        ):
            rate = n / bare_s[buffered]
            us = bare_cpu[buffered] / n * 1e6
            print(
                f"{label:44}{rate:>9,.0f}{bare_s[buffered]:>8.2f}{bridge_rate / rate:>9.2f}"
                f"{us:>13.0f}{1e6 / us:>13,.0f}"
            )
        verdict = "MET" if bridge_rate >= 5000 else "NOT MET"
        print(f"target >= 5,000 frames/s per bridge process: {verdict}")
        for producer in producers:
            pm = drained[producer][1]
            lat = pm.get("kafka_ack_latency_seconds_sum", 0) / max(
                1, pm.get("kafka_ack_latency_seconds_count", 1)
            )
            print(
                f"bridge ({producer}): forwarded {pm.get('forwarded_total', 0):.0f}, "
                f"dead-lettered {pm.get('dead_lettered_total', 0):.0f}, mean Kafka ack latency "
                f"{lat * 1000:.1f} ms"
            )
        print(
            f"records in Kafka after the bridges: {in_kafka} "
            f"(expected {n * len(producers)}); 'bridge/x' is relative to the first bridge row"
        )
        del mean_latency
        for path in (profile, spy):
            if path is not None:
                print(f"profile: {path}")
        if spy is not None:
            py_spy_summary(spy, cpu_us)
        # 5. live: publishers and a bridge at the same time
        if args.live:
            b = Bridge(env, f"{run}-live", f"{run}-live", run, log)
            b.wait(lambda m: m.get("mqtt_subscribed", 0) == 1, 120)
            started = time.perf_counter()
            pub = threading.Thread(
                target=publish_all, args=(mqtt_s, run, args.machines, per_machine, args.publishers)
            )
            pub.start()
            b.wait(lambda m: m.get("forwarded_total", 0) >= n, 600)
            live_s = time.perf_counter() - started
            pub.join()
            b.stop()
            print(
                "live (publishers beside the bridge on the same 2 cores): "
                f"{n / live_s:,.0f} frames/s end to end"
            )
    finally:
        admin = KafkaAdminClient(bootstrap_servers=kafka.bootstrap)
        admin.delete_topics([s.name for s in topic_specs(TopicsSettings(), kafka.topic_prefix)])
        admin.close()


if __name__ == "__main__":
    main()
