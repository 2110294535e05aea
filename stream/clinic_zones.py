"""Clinic time zones on Kafka: the compacted, single-partition ``sledfleet.clinics`` topic.

Key ``clinic_id``, value ``{"v", "clinic_id", "time_zone", "updated_at_ns"}`` (JSON). The
registry (``sledfleet.clinics.time_zone``) is the source of truth; ``sledfleet db
add-clinic|set-clinic-tz`` write the database first, then publish here, and every stream
worker reads the whole topic (stream/app/clinics.py). ``updated_at_ns`` is the database's
time of the change: of two values for one clinic, the later change wins, whatever order
they reached Kafka in. A tombstone (no value) forgets the clinic (→ UTC).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any, TypedDict

from edge import contract
from edge.contract import ContractError, check_id
from edge.settings import KafkaSettings
from stream.records import RECORD_VERSION
from stream.zones import check_zone

log = logging.getLogger(__name__)


class ClinicZone(TypedDict):
    v: int
    clinic_id: str
    time_zone: str  # IANA name, e.g. "Australia/Sydney"
    updated_at_ns: int


def build(clinic_id: str, time_zone: str, updated_at_ns: int) -> ClinicZone:
    """The record for a clinic; raises ValueError (ContractError) on a bad id or zone."""
    check_id("clinic_id", clinic_id)
    check_zone(time_zone)
    return {
        "v": RECORD_VERSION,
        "clinic_id": clinic_id,
        "time_zone": time_zone,
        "updated_at_ns": int(updated_at_ns),
    }


def parse(key: bytes | None, value: bytes) -> ClinicZone:
    """Decode and check one message of the topic; raises ContractError with a reason."""
    record: Any = contract.decode(value)
    if not isinstance(record, dict):
        raise ContractError("bad_field", "clinic zone record must be an object")
    if record.get("v") != RECORD_VERSION:
        raise ContractError(
            "bad_version", f"unsupported clinic zone record version {record.get('v')!r}"
        )
    clinic_id = check_id("clinic_id", record.get("clinic_id"))
    if key is not None and key != clinic_id.encode():
        raise ContractError("bad_key", f"key {key[:80]!r} is not the record's clinic_id")
    updated = record.get("updated_at_ns")
    if not isinstance(updated, int) or isinstance(updated, bool) or updated < 0:
        raise ContractError("bad_field", "updated_at_ns must be a non-negative integer")
    try:
        zone = check_zone(record.get("time_zone"))
    except ValueError as exc:
        raise ContractError("bad_field", str(exc)) from exc
    return {
        "v": RECORD_VERSION,
        "clinic_id": clinic_id,
        "time_zone": zone,
        "updated_at_ns": updated,
    }


def publish(records: Iterable[ClinicZone], kafka: KafkaSettings, timeout_s: float = 30.0) -> int:
    """Send each record keyed by clinic_id; returns how many Kafka acknowledged."""
    from kafka import KafkaProducer

    producer = KafkaProducer(
        bootstrap_servers=kafka.servers,
        acks="all",
        client_id="sledfleet-clinics",
        **kafka.kafka_python_auth(),
    )
    topic = kafka.topic_prefix + contract.KAFKA_CLINICS
    try:
        futures = [
            producer.send(topic, key=r["clinic_id"].encode(), value=contract.encode(r))
            for r in records
        ]
        for f in futures:
            meta = f.get(timeout=timeout_s)
            log.info("clinic zone -> %s[%d]@%d", topic, meta.partition, meta.offset)
        return len(futures)
    finally:
        producer.close(timeout=timeout_s)
