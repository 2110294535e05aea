"""The whole deployment on rehearsal hosts, wired from docker-compose.yml.

Order: tripwires on every role host → Mosquitto, PostgreSQL, the Kafka cluster → ``ctl``
prepares the database (migrations, clinic roles), creates the topics (replication 3) and
publishes the prescriptions → bridges, stream workers, sinks, each health-checked → the edge
host's simulated fleet. Every role gets only host names (``mosquitto``, ``kafka-1``...,
``timescaledb``), never an address on loopback."""

from __future__ import annotations

import logging
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from rehearsal import compose, netns, servers, topology
from rehearsal.kafka_cluster import KafkaCluster
from rehearsal.procs import Proc
from rehearsal.run_on import ProbeFailed, probe
from rehearsal.topology import CTL, DATABASE, EDGE, MOSQUITTO, Shape

log = logging.getLogger(__name__)

BRIDGE_METRICS_PORT: Final = 9108  # compose bridge
WORKER_WEB_PORT: Final = 6066  # compose stream-worker
SINK_METRICS_PORT: Final = 9109  # compose sink
DB_NAME: Final = "sledfleet"


def faketime_env(ahead_s: float) -> dict[str, str]:
    """Environment that runs a process with its wall clock ``ahead_s`` ahead (libfaketime,
    Debian package ``libfaketime``, installed by services/bootstrap)."""
    import glob

    # the MT build: librdkafka's and Python's threads wait on realtime deadlines
    libs = sorted(glob.glob("/usr/lib/*/faketime/libfaketimeMT.so.1"))
    if not libs:
        raise RuntimeError("libfaketime is not installed (services/bootstrap installs it)")
    return {
        "LD_PRELOAD": libs[0],
        "FAKETIME": f"{ahead_s:+.0f}",
        "FAKETIME_DONT_FAKE_MONOTONIC": "1",
        "FAKETIME_NO_CACHE": "1",
    }


@dataclass(frozen=True, slots=True)
class FleetSpec:
    clinics: int = 3
    machines_per_clinic: int = 2
    patients_per_machine: int = 3
    weeks: int = 4
    seed: int = 7

    def args(self) -> list[str]:
        return [
            "--clinics", str(self.clinics), "--machines", str(self.machines_per_clinic),
            "--patients", str(self.patients_per_machine), "--weeks", str(self.weeks),
            "--seed", str(self.seed),
        ]  # fmt: skip


