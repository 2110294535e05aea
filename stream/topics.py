"""``sledfleet topics create``: every Kafka topic of the contract, created deliberately.

The broker never auto-creates topics; this module owns their partition counts,
retention and cleanup policies. Topics keyed by machine share one partition
count so stream processors can join them partition by partition
(co-partitioning), and so do the topics keyed by patient. ``state``,
``prescriptions`` and ``clinics`` are compacted: the latest value per key is what readers
need (``clinics`` has one partition: every worker reads all of it).
The dead-letter topic accepts 16 MiB records so a 10 MB bad payload still fits
whole. ``ensure_topics`` is idempotent: existing topics are left as they are.
"""

from __future__ import annotations

import argparse
import logging
from dataclasses import dataclass
from typing import Any, Final

from edge import contract
from edge.kafka_login import check as check_login
from edge.settings import KafkaSettings, env, load

log = logging.getLogger(__name__)

DAY_MS: Final = 24 * 3600 * 1000
DEADLETTER_MAX_MESSAGE_BYTES: Final = 16 * 1024 * 1024
"""Dead letters carry the original payload base64-encoded; 16 MiB fits a 10 MB payload whole."""
TOPIC_ALREADY_EXISTS: Final = 36
CREATE_TIMEOUT_MS: Final = 30_000


@dataclass(frozen=True, slots=True)
class TopicsSettings:
    partitions: int = env("SLEDFLEET_TOPICS_PARTITIONS", 12)
    """Partitions of every high-volume topic (keyed by machine or patient): the most
    bridge/stream/sink consumers one consumer group can spread over."""
    low_volume_partitions: int = env("SLEDFLEET_TOPICS_LOW_VOLUME_PARTITIONS", 3)
    """Partitions of alerts and dead letters: operators' topics, a few messages a minute."""
    replication_factor: int = env("SLEDFLEET_TOPICS_REPLICATION_FACTOR", 1)
    """1 on the single-node dev broker; 3 in production."""
    telemetry_retention_days: int = env("SLEDFLEET_TOPICS_TELEMETRY_RETENTION_DAYS", 7)
    """Raw frames: a week of replay is enough; the database keeps the history."""
    retention_days: int = env("SLEDFLEET_TOPICS_RETENTION_DAYS", 30)
    """Everything else that is not compacted (events, derived results, alerts, dead letters)."""


@dataclass(frozen=True, slots=True)
class TopicSpec:
    name: str
    partitions: int
    configs: dict[str, str]


def topic_specs(settings: TopicsSettings, prefix: str = "") -> list[TopicSpec]:
    """The contract's topics with their partitions and configs (pure, unit-tested)."""
    hot = settings.partitions
    low = settings.low_volume_partitions

    def delete(days: int) -> dict[str, str]:
        return {"cleanup.policy": "delete", "retention.ms": str(days * DAY_MS)}

    compact = {"cleanup.policy": "compact", "min.cleanable.dirty.ratio": "0.1"}
    standard = delete(settings.retention_days)
    specs = [
        # keyed by machine_id (co-partitioned)
        TopicSpec(contract.KAFKA_TELEMETRY, hot, delete(settings.telemetry_retention_days)),
        TopicSpec(contract.KAFKA_EVENTS, hot, standard),
        TopicSpec(contract.KAFKA_STATE, hot, compact),
        TopicSpec(contract.KAFKA_REPS, hot, standard),
        TopicSpec(contract.KAFKA_SETS, hot, standard),
        TopicSpec(contract.KAFKA_SESSIONS, hot, standard),
        TopicSpec(contract.KAFKA_MACHINE_STATUS, hot, standard),
        # keyed by patient_id (co-partitioned)
        TopicSpec(contract.KAFKA_PRESCRIPTIONS, hot, compact),
        TopicSpec(contract.KAFKA_ADHERENCE, hot, standard),
        # clinic → IANA time zone, read whole by every stream worker (stream/app/clinics.py)
        TopicSpec(contract.KAFKA_CLINICS, 1, compact),
        # operators' topics
        TopicSpec(contract.KAFKA_ALERTS, low, standard),
        TopicSpec(
            contract.KAFKA_DEADLETTER,
            low,
            {**standard, "max.message.bytes": str(DEADLETTER_MAX_MESSAGE_BYTES)},
        ),
    ]
    return [TopicSpec(prefix + s.name, s.partitions, s.configs) for s in specs]


