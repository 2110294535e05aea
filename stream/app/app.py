"""``create_app``: the Faust app — topics, tables, agents and the event-time tick."""

from __future__ import annotations

import logging
import os
import socket
import time
from dataclasses import asdict
from typing import Any

import faust
from kafka import KafkaConsumer
from kafka.admin import KafkaAdminClient
from kafka.errors import for_code

from edge import contract
from edge.kafka_login import check as check_login
from edge.settings import KafkaSettings, load
from stream.app import codecs
from stream.app.agents import Plumbing, TopicNames
from stream.app.clinics import ClinicDirectory
from stream.app.faust_port import broker_credentials, check_version, harden_web
from stream.app.machines import MachineAgent, Timing
from stream.app.metrics import WorkerMetrics
from stream.app.metrics import page as metrics_page
from stream.app.patients import PatientAgent
from stream.app.settings import StreamSettings
from stream.app.watchdog import EXIT_REBALANCE_STUCK, RebalanceWatch
from stream.app.web import web_options
from stream.core.adherence import PatientTracker
from stream.core.processor import MachineProcessor
from stream.core.settings import CoreSettings
from stream.topics import TOPIC_ALREADY_EXISTS

log = logging.getLogger(__name__)


def exit_stuck(lasted_s: float) -> None:
    """Leave a rebalance Faust does not finish: at once, like the kill -9 the pipeline is
    scored through (state and offsets are in Kafka); a supervisor restarts the worker."""
    log.error(
        "rebalance stuck for %.0f s (over SLEDFLEET_STREAM_REBALANCE_STUCK_S): exiting with "
        "status %d so the worker is restarted; nothing is lost (at-least-once, idempotent "
        "outputs)",
        lasted_s,
        EXIT_REBALANCE_STUCK,
    )
    logging.shutdown()
    os._exit(EXIT_REBALANCE_STUCK)


PROCESSING_GUARANTEES = ("at_least_once",)
"""Only at-least-once: the adapter's own produce calls are not transactional, and its
outputs are idempotent by natural key (see ``stream.app.agents``)."""


def topic_names(kafka: KafkaSettings, app_id: str) -> TopicNames:
    p = kafka.topic_prefix
    return TopicNames(
        machines=p + contract.KAFKA_TELEMETRY,
        events=p + contract.KAFKA_EVENTS,
        state=p + contract.KAFKA_STATE,
        prescriptions=p + contract.KAFKA_PRESCRIPTIONS,
        sessions=p + contract.KAFKA_SESSIONS,
        deadletter=p + contract.KAFKA_DEADLETTER,
        sessions_by_patient=f"{app_id}-sessions-by-patient",
        outputs={kind: p + name for kind, name in codecs.OUTPUT_TOPICS.items()},
    )


def effective_app_id(settings: StreamSettings, kafka: KafkaSettings) -> str:
    """The Faust app id (consumer group, changelog names): prefixed like every topic."""
    return f"{kafka.topic_prefix}{settings.app_id}"


def wait_for_partitions(
    kafka: KafkaSettings, topics: list[str], timeout_s: float
) -> dict[str, int]:
    """Partition counts of ``topics``, waiting until all exist (``sledfleet topics``
    creates them; the broker does not auto-create)."""
    consumer = KafkaConsumer(
        bootstrap_servers=kafka.servers,
        client_id="sledfleet-stream-meta",
        **kafka.kafka_python_auth(),
    )
    deadline = time.monotonic() + timeout_s
    try:
        while True:
            consumer.topics()  # refresh metadata
            counts = {t: consumer.partitions_for_topic(t) for t in topics}
            missing = [t for t, parts in counts.items() if not parts]
            if not missing:
                return {t: len(parts) for t, parts in counts.items() if parts}
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"Kafka topics missing after {timeout_s:.0f} s: {', '.join(missing)} "
                    "(run `sledfleet topics create`)"
                )
            log.info("waiting for Kafka topics: %s", ", ".join(missing))
            time.sleep(1.0)
    finally:
        consumer.close()


def ensure_internal_topic(kafka: KafkaSettings, name: str, partitions: int) -> None:
    """Create the internal re-keying topic if missing (idempotent)."""
    admin = KafkaAdminClient(
        bootstrap_servers=kafka.servers, client_id="sledfleet-stream", **kafka.kafka_python_auth()
    )
    try:
        result = admin.create_topics(
            {name: {"num_partitions": partitions, "replication_factor": 1}},
            timeout_ms=30_000,
            raise_errors=False,
        )
        for topic in result["topics"]:
            code = topic["error_code"]
            if code not in (0, TOPIC_ALREADY_EXISTS):
                raise for_code(code)(f"{topic['name']}: {topic.get('error_message')}")
    finally:
        admin.close()


