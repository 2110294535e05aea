"""Host-level faults, each injected while a segment of the fleet streams.

A fault is a function run at the injection moment; it returns when the fault is over (the
link restored, the process restarted). What it breaks is real: SIGKILL to the process on
its host, the host's cable pulled at the switch, PostgreSQL's fast shutdown and start."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Final

from rehearsal.deploy import Deployment
from rehearsal.topology import DATABASE, MOSQUITTO

log = logging.getLogger(__name__)

LINK_DOWN_S: Final = 60.0
BRIDGE_RESTART_AFTER_S: Final = 20.0
MOSQUITTO_RESTART_AFTER_S: Final = 5.0
BROKER_RESTART_AFTER_S: Final = 30.0
QUEUE_S: Final = 10.0
"""How long agents publish into the stopped bridges' queues before Mosquitto is killed
(under ``autosave_interval`` 30 s, so most of it was never written to disk)."""
SKEW_S: Final = 300.0
"""The clock-skew segment's first machine runs this many seconds ahead of the others."""
HOST_SKEW_S: Final = 180.0
"""...and mid-stream, a bridge host's and a worker host's wall clocks step this far ahead,"""
HOST_SKEW_HOLD_S: Final = 45.0
"""...stay so for this long, then step back."""

Fault = Callable[[Deployment], str]


def busiest_telemetry_leader(dep: Deployment) -> str:
    from edge import contract

    info = dep.probe("kafka-leaders", "--bootstrap", dep.kafka.bootstrap,
                     "--topic", contract.KAFKA_TELEMETRY)  # fmt: skip
    leaders: dict[str, int] = info["leaders"]
    node = max(leaders, key=lambda b: leaders[b])
    return dep.shape.kafka_hosts[int(node) - 1]


def kill_broker(dep: Deployment) -> str:
    host = busiest_telemetry_leader(dep)
    dep.roles[host].kill9()
    time.sleep(BROKER_RESTART_AFTER_S)
    dep.roles[host] = dep.kafka.start(host)
    return f"kill -9 {host} (leader of most telemetry partitions), restarted after " \
        f"{BROKER_RESTART_AFTER_S:.0f} s"


def cut_worker_link(dep: Deployment) -> str:
    host = dep.shape.worker_hosts[0]
    dep.net.set_link(host, up=False)
    try:
        time.sleep(LINK_DOWN_S)
    finally:
        dep.net.set_link(host, up=True)
    return f"{host}'s link down {LINK_DOWN_S:.0f} s, then up"


def kill_bridge(dep: Deployment) -> str:
    host = dep.shape.bridge_hosts[0]
    dep.roles[host].kill9()
    time.sleep(BRIDGE_RESTART_AFTER_S)
    dep.start_bridge(host)
    return f"kill -9 {host}, restarted after {BRIDGE_RESTART_AFTER_S:.0f} s"


def kill_mosquitto(dep: Deployment) -> str:
    from rehearsal import servers

    dep.roles[MOSQUITTO].kill9()
    time.sleep(MOSQUITTO_RESTART_AFTER_S)
    dep.roles[MOSQUITTO] = servers.mosquitto(
        dep.net, MOSQUITTO, dep.mqtt_port, dep.work, dep.logs
    ).start(dep.net)
    return f"kill -9 mosquitto, restarted after {MOSQUITTO_RESTART_AFTER_S:.0f} s"


def kill_mosquitto_with_queue(dep: Deployment) -> str:
    """The worst case for broker-side loss: the bridges are away (SIGTERM, persistent
    sessions kept), agents publish into their queues and get PUBACKs, then Mosquitto dies
    before its next autosave. Whatever only Mosquitto's memory held is gone."""
    from rehearsal import servers

    for host in dep.shape.bridge_hosts:
        dep.roles[host].stop()
    time.sleep(QUEUE_S)
    dep.roles[MOSQUITTO].kill9()
    dep.roles[MOSQUITTO] = servers.mosquitto(
        dep.net, MOSQUITTO, dep.mqtt_port, dep.work, dep.logs
    ).start(dep.net)
    for host in dep.shape.bridge_hosts:
        dep.start_bridge(host)
    return (f"bridges stopped, agents publish {QUEUE_S:.0f} s into their queues, "
            "kill -9 mosquitto, restart all")  # fmt: skip


def restart_postgres(dep: Deployment) -> str:
    dep.roles[DATABASE].stop(grace_s=60.0)  # SIGTERM: PostgreSQL's smart/fast shutdown path
    dep.restart_postgres()
    return "PostgreSQL stopped (SIGTERM) and started again"


def step_host_clocks(dep: Deployment) -> str:
    """A bridge host's and a worker host's clocks step ``HOST_SKEW_S`` ahead mid-stream
    (their roles restart under libfaketime), run so for ``HOST_SKEW_HOLD_S``, and step
    back: the bridge stamps arrival times from the wrong clock, the worker judges liveness
    by it. Neither may change a result."""
    bridge, worker = dep.shape.bridge_hosts[0], dep.shape.worker_hosts[0]
    restart = {bridge: dep.start_bridge, worker: dep.start_worker}
    for ahead in (HOST_SKEW_S, 0.0):
        for host, start in restart.items():
            dep.roles[host].stop()
            dep.clock_ahead_s[host] = ahead
            start(host)
        dep.wait_healthy_subset()
        if ahead:
            time.sleep(HOST_SKEW_HOLD_S)
    return (f"{bridge} and {worker} clocks +{HOST_SKEW_S:.0f} s for "
            f"{HOST_SKEW_HOLD_S:.0f} s, then back (machine 1's clock +{SKEW_S:.0f} s)")  # fmt: skip


def nothing(dep: Deployment) -> str:
    return "no fault"


FAULTS: Final[dict[str, Fault]] = {
    "baseline": nothing,
    "kafka-leader": kill_broker,
    "worker-link": cut_worker_link,
    "bridge": kill_bridge,
    "mosquitto": kill_mosquitto,
    "mosquitto-queued": kill_mosquitto_with_queue,
    "postgres": restart_postgres,
    "clock-skew": step_host_clocks,  # and the segment runs one machine's clock SKEW_S ahead
}