@dataclass
class Deployment:
    prefix: str
    shape: Shape = field(default_factory=Shape)
    fleet: FleetSpec = field(default_factory=FleetSpec)
    logs: Path = Path("out/rehearse/logs")
    roles: dict[str, Proc] = field(default_factory=dict)
    tripwires: dict[str, Proc] = field(default_factory=dict)
    restarts: dict[str, int] = field(default_factory=dict)
    """Roles that exited and were started again (compose's restart policy)."""
    stopped: set[str] = field(default_factory=set)
    """Roles stopped on purpose (scaled in): not counted as dead."""
    clock_ahead_s: dict[str, float] = field(default_factory=dict)
    """Hosts whose wall clock runs this far ahead: their roles start under libfaketime
    (network namespaces share the kernel's realtime clock; monotonic time stays real)."""

    def __post_init__(self) -> None:
        self.logs = self.logs.resolve()
        self.net = netns.Net(self.prefix, self.shape.hosts())
        # removed by teardown, and by services/lib/netns.sh after a crash of this process
        self.work = Path(f"/var/tmp/sledfleet-rehearse-{self.prefix}")  # noqa: S108
        self.compose = compose.load()
        self.kafka_port, self.controller_port = compose.kafka_ports(self.compose)
        self.mqtt_port = compose.mqtt_port(self.compose)
        self.db_port = compose.database_port()
        self.kafka = KafkaCluster(
            self.net, self.shape.kafka_hosts, self.kafka_port, self.controller_port,
            self.work / "kafka", self.logs,
        )  # fmt: skip

    # --- wiring ---------------------------------------------------------------------

    @property
    def dsn(self) -> str:
        return f"postgresql://sledfleet:{servers.APP_PASSWORD}@{DATABASE}:{self.db_port}/{DB_NAME}"

    @property
    def admin_dsn(self) -> str:
        pw = servers.PG_SUPERUSER_PASSWORD
        return f"postgresql://postgres:{pw}@{DATABASE}:{self.db_port}/postgres"

    def common_env(self) -> dict[str, str]:
        return {
            "SLEDFLEET_KAFKA_BOOTSTRAP": self.kafka.bootstrap,
            # the rehearsal's 3-broker cluster has no SASL listener (compose's Kafka does)
            "SLEDFLEET_KAFKA_SECURITY_PROTOCOL": "PLAINTEXT",
            "SLEDFLEET_DATABASE_URL": self.dsn,
            "SLEDFLEET_DATABASE_ADMIN_URL": self.admin_dsn,
        }

    def role_env(self, service: str, host: str) -> dict[str, str]:
        """compose's variables for ``service``, with :data:`compose.OVERRIDES` applied."""
        env = {**compose.service_env(self.compose, service), **self.common_env()}
        if service == "stream-worker":
            env["SLEDFLEET_STREAM_DATA_DIR"] = str(self.work / host / "stream")
        if service == "bridge":
            env.pop("SLEDFLEET_BRIDGE_REGISTRY_FILE", None)
        if service == "simulator":
            env["SLEDFLEET_EDGE_OUTBOX_DIR"] = str(self.work / host / "outbox")
            env.pop("SLEDFLEET_MQTT_USERNAME", None)
            env.pop("SLEDFLEET_MQTT_PASSWORD", None)
        return env

    def consumer_groups(self) -> list[str]:
        """The stream workers' and the sinks' Kafka consumer groups, as compose sets them."""
        from edge.settings import KafkaSettings, load
        from storage.sink import SinkSettings
        from stream.app.settings import StreamSettings

        worker = self.role_env("stream-worker", "x")
        prefix = load(KafkaSettings, worker).topic_prefix
        return [
            prefix + load(StreamSettings, worker).app_id,
            load(SinkSettings, self.role_env("sink", "x")).group_id,
        ]

    def probe(self, *args: str, host: str = CTL, timeout_s: float = 600.0) -> dict[str, Any]:
        return probe(self.net, host, *args, timeout_s=timeout_s)

    # --- lifecycle ------------------------------------------------------------------

    def up(self) -> None:
        shutil.rmtree(self.work, ignore_errors=True)
        self.work.mkdir(parents=True)
        self.logs.mkdir(parents=True, exist_ok=True)
        (self.logs / "tripwire").mkdir(exist_ok=True)
        self.net.up()
        for host in self.shape.hosts():
            if host != CTL:
                self.tripwires[host] = Proc(
                    f"tripwire-{host}", host,
                    [sys.executable, "-m", "rehearsal.tripwire", str(self.tripwire_log(host))],
                    {}, self.logs / f"tripwire-{host}.log", cwd=compose.REPO,
                ).start(self.net)  # fmt: skip
        self.start_servers()
        self.setup()
        self.start_roles()

    def tripwire_log(self, host: str) -> Path:
        return self.logs / "tripwire" / f"{host}.jsonl"

    def start_servers(self) -> None:
        self.roles[MOSQUITTO] = servers.mosquitto(
            self.net, MOSQUITTO, self.mqtt_port, self.work, self.logs
        ).start(self.net)
        pgdata = self.work / "pg" / "data"
        servers.init_postgres(pgdata, self.net.address(DATABASE), self.db_port)
        self.pgdata = pgdata
        self.roles[DATABASE] = servers.postgres(
            self.net, DATABASE, self.db_port, pgdata, self.logs
        ).start(self.net)
        self.kafka.format()
        self.kafka.start_all()
        self.roles.update(self.kafka.nodes)
        self.wait_kafka()

    def wait_kafka(self, timeout_s: float = 300.0) -> None:
        """Fresh probe processes with their own deadline: a kafka-python client created
        before the brokers listened has been seen to hang past any timeout it was given."""
        deadline = time.monotonic() + timeout_s
        last: object = None
        while time.monotonic() < deadline:
            try:
                last = self.probe("kafka-ready", "--bootstrap", self.kafka.bootstrap,
                                  "--brokers", str(self.shape.brokers), "--timeout", "10",
                                  timeout_s=30.0)  # fmt: skip
                if last["ok"]:
                    return
            except (subprocess.TimeoutExpired, ProbeFailed) as e:
                last = e
        raise RuntimeError(f"Kafka cluster not ready after {timeout_s:.0f} s: {last}")

    def restart_postgres(self) -> Proc:
        self.roles[DATABASE] = servers.postgres(
            self.net, DATABASE, self.db_port, self.pgdata, self.logs
        ).start(self.net)
        return self.roles[DATABASE]

    def setup(self) -> None:
        result = self.probe(
            "setup", "--admin-dsn", self.admin_dsn, "--dsn", self.dsn,
            "--bootstrap", self.kafka.bootstrap, "--replication", str(self.shape.brokers),
            *self.fleet.args(),
        )  # fmt: skip
        log.info("setup: %s", result)

    def role(self, service: str, host: str, argv: list[str]) -> Proc:
        env = self.role_env(service, host)
        if self.clock_ahead_s.get(host):
            env |= faketime_env(self.clock_ahead_s[host])
        proc = Proc(
            host, host, [sys.executable, "-m", "edge.cli", *argv],
            env, self.logs / f"{host}.log", cwd=compose.REPO,
        )  # fmt: skip
        self.roles[host] = proc.start(self.net)
        return proc

    def leave_share_group(self, host: str) -> None:
        """End a stopped bridge's persistent MQTT session (a clean start with its client id).
        Mosquitto keeps handing a share group's messages to an offline member's session:
        a bridge scaled in without this holds part of every machine's frames until it
        comes back, or loses them when the session expires."""
        argv = ["mosquitto_sub", "-V", "mqttv5", "-h", MOSQUITTO, "-p", str(self.mqtt_port),
                "-i", f"bridge-{host}-0", "-t", "sledfleet/leave", "-E"]  # fmt: skip
        subprocess.run(self.net.command(CTL, argv), check=True, timeout=30, capture_output=True)

    def start_bridge(self, host: str) -> Proc:
        return self.role("bridge", host, ["bridge"])

    def start_worker(self, host: str) -> Proc:
        (self.work / host / "stream").mkdir(parents=True, exist_ok=True)
        return self.role("stream-worker", host, ["stream", "worker"])

    def start_sink(self, host: str) -> Proc:
        return self.role("sink", host, ["sink"])

    def health_urls(self) -> list[tuple[str, str]]:
        """(host to ask from, URL): bridges and sinks are scraped across the network as
        compose's Prometheus would (their metrics listen on every address); the worker's
        web server listens on its host's loopback only (hardened: docs/security.md)."""
        out = [(CTL, f"http://{h}:{BRIDGE_METRICS_PORT}/healthz") for h in self.shape.bridge_hosts]
        out += [
            (h, f"http://127.0.0.1:{WORKER_WEB_PORT}/sledfleet/stats/")
            for h in self.shape.worker_hosts
        ]
        out += [(CTL, f"http://{h}:{SINK_METRICS_PORT}/health") for h in self.shape.sink_hosts]
        return out

    def start_roles(self) -> None:
        for h in self.shape.bridge_hosts:
            self.start_bridge(h)
        for h in self.shape.worker_hosts:
            self.start_worker(h)
        for h in self.shape.sink_hosts:
            self.start_sink(h)
        self.wait_healthy()

    def wait_healthy_subset(self, timeout_s: float = 300.0) -> None:
        """Like :meth:`wait_healthy` for the roles currently in :attr:`roles`."""
        self.wait_healthy(timeout_s, only=set(self.roles) - self.stopped)

    def wait_healthy(self, timeout_s: float = 300.0, only: set[str] | None = None) -> None:
        """Every role answers its health URL; fails at once when one of them exited."""
        pending = [
            (h, u) for h, u in self.health_urls() if only is None or u.split("/")[2].split(":")[0]
            in only or h in only
        ]
        deadline = time.monotonic() + timeout_s
        while pending:
            dead = self.check_alive()
            if dead:
                raise RuntimeError(f"roles exited while starting: {dead}; logs in {self.logs}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"roles not healthy after {timeout_s:.0f} s: {pending}")
            host, url = pending[0]
            if self.probe("wait-http", "--url", url, "--timeout", "10", host=host)["ok"]:
                pending.pop(0)

    def start_fleet(self, args: list[str], name: str = "fleet") -> Proc:
        env = self.role_env("simulator", EDGE)
        proc = Proc(
            name, EDGE, [sys.executable, "-m", "rehearsal.fleet", *args],
            env, self.logs / f"edge-{name}.log", cwd=compose.REPO,
        )  # fmt: skip
        self.roles[name] = proc.start(self.net)
        return proc

    def check_alive(self) -> list[str]:
        return [
            n for n, p in self.roles.items()
            if not p.alive() and n not in self.stopped and not n.startswith("fleet")
        ]  # fmt: skip

    def loopback_trips(self) -> dict[str, list[dict[str, object]]]:
        from rehearsal.tripwire import trips

        return {h: t for h in self.tripwires if (t := trips(self.tripwire_log(h)))}

    def down(self) -> None:
        """Every process gets SIGTERM at once and 10 s, then SIGKILL; hosts removed."""
        netns.teardown(self.prefix, grace_s=10.0)
        shutil.rmtree(self.work, ignore_errors=True)


__all__ = ["Deployment", "FleetSpec", "topology"]
