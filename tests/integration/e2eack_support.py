"""A kill -9 of Mosquitto while it queues agents' frames for absent bridges, with real edge
agents, a real bridge process, a private Mosquitto and the shared Kafka: what reaches Kafka,
compared with what the agents framed. Used by tests/integration/test_e2e_ack.py and
benchmarks/e2e_ack.py (which runs it with ``delete_on=puback`` and ``ack`` side by side)."""

from __future__ import annotations

import json
import os
import signal
from dataclasses import dataclass
from pathlib import Path

from bridge_support import BridgeProcess, Publisher, frame, kafka_topics, read_topic, topic_for
from edge_support import AgentThread, StrokeSource
from polling import wait_until
from servers import PrivateMosquitto, port_open

from edge.agent_settings import EdgeSettings
from edge.settings import KafkaSettings
from stream.core.frames import SeqTracker
from stream.core.settings import CoreSettings

RATE_HZ = 100.0
"""Sample rate of the sources: a real sled's 2 frames of 50 samples per second, so the
stream worker's reorder window (64 frames, 10 s of device time) means what it means live."""
FAST_RATE_HZ = 1000.0
"""For tests that only need frames quickly (20 frames per second per machine)."""


def kill9(broker: PrivateMosquitto) -> None:
    """SIGKILL the private broker (no clean shutdown, no final autosave)."""
    pid = int((broker.run_dir / "mosquitto" / "mosquitto.pid").read_text().split()[0])
    os.kill(pid, signal.SIGKILL)
    wait_until(lambda: not port_open(broker.port), 30, "the killed broker's port to close")


@dataclass
class Outcome:
    framed: dict[str, int]
    """Frames each machine's agent numbered (seq 0 .. n-1)."""
    in_kafka: set[tuple[str, int]]
    kafka_records: int
    queued_at_kill: int
    """Frames the broker had PUBACKed since the bridge went away, when it was killed."""
    outbox_rows_left: int
    late: int
    """Frames the stream worker would refuse as ``late_frame``: Kafka's order of each
    machine's frames replayed through the core's own SeqTracker (reorder window)."""

    @property
    def truth(self) -> set[tuple[str, int]]:
        return {(m, s) for m, n in self.framed.items() for s in range(n)}

    @property
    def lost(self) -> int:
        return len(self.truth - self.in_kafka)

    @property
    def duplicates(self) -> int:
        return self.kafka_records - len(self.in_kafka)


def kafka_frames(kafka: KafkaSettings, topic: str) -> list[tuple[str, int, int]]:
    """(machine, seq, t0_ns) of every telemetry record, in Kafka's order per partition."""
    out = []
    for r in read_topic(kafka, topic, 0):
        if r.headers.get("kind") == b"telemetry":
            payload = json.loads(r.value)
            out.append((payload["machine_id"], payload["seq"], payload["t0_ns"]))
    return out


def telemetry_in_kafka(kafka: KafkaSettings, topic: str) -> tuple[set[tuple[str, int]], int]:
    frames = kafka_frames(kafka, topic)
    return {(m, s) for m, s, _ in frames}, len(frames)


def late_frames(frames: list[tuple[str, int, int]]) -> int:
    """Frames the worker would refuse as late: each machine's frames in Kafka's order through
    the core's own SeqTracker (a hole is given up when the reorder buffer overflows; the
    worker's other give-up, a machine silent for SLEDFLEET_CORE_REORDER_HOLD_S of wall time,
    is left out)."""
    window = CoreSettings().reorder_window
    trackers: dict[str, SeqTracker] = {}
    for machine, seq, _t0 in frames:
        trackers.setdefault(machine, SeqTracker(window)).accept({"seq": seq})
    return sum(t.late for t in trackers.values())


def kill_with_queue(
    broker: PrivateMosquitto,
    kafka: KafkaSettings,
    work: Path,
    unique: str,
    delete_on: str,
    machines: int = 16,
    seconds: float = 30.0,
    queue_frames: int = 300,
    bridges: int = 1,
) -> Outcome:
    """Agents stream; the bridges (one share group) stop, their sessions queue; once the
    broker PUBACKed ``queue_frames`` more frames, kill -9 it, restart it and the bridges; let
    the agents finish and (ack mode) drain; read Kafka."""
    clinic = f"c{unique}"
    settings = [
        EdgeSettings(
            machine_id=f"m{unique}-{i}",
            clinic_id=clinic,
            outbox_dir=str(work / "outbox"),
            reconnect_min_s=1,
            reconnect_max_s=2,
            delete_on=delete_on,
            ack_timeout_s=10.0,
        )
        for i in range(machines)
    ]
    n = int(seconds * RATE_HZ)
    with kafka_topics(kafka) as topics:

        def start_bridges() -> list[BridgeProcess]:
            started = [
                BridgeProcess(
                    broker.settings,
                    kafka,
                    client_id=f"bridge-{unique}-{i}",
                    group=f"g{unique}",
                    clinic=clinic,
                    log_dir=work,
                ).start()
                for i in range(bridges)
            ]
            for b in started:
                b.wait_healthy()
            return started

        first = start_bridges()
        second: list[BridgeProcess] = []
        fleet = AgentThread(
            [(s, StrokeSource(n, live=True, rate_hz=RATE_HZ)) for s in settings], broker.settings
        )
        agents = fleet.runner.agents
        try:
            wait_until(
                lambda: sum(b.metric_sum("forwarded_total") for b in first) >= 100,
                60,
                "frames flowing",
            )
            for b in first:
                assert b.terminate() == 0  # persistent session: the broker queues for it
            base = sum(a.acked for a in agents)
            wait_until(
                lambda: sum(a.acked for a in agents) - base >= queue_frames,
                60,
                f"{queue_frames} frames queued in the broker",
            )
            queued = sum(a.acked for a in agents) - base
            kill9(broker)
            broker.start()
            second = start_bridges()
            stats = fleet.join(seconds + 120)
            # a sentinel behind the agents' last frames in the bridge's queue: once Kafka has
            # it and the bridge has nothing in flight, Kafka has all the broker delivered
            sentinel = f"m{unique}-sentinel"
            pub = Publisher(broker.settings, f"pub-{unique}")
            pub.publish(topic_for(clinic, sentinel), frame(clinic, sentinel, 0))
            pub.wait_all()
            pub.close()
            wait_until(
                lambda: any(
                    m == sentinel for m, _ in telemetry_in_kafka(kafka, topics.telemetry)[0]
                ),
                60,
                "the sentinel in Kafka",
            )
            wait_until(
                lambda: all(b.metrics().get("in_flight") == 0 for b in second),
                60,
                "bridges drained",
            )
        finally:
            fleet.runner.stop()
            for b in (*second, *first):
                b.stop_quietly()
        framed = {a.machine_id: a.framer.next_seq for a in agents}
        frames = [f for f in kafka_frames(kafka, topics.telemetry) if f[0] != sentinel]
    return Outcome(
        framed,
        {(m, s) for m, s, _ in frames},
        len(frames),
        queued,
        stats.undelivered_rows,
        late_frames(frames),
    )