def free_port(host: str) -> int:
    """A currently free TCP port (Faust refuses port 0)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def create_app(
    settings: StreamSettings | None = None,
    kafka: KafkaSettings | None = None,
    core: CoreSettings | None = None,
) -> Any:
    """Build the Faust app. Blocks until the input topics exist (their partition counts
    size the tables)."""
    check_version()
    settings = settings or load(StreamSettings)
    kafka = kafka or load(KafkaSettings)
    core = core or load(CoreSettings)
    if settings.processing_guarantee not in PROCESSING_GUARANTEES:
        raise ValueError(
            f"processing guarantee {settings.processing_guarantee!r} not supported; "
            f"use one of {PROCESSING_GUARANTEES}"
        )
    app_id = effective_app_id(settings, kafka)
    names = topic_names(kafka, app_id)
    check_login(kafka)  # a refused Kafka login: one ConfigError line, not endless retries
    counts = wait_for_partitions(
        kafka,
        [
            names.machines,
            names.events,
            names.state,
            names.prescriptions,
            names.sessions,
            names.deadletter,
            kafka.topic_prefix + contract.KAFKA_CLINICS,
            *names.outputs.values(),
        ],
        settings.topic_wait_s,
    )
    machine_partitions = counts[names.machines]
    patient_partitions = counts[names.prescriptions]
    ensure_internal_topic(kafka, names.sessions_by_patient, patient_partitions)

    app: Any = faust.App(
        app_id,
        broker=[f"kafka://{server}" for server in kafka.servers],
        store="memory://",
        datadir=settings.data_dir,
        autodiscover=False,
        topic_partitions=machine_partitions,
        topic_replication_factor=1,
        topic_allow_declare=True,
        processing_guarantee="at_least_once",
        broker_session_timeout=settings.session_timeout_s,
        broker_heartbeat_interval=settings.heartbeat_interval_s,
        broker_rebalance_timeout=settings.rebalance_timeout_s,
        broker_commit_interval=settings.commit_interval_s,
        consumer_auto_offset_reset="earliest",
        consumer_max_fetch_size=settings.fetch_max_bytes,
        broker_max_poll_records=settings.max_poll_records,
        stream_buffer_maxsize=settings.buffer_max,
        stream_recovery_delay=0.0,
        table_standby_replicas=0,
        web_enabled=settings.web_enabled,
        **web_options(settings.web_host, settings.web_port or free_port(settings.web_host)),
        web_in_thread=False,
        worker_redirect_stdouts=False,
        **broker_credentials(kafka),
    )

    harden_web(app)  # loopback by default, no /table or /router pages (docs/security.md)
    raw: dict[str, Any] = {
        "key_type": bytes,
        "value_type": bytes,
        "key_serializer": "raw",
        "value_serializer": "raw",
    }
    machine_input = app.topic(names.machines, **raw)
    sessions_input = app.topic(names.sessions, **raw)
    patient_input = app.topic(names.prescriptions, names.sessions_by_patient, **raw)

    def table(name: str, partitions: int, help_text: str) -> Any:
        return app.Table(
            name,
            partitions=partitions,
            help=help_text,
        )

    machines = table("machines", machine_partitions, "per machine: core state and timeline (JSON)")
    patients = table("patients", patient_partitions, "per-patient adherence state (JSON)")

    plumbing = Plumbing(app, names, settings.historical_alert_age_s)
    machine_agent = MachineAgent(
        plumbing,
        machines,
        MachineProcessor(core),
        Timing(
            tick_event_ns=int(settings.tick_event_s * 1e9),
            reorder_grace_ns=int(settings.reorder_grace_s * 1e9),
            reorder_idle_s=settings.reorder_idle_s,
            stall_s=settings.stall_s,
        ),
        bootstrap=kafka.servers,
        validate=settings.validate_input,
        kafka_auth=kafka.aiokafka_auth(),
    )

    clinics = ClinicDirectory(
        kafka.servers, kafka.topic_prefix + contract.KAFKA_CLINICS, kafka.aiokafka_auth()
    )
    patient_agent = PatientAgent(
        plumbing, patients, PatientTracker(core), machine_agent.today_ns, clinics
    )
    app.sledfleet = plumbing
    take = settings.take_max, settings.take_within_s

    async def machine_stream(stream: Any) -> None:
        async for events in stream.take_events(*take):
            await plumbing.guard(machine_agent.on_batch(events))

    async def session_stream(stream: Any) -> None:
        async for events in stream.take_events(*take):
            await plumbing.guard(patient_agent.on_session_batch(events))

    async def patient_stream(stream: Any) -> None:
        async for events in stream.take_events(*take):
            await plumbing.guard(patient_agent.on_batch(events))

    watch = RebalanceWatch(settings.rebalance_stuck_s)

    async def idle_check() -> None:
        lasted = watch.observe(plumbing.port.rebalancing(), time.monotonic())
        if lasted is not None:
            exit_stuck(lasted)
        await machine_agent.on_idle_check()

    async def daily_tick() -> None:
        await patient_agent.on_tick()

    async def stats(web: Any, request: Any) -> Any:
        return web.json(asdict(plumbing.counters))

    async def consumer_state(web: Any, request: Any) -> Any:
        return web.json(plumbing.port.consumer_snapshot())

    async def tracebacks(web: Any, request: Any) -> Any:
        return web.text(app.agents.human_tracebacks())

    app.agent(machine_input, name="machine-agent")(machine_stream)
    app.agent(sessions_input, name="session-rekey-agent")(session_stream)
    app.agent(patient_input, name="patient-agent")(patient_stream)
    app.timer(settings.release_interval_s, name="idle-partitions")(idle_check)
    app.timer(settings.tick_interval_s, name="patient-tick")(daily_tick)
    metrics = WorkerMetrics(lambda: plumbing.counters, plumbing.port.lag)
    app.page("/metrics")(metrics_page(metrics))
    app.page("/sledfleet/stats/")(stats)
    app.page("/sledfleet/tracebacks/")(tracebacks)
    app.page("/sledfleet/consumer/")(consumer_state)

    async def close_side_readers(sender: Any, **kwargs: Any) -> None:
        await machine_agent.close()
        await clinics.close()

    app.on_before_shutdown.connect(close_side_readers)
    return app
