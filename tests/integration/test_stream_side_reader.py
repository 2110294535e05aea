"""The worker's side consumer (``stream.app.sparse.SparseReader``) on the real Kafka:
exact offset ranges (the holes Faust steps over) and read-ahead to the current end."""

from __future__ import annotations

import asyncio

import pytest
from faust.types import TP
from kafka import KafkaProducer

from edge.settings import KafkaSettings
from stream.app.sparse import SparseReader
from tests.integration.conftest import KafkaAdmin

pytestmark = pytest.mark.integration


def test_read_range_and_read_ahead_return_exactly_the_asked_offsets(
    kafka_settings: KafkaSettings, kafka_admin: KafkaAdmin
) -> None:
    topic = kafka_settings.topic_prefix + "side"
    kafka_admin.create_topics([topic], partitions=2)
    producer = KafkaProducer(bootstrap_servers=kafka_settings.bootstrap, acks="all")
    for i in range(60):
        producer.send(topic, value=b"m%d" % i, partition=i % 2)
    producer.flush()
    producer.close()
    p0, p1 = TP(topic, 0), TP(topic, 1)

    async def scenario() -> tuple[list[object], list[object], list[object]]:
        reader = SparseReader(kafka_settings.bootstrap)
        try:
            holes = await reader.read_range({p0: (10, 20), p1: (0, 3)})
            again = await reader.read_range({p0: (12, 14)})  # seeks back, other tp dropped
            ahead = await reader.read_ahead({p0: 27, p1: 29})
        finally:
            await reader.stop()
        return holes, again, ahead

    holes, again, ahead = asyncio.run(scenario())
    assert sorted(holes) == [(p0, o, b"m%d" % (2 * o)) for o in range(10, 20)] + [
        (p1, o, b"m%d" % (2 * o + 1)) for o in range(3)
    ]
    assert sorted(again) == [(p0, 12, b"m24"), (p0, 13, b"m26")]
    assert sorted(ahead) == [(p0, 27, b"m54"), (p0, 28, b"m56"), (p0, 29, b"m58"), (p1, 29, b"m59")]
