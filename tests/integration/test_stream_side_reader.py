"""The worker's side consumer (``stream.app.side_reader.SideReader``) on the real Kafka:
exact offset ranges (the holes Faust steps over) and end offsets, at the configured
address."""

from __future__ import annotations

import asyncio

import pytest
from faust.types import TP
from kafka import KafkaProducer

from edge.settings import KafkaSettings
from stream.app.side_reader import SideReader
from tests.integration.conftest import KafkaAdmin

pytestmark = pytest.mark.integration


def test_read_range_and_end_offsets_return_exactly_the_asked_offsets(
    kafka_settings: KafkaSettings, kafka_admin: KafkaAdmin
) -> None:
    topic = kafka_settings.topic_prefix + "side"
    kafka_admin.create_topics([topic], partitions=2)
    producer = KafkaProducer(bootstrap_servers=kafka_settings.servers, acks="all")
    for i in range(60):
        producer.send(topic, value=b"m%d" % i, partition=i % 2, headers=[("kind", b"event")])
    producer.flush()
    producer.close()
    p0, p1 = TP(topic, 0), TP(topic, 1)

    async def scenario() -> tuple[list[object], list[object], dict[TP, int]]:
        reader = SideReader(kafka_settings.servers)
        try:
            holes = await reader.read_range({p0: (10, 20), p1: (0, 3)})
            again = await reader.read_range({p0: (12, 14)})  # seeks back, other tp dropped
            ends = await reader.end_offsets([p0, p1])
        finally:
            await reader.stop()
        return holes, again, ends

    holes, again, ends = asyncio.run(scenario())
    h = (("kind", b"event"),)
    assert sorted(holes) == [(p0, o, b"m%d" % (2 * o), h) for o in range(10, 20)] + [
        (p1, o, b"m%d" % (2 * o + 1), h) for o in range(3)
    ]
    assert sorted(again) == [(p0, 12, b"m24", h), (p0, 13, b"m26", h)]
    assert ends == {p0: 30, p1: 30}
