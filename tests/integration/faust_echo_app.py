"""A minimal Faust app for tests/integration/test_services.py: consumes one topic and
produces each value upper-cased to another, on the real Kafka.

Configured by environment (the test runs it as a subprocess):
ECHO_APP_ID, ECHO_IN, ECHO_OUT, ECHO_DATADIR, SLEDFLEET_KAFKA_BOOTSTRAP.
Run: python -m tests.integration.faust_echo_app worker -l info
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from typing import Any

import faust

BOOTSTRAP = os.environ.get("SLEDFLEET_KAFKA_BOOTSTRAP", "127.0.0.1:9092")

app: Any = faust.App(
    os.environ.get("ECHO_APP_ID", "sledfleet-echo"),
    broker=f"kafka://{BOOTSTRAP}",
    store="memory://",
    datadir=os.environ.get("ECHO_DATADIR", "/tmp/sledfleet-echo"),
    autodiscover=False,
    web_enabled=False,
    topic_disable_leader=True,
    topic_replication_factor=1,
    consumer_auto_offset_reset="earliest",
    broker_session_timeout=6.0,
    broker_heartbeat_interval=1.0,
    broker_commit_interval=0.5,
    worker_redirect_stdouts=False,
)

source = app.topic(os.environ.get("ECHO_IN", "echo-in"), value_serializer="raw")
sink = app.topic(os.environ.get("ECHO_OUT", "echo-out"), value_serializer="raw")


@app.agent(source)
async def echo(stream: AsyncIterator[bytes]) -> None:
    async for value in stream:
        await sink.send(value=value.upper())


if __name__ == "__main__":
    app.main()
