"""End-to-end acknowledgement with real servers: a kill -9 of Mosquitto while it queues the
agents' frames for an absent bridge loses nothing when agents delete on the bridge's ack
(delete_on=ack), and without acks the rows stay in the agents' outboxes.

Private Mosquitto on free ports (killed for real), the shared Kafka under a unique topic
prefix, ``sledfleet bridge`` processes, real edge agents (FleetRunner, own MQTT clients and
SQLite outboxes). benchmarks/e2e_ack.py runs the first scenario in both modes side by side.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from bridge_support import BridgeProcess, kafka_topics
from e2eack_support import FAST_RATE_HZ, kill_with_queue, telemetry_in_kafka
from edge_support import AgentThread, StrokeSource
from polling import wait_until
from servers import PrivateMosquitto

from edge.agent_settings import EdgeSettings
from edge.settings import KafkaSettings

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture
def broker() -> Iterator[PrivateMosquitto]:
    with PrivateMosquitto() as b:
        yield b


def test_mosquitto_kill9_with_queued_frames_loses_nothing(
    broker: PrivateMosquitto, kafka_settings: KafkaSettings, unique: str, tmp_path: Path
) -> None:
    out = kill_with_queue(broker, kafka_settings, tmp_path, unique, delete_on="ack")
    print(
        f"e2e ack: {sum(out.framed.values())} frames, {out.queued_at_kill} queued at the "
        f"kill, {out.lost} lost, {out.duplicates} duplicates in Kafka, {out.late} late"
    )
    assert out.queued_at_kill >= 300
    assert out.outbox_rows_left == 0
    assert out.in_kafka == out.truth  # every (machine, seq), none missing, none foreign
    assert out.lost == 0
    assert out.late == 0  # re-sent oldest first: the worker sees duplicates, never late frames


def test_two_bridges_in_one_share_group_each_ack_their_part_nothing_lost(
    broker: PrivateMosquitto, kafka_settings: KafkaSettings, unique: str, tmp_path: Path
) -> None:
    out = kill_with_queue(
        broker, kafka_settings, tmp_path, unique, delete_on="ack", machines=12, bridges=2
    )
    print(
        f"e2e ack, 2 bridges: {sum(out.framed.values())} frames, {out.queued_at_kill} queued, "
        f"{out.lost} lost, {out.duplicates} duplicates, {out.late} late under the reorder window"
    )
    assert out.outbox_rows_left == 0
    assert out.in_kafka == out.truth
    assert out.late == 0


def test_without_acks_rows_stay_in_the_outbox_and_are_sent_again(
    broker: PrivateMosquitto, kafka_settings: KafkaSettings, unique: str, tmp_path: Path
) -> None:
    clinic = f"c{unique}"
    machine = f"m{unique}"
    settings = EdgeSettings(
        machine_id=machine,
        clinic_id=clinic,
        outbox_dir=str(tmp_path / "outbox"),
        delete_on="ack",
        ack_timeout_s=1.0,
        ack_timeout_max_s=2.0,
    )
    with kafka_topics(kafka_settings) as topics:
        mute = BridgeProcess(
            broker.settings,
            kafka_settings,
            client_id=f"bridge-{unique}-mute",
            group=f"g{unique}",
            clinic=clinic,
            log_dir=tmp_path,
            extra_env={"SLEDFLEET_BRIDGE_PUBLISH_ACKS": "0"},
        ).start()
        acking: BridgeProcess | None = None
        fleet = AgentThread(
            [(settings, StrokeSource(int(2 * FAST_RATE_HZ), live=True, rate_hz=FAST_RATE_HZ))],
            broker.settings,
        )
        (agent,) = fleet.runner.agents
        try:
            mute.wait_healthy()
            wait_until(lambda: agent.framer.next_seq >= 40, 60, "the source to end")
            frames = {(machine, s) for s in range(agent.framer.next_seq)}
            wait_until(
                lambda: telemetry_in_kafka(kafka_settings, topics.telemetry)[0] >= frames,
                60,
                "every frame in Kafka",
            )
            wait_until(lambda: agent.resend.resends >= 2, 60, "two re-sends after the timeout")
            # Kafka holds every frame, yet without an ack nothing left the outbox
            assert agent.outbox.stats().rows >= len(frames)
            assert agent.confirmed == 0
            # a bridge that acknowledges: the next re-send is confirmed, the outbox drains
            mute.terminate()
            acking = BridgeProcess(
                broker.settings,
                kafka_settings,
                client_id=f"bridge-{unique}",
                group=f"g{unique}",
                clinic=clinic,
                log_dir=tmp_path,
            ).start()
            acking.wait_healthy()
            stats = fleet.join(120)
        finally:
            fleet.runner.stop()
            mute.stop_quietly()
            if acking is not None:
                acking.stop_quietly()
    assert stats.undelivered_rows == 0
    assert agent.confirmed >= len(frames)
