"""The rehearsal's 3-broker KRaft cluster: every topic replicated 3 times with
min.insync.replicas 2, so acks=all writes go on, and nothing acknowledged is lost, when
the broker leading the most partitions is killed with SIGKILL."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator

import pytest

from rehearsal import compose, netns
from rehearsal.kafka_cluster import KafkaCluster
from rehearsal.run_on import probe
from tests.integration.rehearsal_support import REPO, require_netns, unique_prefix

pytestmark = [pytest.mark.integration, pytest.mark.slow]

BROKERS = ["kafka-1", "kafka-2", "kafka-3"]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KafkaCluster]:
    require_netns()
    prefix = unique_prefix()
    net = netns.Net(prefix, ["ctl", *BROKERS])
    net.up()
    work = tmp_path_factory.mktemp("kafka")
    try:
        port, controller_port = compose.kafka_ports(compose.load())
        kafka = KafkaCluster(net, BROKERS, port, controller_port, work, work / "logs")
        kafka.format()
        kafka.start_all()
        ready = probe(net, "ctl", "kafka-ready", "--bootstrap", kafka.bootstrap,
                      "--brokers", "3", "--timeout", "240")  # fmt: skip
        assert ready["ok"], f"cluster not ready: {ready}; logs in {work / 'logs'}"
        yield kafka
    finally:
        netns.teardown(prefix, grace_s=5.0)


def test_contract_topics_get_the_configured_replication(cluster: KafkaCluster) -> None:
    env = {
        **os.environ,
        "SLEDFLEET_KAFKA_BOOTSTRAP": cluster.bootstrap,
        "SLEDFLEET_KAFKA_TOPIC_PREFIX": "rf.",
        "SLEDFLEET_TOPICS_REPLICATION_FACTOR": "3",
        "SLEDFLEET_TOPICS_PARTITIONS": "6",
    }
    argv = cluster.net.command("ctl", [sys.executable, "-m", "edge.cli", "topics", "create"])
    done = subprocess.run(argv, env=env, cwd=REPO, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    info = probe(cluster.net, "ctl", "kafka-leaders", "--bootstrap", cluster.bootstrap,
                 "--topic", "rf.sledfleet.telemetry")  # fmt: skip
    assert info["replicas"] == [3]
    assert info["min_isr"] == 3
    assert info["partitions"] == 6


def test_acks_all_survives_kill_9_of_the_busiest_leader(cluster: KafkaCluster) -> None:
    net, bootstrap, topic = cluster.net, cluster.bootstrap, "acks-all"
    probe(net, "ctl", "kafka-create", "--bootstrap", bootstrap, "--topic", topic,
          "--partitions", "6", "--replication", "3")  # fmt: skip
    first = probe(net, "ctl", "kafka-produce", "--bootstrap", bootstrap, "--topic", topic,
                  "--start", "0", "--count", "2000")  # fmt: skip
    assert first == {"acked": 2000, "errors": {}}

    leaders = probe(net, "ctl", "kafka-leaders", "--bootstrap", bootstrap, "--topic", topic)
    busiest = max(leaders["leaders"], key=lambda b: leaders["leaders"][b])
    victim = BROKERS[int(busiest) - 1]
    cluster.nodes[victim].kill9()
    assert not net.pids(victim), "the killed broker's host must be empty"

    # producers and consumers carry on with two brokers (min.insync.replicas 2)
    second = probe(net, "ctl", "kafka-produce", "--bootstrap", bootstrap, "--topic", topic,
                   "--start", "2000", "--count", "2000", "--timeout", "120")  # fmt: skip
    assert second == {"acked": 2000, "errors": {}}
    after = probe(net, "ctl", "kafka-leaders", "--bootstrap", bootstrap, "--topic", topic)
    assert busiest not in after["leaders"], f"broker {busiest} is dead but leads: {after}"
    assert after["min_isr"] >= 2

    read = probe(net, "ctl", "kafka-consume", "--bootstrap", bootstrap, "--topic", topic,
                 "--timeout", "120")  # fmt: skip
    assert read == {"distinct": 4000, "duplicates": 0, "min": 0, "max": 3999}
