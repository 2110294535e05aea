"""A KRaft Kafka cluster of combined controller+broker nodes, one per host.

The jars are the ones ``services/start kafka`` caches (``~/.cache/sledfleet/kafka-<v>/lib``,
Maven Central). Every node listens on its host's address only (nothing on loopback), the
controller quorum is static (``controller.quorum.voters``), and durability is the
production shape: replication factor 3 for every topic including the internal ones,
``min.insync.replicas`` 2, so an ``acks=all`` write survives the loss of any one broker."""

from __future__ import annotations

import base64
import os
import re
import shutil
import subprocess
import uuid
from pathlib import Path
from typing import Final

from rehearsal.compose import REPO
from rehearsal.netns import Net
from rehearsal.procs import Proc, ProcFailed

POM: Final = REPO / "services" / "kafka" / "pom.xml"
LOG4J: Final = REPO / "services" / "kafka" / "log4j2.xml"
HEAP: Final = os.environ.get("SLEDFLEET_REHEARSE_KAFKA_HEAP", "512m")
REPLICATION: Final = 3
MIN_INSYNC: Final = 2


def kafka_lib() -> Path:
    version = re.search(r"<kafka.version>(.*)</kafka.version>", POM.read_text())
    if version is None:
        raise ProcFailed(f"{POM}: no kafka.version")
    cache = os.environ.get("SLEDFLEET_CACHE_DIR") or str(Path.home() / ".cache" / "sledfleet")
    lib = Path(cache) / f"kafka-{version.group(1)}" / "lib"
    if not any(lib.glob("kafka_2.13-*.jar")):
        raise ProcFailed(f"no Kafka jars in {lib}: run services/bootstrap")
    return lib


def java() -> str:
    found = os.environ.get("SLEDFLEET_JAVA") or shutil.which("java")
    if not found:
        raise ProcFailed("java not found (services/bootstrap installs openjdk-17-jre-headless)")
    return found


def node_properties(
    node_id: int, hosts: list[str], address: str, port: int, controller_port: int, data: Path
) -> str:
    voters = ",".join(f"{i}@{h}:{controller_port}" for i, h in enumerate(hosts, start=1))
    rf, isr = min(REPLICATION, len(hosts)), min(MIN_INSYNC, len(hosts))
    return f"""\
process.roles=broker,controller
node.id={node_id}
controller.quorum.voters={voters}
listeners=PLAINTEXT://{address}:{port},CONTROLLER://{address}:{controller_port}
advertised.listeners=PLAINTEXT://{hosts[node_id - 1]}:{port}
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
log.dirs={data}
metadata.log.dir={data}
auto.create.topics.enable=false
num.partitions=1
default.replication.factor={rf}
min.insync.replicas={isr}
offsets.topic.replication.factor={rf}
offsets.topic.num.partitions=10
transaction.state.log.replication.factor={rf}
transaction.state.log.min.isr={isr}
share.coordinator.state.topic.replication.factor={rf}
share.coordinator.state.topic.min.isr={isr}
unclean.leader.election.enable=false
group.initial.rebalance.delay.ms=0
group.consumer.min.session.timeout.ms=1000
group.min.session.timeout.ms=1000
delete.topic.enable=true
log.segment.bytes=67108864
num.network.threads=2
num.io.threads=4
num.recovery.threads.per.data.dir=1
message.max.bytes=16777216
replica.fetch.max.bytes=16777216
socket.request.max.bytes=104857600
# a dead broker is noticed in seconds, not 18 s (the default broker session timeout)
broker.session.timeout.ms=6000
broker.heartbeat.interval.ms=1000
replica.lag.time.max.ms=10000
"""


def cluster_id() -> str:
    return base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")


class KafkaCluster:
    def __init__(
        self, net: Net, hosts: list[str], port: int, controller_port: int, work: Path, logs: Path
    ) -> None:
        self.net, self.hosts, self.port, self.controller_port = net, hosts, port, controller_port
        self.work, self.logs = work, logs
        self.nodes: dict[str, Proc] = {}

    @property
    def bootstrap(self) -> str:
        return ",".join(f"{h}:{self.port}" for h in self.hosts)

    def _jvm(self, host: str) -> list[str]:
        return [
            java(), "-Xms128m", f"-Xmx{HEAP}", "-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20",
            "-Djava.awt.headless=true", f"-Dkafka.logs.dir={self.logs / host}",
            f"-Dlog4j2.configurationFile={LOG4J}", "-cp", f"{kafka_lib()}/*",
        ]  # fmt: skip

    def _props(self, host: str) -> Path:
        return self.work / host / "server.properties"

    def format(self) -> None:
        """Write every node's properties and format its storage with one cluster id."""
        cid = cluster_id()
        jobs = []
        for i, host in enumerate(self.hosts, start=1):
            data = self.work / host / "data"
            data.mkdir(parents=True, exist_ok=True)
            (self.logs / host).mkdir(parents=True, exist_ok=True)
            self._props(host).write_text(
                node_properties(
                    i, self.hosts, self.net.address(host), self.port, self.controller_port, data
                )
            )
            argv = [*self._jvm(host), "kafka.tools.StorageTool", "format", "-t", cid,
                    "-c", str(self._props(host))]  # fmt: skip
            jobs.append(
                subprocess.Popen(
                    argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
                )
            )
        for host, job in zip(self.hosts, jobs, strict=True):
            out, _ = job.communicate(timeout=180)
            if job.returncode != 0:
                raise ProcFailed(f"formatting {host}'s Kafka storage failed: {out[-500:]}")

    def start(self, host: str) -> Proc:
        proc = Proc(
            host, host, [*self._jvm(host), "kafka.Kafka", str(self._props(host))], {},
            self.logs / host / "stdout.log",
        )  # fmt: skip
        self.nodes[host] = proc.start(self.net)
        return proc

    def start_all(self) -> None:
        for host in self.hosts:
            self.start(host)