def ensure_topics(
    kafka: KafkaSettings, settings: TopicsSettings | None = None
) -> tuple[list[str], list[str]]:
    """Create every missing contract topic; returns (created, already existing) names."""
    from kafka.admin import KafkaAdminClient
    from kafka.errors import for_code

    settings = settings or TopicsSettings()
    specs = topic_specs(settings, kafka.topic_prefix)
    admin = KafkaAdminClient(
        bootstrap_servers=kafka.servers,
        client_id="sledfleet-topics",
        **kafka.kafka_python_auth(),
    )
    try:
        existing = set(admin.list_topics())
        wanted = [s for s in specs if s.name not in existing]
        created: list[str] = []
        if wanted:
            request: dict[str, Any] = {
                s.name: {
                    "num_partitions": s.partitions,
                    "replication_factor": settings.replication_factor,
                    "configs": s.configs,
                }
                for s in wanted
            }
            result = admin.create_topics(request, timeout_ms=CREATE_TIMEOUT_MS, raise_errors=False)
            for topic in result["topics"]:
                code = topic["error_code"]
                if code == 0:
                    created.append(topic["name"])
                elif code != TOPIC_ALREADY_EXISTS:  # lost a race with another creator: fine
                    raise for_code(code)(f"{topic['name']}: {topic.get('error_message')}")
            if created:
                admin.wait_for_topics(created, timeout_ms=CREATE_TIMEOUT_MS)
        present = [s.name for s in specs if s.name not in created]
    finally:
        admin.close()
    for name in created:
        log.info("created topic %s", name)
    return created, present


def register(subparsers: Any, name: str, help_text: str) -> None:
    parser = subparsers.add_parser(name, help=help_text)
    sub = parser.add_subparsers(dest="topics_command", metavar="ACTION", required=True)
    create = sub.add_parser("create", help="create missing topics (existing ones are kept)")
    create.add_argument("--prefix", help="overrides SLEDFLEET_KAFKA_TOPIC_PREFIX")
    create.add_argument(
        "--acls", action="store_true", help="then the per-service ACLs (secure Kafka, as admin)"
    )
    create.set_defaults(func=_create)
    show = sub.add_parser("list", help="print the topics this project defines")
    show.add_argument("--prefix", help="overrides SLEDFLEET_KAFKA_TOPIC_PREFIX")
    show.set_defaults(func=_list)
    from stream import kafka_acls

    kafka_acls.register(sub)


def _kafka(args: argparse.Namespace) -> KafkaSettings:
    prefix = getattr(args, "prefix", None)
    return load(KafkaSettings) if prefix is None else load(KafkaSettings, topic_prefix=prefix)


def _create(args: argparse.Namespace) -> int:
    if not getattr(args, "verbose", False):
        logging.getLogger("kafka").setLevel(logging.WARNING)
    kafka = _kafka(args)
    check_login(kafka)  # a refused login: one ConfigError line, not a 30 s bootstrap timeout
    created, present = ensure_topics(kafka, load(TopicsSettings))
    print(f"created {len(created)} topics, {len(present)} already existed")
    for name in created:
        print(f"  + {name}")
    if getattr(args, "acls", False):
        from stream import kafka_acls

        args.print = False
        return kafka_acls.run(args)
    return 0


def _list(args: argparse.Namespace) -> int:
    for spec in topic_specs(load(TopicsSettings), _kafka(args).topic_prefix):
        configs = ", ".join(f"{k}={v}" for k, v in sorted(spec.configs.items()))
        print(f"{spec.name}  partitions={spec.partitions}  {configs}")
    return 0
