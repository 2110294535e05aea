"""The clinic → IANA time zone directory of a stream worker, fed by ``sledfleet.clinics``.

Every worker reads the whole compacted single-partition topic (stream/clinic_zones.py)
with its own group-less aiokafka consumer at the configured bootstrap
(``KafkaSettings.bootstrap``), and catches up to the topic's end before each patient
batch and tick (:meth:`ClinicDirectory.refresh`): one ListOffsets round trip when
nothing changed. Of two values for one clinic the later ``updated_at_ns`` wins.

A clinic the topic does not name — never configured, or its record not published yet —
is on ``UTC`` (the registry's default too). When its zone arrives later, the patient
agent switches each patient state to it, which re-buckets that patient's history and
re-emits the adherence weeks that change (stream.core.adherence.PatientTracker.set_zone):
results end up the same as if the zone had been known from the start.

Bad messages are returned by ``refresh`` for the caller to dead-letter (and are skipped).
"""

from __future__ import annotations

import logging
from typing import Any, Final

from edge.contract import ContractError
from stream.clinic_zones import ClinicZone, parse
from stream.zones import UTC_NAME

log = logging.getLogger(__name__)

FETCH_TIMEOUT_MS: Final = 500
REFRESH_TIMEOUT_S: Final = 30.0
"""A refresh that cannot reach the topic's end in this long raises (infrastructure error)."""

BadMessage = tuple[bytes | None, ContractError]


class ClinicDirectory:
    def __init__(
        self, bootstrap: list[str], topic: str, auth: dict[str, Any] | None = None
    ) -> None:
        self.bootstrap = bootstrap
        self.auth = dict(auth or {})  # KafkaSettings.aiokafka_auth(): SASL user, TLS
        self.topic = topic
        self.zones: dict[str, ClinicZone] = {}
        self.read = 0  # messages read so far (all, good or bad)
        self._consumer: Any = None
        self._tp: Any = None

    def zone_of(self, clinic_id: str) -> str:
        """The clinic's IANA zone name; ``UTC`` for a clinic the topic does not name."""
        z = self.zones.get(clinic_id)
        return UTC_NAME if z is None else z["time_zone"]

    def apply(self, key: bytes | None, value: bytes | None) -> BadMessage | None:
        """Fold one message into the directory (pure); returns it with the error if bad."""
        self.read += 1
        if value is None:  # tombstone: the clinic is forgotten
            if key is not None:
                self.zones.pop(key.decode(errors="replace"), None)
            return None
        try:
            record = parse(key, value)
        except ContractError as err:
            return value, err
        old = self.zones.get(record["clinic_id"])
        if old is None or record["updated_at_ns"] >= old["updated_at_ns"]:
            self.zones[record["clinic_id"]] = record
        return None

    async def _start(self) -> Any:
        from aiokafka import AIOKafkaConsumer, TopicPartition

        if self._consumer is None:
            consumer = AIOKafkaConsumer(
                bootstrap_servers=self.bootstrap,
                group_id=None,
                enable_auto_commit=False,
                auto_offset_reset="earliest",
                client_id="sledfleet-clinics",
                **self.auth,
            )
            await consumer.start()
            self._tp = TopicPartition(self.topic, 0)
            consumer.assign([self._tp])
            await consumer.seek_to_beginning(self._tp)
            self._consumer = consumer
        return self._consumer

    async def refresh(self) -> list[BadMessage]:
        """Read the topic up to its current end; returns the bad messages met."""
        import asyncio

        consumer = await self._start()
        tp = self._tp
        end = (await consumer.end_offsets([tp]))[tp]
        bad: list[BadMessage] = []
        loop = asyncio.get_running_loop()
        deadline = loop.time() + REFRESH_TIMEOUT_S
        while await consumer.position(tp) < end:
            if loop.time() > deadline:
                raise TimeoutError(f"could not read {self.topic} to offset {end}")
            batches = await consumer.getmany(tp, timeout_ms=FETCH_TIMEOUT_MS)
            for message in batches.get(tp, ()):
                got = self.apply(message.key, message.value)
                if got is not None:
                    bad.append(got)
        for _value, err in bad:
            log.warning("bad clinic zone record on %s: %s %s", self.topic, err.reason, err.detail)
        return bad

    async def close(self) -> None:
        if self._consumer is not None:
            consumer, self._consumer = self._consumer, None
            await consumer.stop()
