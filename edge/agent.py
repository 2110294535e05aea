"""The edge agent of one machine: framing → outbox → MQTT, birth/death, config, clock.

Two threads touch an agent, serialised by its lock: the source thread calls ``feed``
for every sample/event; a pump thread (``edge.fleet_runner``, one for any number of
agents) calls ``pump`` every ``pump_interval_s``. ``pump`` does, in order:

1. store buffered frames/events in the outbox (one transaction) with the next seqs;
2. apply new retained config messages (validated with ``contract.validate_config``);
3. delete acknowledged rows (PUBACK with a success reason code) in one transaction; in
   end-to-end mode (``delete_on=ack``, ``edge/acks.py``) a PUBACK only frees the in-flight
   slot and rows go when a bridge's ack says Kafka holds their seqs;
4. after a (re)connect: publish the ``online`` birth and mark every row then in the
   outbox, and not already in paho's hands, as *replayed*;
5. hand the next rows to paho, oldest first, keeping at most ``max_inflight`` unacked.

Rows paho already held when the connection dropped are re-sent by paho itself (same
packet id, DUP flag, original bytes). A row the broker rejected (reason code >= 0x80)
stays in the outbox and is re-sent after the next reconnect. In end-to-end mode the agent
re-sends instead: after a reconnect every unconfirmed row, oldest first (paho's queue is
dropped), and after ``ack_timeout_s`` without confirmation of the oldest row.
"""

from __future__ import annotations

import logging
import threading
import time
from importlib import metadata
from typing import Any, Final

from edge import contract
from edge.acks import DELETE_ON, ResendClock, parse_ack
from edge.agent_settings import EdgeSettings
from edge.clock import ClockOffsetEstimator
from edge.framing import Framer, Outgoing
from edge.mqtt_link import MqttLink, Will
from edge.outbox import NewRow, Outbox, replayed_bytes
from edge.samples import Sample, SourceItem
from edge.settings import MqttSettings

log = logging.getLogger(__name__)

STATE_SLOTS: Final = 2
"""In-flight slots kept free for state messages under a small broker Receive Maximum."""
RATE_MATCH_TOLERANCE: Final = 1e-6
"""Relative tolerance when a configured rate is checked against source rate / integer."""


def agent_version() -> str:
    try:
        return metadata.version("sledfleet")
    except metadata.PackageNotFoundError:
        return "0+unknown"


class ConfigRejected(ValueError):
    pass


def _resume_session(outbox: Outbox) -> tuple[str, int] | None:
    session_id = outbox.meta("session_id")
    return (str(session_id), int(outbox.meta("session_seen_ns", 0))) if session_id else None


class EdgeAgent:
    def __init__(
        self,
        settings: EdgeSettings,
        mqtt_settings: MqttSettings,
        source_rate_hz: float,
        live: bool = True,
    ) -> None:
        self.settings = settings
        self.live = live
        cid, mid = settings.clinic_id, settings.machine_id
        self.topics = {k: contract.mqtt_topic(cid, mid, k) for k in contract.MESSAGE_KINDS}
        if settings.delete_on not in DELETE_ON:
            raise ValueError(f"SLEDFLEET_EDGE_DELETE_ON must be one of {', '.join(DELETE_ON)}")
        self.end_to_end = settings.delete_on == "ack"
        self.ack_topic = contract.ack_topic(cid, mid)
        self.resend = ResendClock(
            settings.ack_timeout_s, settings.ack_timeout_max_s, settings.ack_hole_s
        )
        self.outbox = Outbox(
            settings.outbox_path(),
            settings.outbox_max_rows,
            settings.outbox_max_bytes,
            settings.outbox_synchronous,
        )
        self.framer = Framer(
            cid,
            mid,
            source_rate_hz,
            settings.frame_samples,
            next_seq=int(self.outbox.meta("next_seq", 0)),
            next_event_seq=int(self.outbox.meta("next_event_seq", 0)),
            gap_fill_max=settings.gap_fill_max,
            resume_session=_resume_session(self.outbox),
        )
        self.source_rate_hz = source_rate_hz
        self.clock = ClockOffsetEstimator()
        self._pending: list[Outgoing] = []
        self.config: dict[str, Any] | None = self.outbox.meta("config")
        self.config_error: str | None = None
        if self.config is not None:
            try:
                self._apply_config(self.config)
            except ConfigRejected as exc:
                log.warning("%s: stored config no longer applies: %s", mid, exc)
        self.link = MqttLink(
            mqtt_settings,
            settings.mqtt_client_id(),
            Will(self.topics["state"], contract.encode(self._death())),
            [self.topics["config"], *([self.ack_topic] if self.end_to_end else [])],
            settings.session_expiry_s,
            settings.reconnect_min_s,
            settings.reconnect_max_s,
            resend_on_reconnect=not self.end_to_end,
        )
        self.window = max(1, mqtt_settings.max_inflight)
        self._lock = threading.RLock()
        self._mid_row: dict[int, int] = {}
        self._handed: set[int] = set()
        self._cursor = 0  # highest row id handed to paho (end-to-end: since the last rewind)
        self._sent_max = 0  # highest row id handed to paho in this process
        self._confirmed_max = 0  # highest row id deleted on an end-to-end ack
        self._retry: set[int] = set()
        self._replay_upto = 0
        self._generation = 0
        self._birth_due = False
        self._last_state = 0.0
        self.published = 0
        self.acked = 0
        self.confirmed = 0
        """Rows deleted on an end-to-end ack (Kafka holds them)."""
        self.bad_acks = 0

    @property
    def machine_id(self) -> str:
        return self.settings.machine_id

    # --- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        self.link.start()

    def wait_connected(self, timeout_s: float) -> bool:
        return self.link.connected.wait(timeout_s)

    def stop(self, drain_timeout_s: float = 2.0) -> None:
        """Frame what is buffered, try to deliver it, publish ``offline`` and disconnect."""
        self.finish()
        self.drain(drain_timeout_s)
        offline = self._death()
        offline["ts_ns"] = time.time_ns()
        self.link.stop(Will(self.topics["state"], contract.encode(offline)))
        with self._lock:
            self.outbox.close()

    # --- source thread -------------------------------------------------------------------------

    def feed(self, item: SourceItem) -> None:
        if self.live and isinstance(item, Sample):
            self.clock.observe(item.t_ns, time.time_ns())
        with self._lock:
            self._pending += self.framer.feed(item)
            if len(self._pending) >= self.settings.store_batch:
                self._store()

    def feed_many(self, items: list[SourceItem]) -> None:
        """``feed`` for a batch of a replay source (one lock round trip)."""
        with self._lock:
            framer_feed = self.framer.feed
            for item in items:
                self._pending += framer_feed(item)
            if len(self._pending) >= self.settings.store_batch:
                self._store()

    def finish(self) -> None:
        """The source ended: frame the tail and store it."""
        with self._lock:
            self._pending += self.framer.flush()
            self._store()

    def backlog(self) -> int:
        """Messages not yet handed to MQTT, stored or still buffered for the next store.

        A replay source waits while this is high. Buffered messages count: they reach the
        outbox at the next store (up to ``store_batch`` at once), so leaving them out let a
        fast source stack a whole store batch on top of the bound and drop frames.
        """
        with self._lock:
            return self.outbox.rows + len(self._pending) - len(self._handed)

    # --- pump thread ---------------------------------------------------------------------------

    def pump(self) -> None:
        with self._lock:
            self._store()
            self._take_messages()
            self._take_acks()
            self._check_connection()
            if self.link.connected.is_set():
                if self.end_to_end:
                    self._resend_if_due()
                self._publish_due()
                interval = self.settings.state_interval_s
                if self._birth_due or time.monotonic() - self._last_state >= interval:
                    self.publish_state()

    def drain(self, timeout_s: float) -> bool:
        """Pump until every stored row is acknowledged or the timeout passes."""
        deadline = time.monotonic() + timeout_s
        while True:
            self.pump()
            if self.outbox.stats().rows == 0 and not self._pending:
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(self.settings.pump_interval_s)

    def _check_connection(self) -> None:
        """On a new connection, everything stored so far becomes backlog: sent as replayed."""
        gen = self.link.generation
        if gen != self._generation:
            self._generation = gen
            self._replay_upto = self.outbox.max_id()
            self._birth_due = True
            if self.end_to_end:  # the link dropped paho's queue: re-send all, oldest first
                self.link.take_acks()  # PUBACKs of the old connection
                self._mid_row.clear()
                self._handed.clear()
                self._retry.clear()
                self._rewind()

    def _rewind(self) -> None:
        self._cursor = 0
        self._replay_upto = max(self._replay_upto, self._sent_max)
        self.resend.rewound()

    def _resend_if_due(self) -> None:
        oldest = self.outbox.min_id()
        if oldest is not None and oldest > self._cursor:
            oldest = None  # not sent since the last rewind: the cursor walk gets to it
        hole = oldest is not None and oldest < self._confirmed_max
        if self.resend.due(oldest, time.monotonic(), hole):
            log.warning(
                "%s: %s: sending unconfirmed rows again",
                self.machine_id,
                "a row older than confirmed ones has no end-to-end ack"
                if hole
                else "no end-to-end ack in time",
            )
            self._rewind()

    def _store(self) -> None:
        if not self._pending:
            return
        self._check_connection()  # rows stored from now on, while connected, are live
        rows = [
            NewRow(
                o.kind,
                self.topics[o.kind],
                contract.encode(o.payload),
                1,
                False,
                o.samples,
                o.payload.get("seq"),
            )
            for o in self._pending
        ]
        self._pending = []
        dropped = self.outbox.store(
            rows,
            protect_upto=0 if self.end_to_end else self._cursor,
            protect=self._handed if self.end_to_end else (),
            next_seq=self.framer.next_seq,
            next_event_seq=self.framer.next_event_seq,
            session_id=self.framer.session_id,
            session_seen_ns=self.framer.seen_ns,
        )
        if dropped:
            self._birth_due = True

    def _take_acks(self) -> None:
        done = []
        for mid, ok in self.link.take_acks():
            row = self._mid_row.pop(mid, None)
            if row is None:
                continue  # a state message
            self._handed.discard(row)
            if ok:
                done.append(row)
            elif not self.end_to_end:  # end to end: unconfirmed rows are re-sent anyway
                self._retry.add(row)
        if self.end_to_end:
            self.acked += len(done)  # the broker has them; the outbox keeps them until Kafka does
        elif done:
            self.outbox.delete(done)
            self.acked += len(done)

    def _take_e2e_acks(self, raws: list[bytes]) -> None:
        """Delete the rows whose seqs a bridge says Kafka holds (one transaction)."""
        acked: list[tuple[str, list[tuple[int, int]]]] = []
        for raw in raws:
            try:
                acked += parse_ack(raw, self.settings.clinic_id, self.settings.machine_id)
            except contract.ContractError as exc:
                self.bad_acks += 1
                log.warning("%s: ack ignored: %s", self.machine_id, exc)
        if acked:
            deleted, top = self.outbox.delete_acked(acked, self._sent_max)
            self.confirmed += deleted
            self._confirmed_max = max(self._confirmed_max, top)

    def _publish_due(self) -> None:
        # the broker's Receive Maximum bounds what may be unacknowledged (state messages
        # take a slot or two): paho does not enforce it itself
        window = min(self.window, max(1, self.link.receive_maximum - STATE_SLOTS))
        room = window - len(self._handed)
        if room <= 0:
            return
        rows = []
        if self._retry and self._birth_due:  # rejected rows go again after a reconnect
            rows = self.outbox.by_ids(self._retry)[:room]
            self._retry.difference_update(r.id for r in rows)
        rows += self.outbox.after(self._cursor, room - len(rows))
        limit: int | None = None
        if self.end_to_end:
            if self.link.generation != self._generation:
                return  # reconnected since this pump's check: the next pump rewinds first
            # a new row only within max_unconfirmed_rows of the oldest unconfirmed one: a
            # frame a killed or slow bridge holds is never overtaken by more than that (the
            # stream's reorder window), however many of the rows after it are confirmed
            oldest = self.outbox.min_id()
            if oldest is not None:
                limit = oldest + self.settings.max_unconfirmed_rows
        for i, row in enumerate(rows):
            if row.id in self._handed:  # after a rewind: paho still holds it
                self._cursor = max(self._cursor, row.id)
                continue
            if row.id > self._sent_max and limit is not None and row.id >= limit:
                break
            payload = replayed_bytes(row.payload) if row.id <= self._replay_upto else row.payload
            mid = self.link.publish(row.topic, payload, row.qos, row.retain)
            if mid is None:  # paho refused (queue full): try again on a later pump
                self._retry.update(r.id for r in rows[i:] if r.id <= self._cursor)
                break
            self._mid_row[mid] = row.id
            self._handed.add(row.id)
            self._cursor = max(self._cursor, row.id)
            self._sent_max = max(self._sent_max, row.id)
            self.published += 1
            if self.end_to_end:
                self.resend.sent(row.id, time.monotonic())

    # --- state (birth / death) -------------------------------------------------------------------

    def _death(self) -> dict[str, Any]:
        return {
            "v": contract.SCHEMA_VERSION,
            "machine_id": self.settings.machine_id,
            "clinic_id": self.settings.clinic_id,
            "status": "offline",
        }

    def birth(self) -> dict[str, Any]:
        """The retained ``online`` state: what the platform knows about this agent."""
        ob = self.outbox.stats()
        fs = self.framer.stats
        return {
            "v": contract.SCHEMA_VERSION,
            "machine_id": self.settings.machine_id,
            "clinic_id": self.settings.clinic_id,
            "status": "online",
            "ts_ns": time.time_ns(),
            "agent_version": agent_version(),
            "firmware": self.settings.firmware,
            "rate_hz": self.framer.rate_hz,
            "frame_samples": self.framer.frame_samples,
            "calibration": (self.config or {}).get("calibration"),
            "config_version": (self.config or {}).get("config_version"),
            "config_error": self.config_error,
            "clock_offset_ms": self.clock.offset_ms if self.live else None,
            "next_seq": self.framer.next_seq,
            "outbox": ob.as_dict(),
            "outbox_dropped": ob.dropped_frames,
            "framing": {
                "runt_samples": fs.runt_samples,
                "filled_samples": fs.filled_samples,
                "out_of_range_values": fs.out_of_range_values,
                "clock_jumps": fs.clock_jumps,
                "rejected_events": fs.rejected_events,
            },
        }

    def publish_state(self) -> None:
        payload = self.birth()
        contract.validate_state(payload)
        if self.link.publish(self.topics["state"], contract.encode(payload), 1, True) is not None:
            self._birth_due = False
            self._last_state = time.monotonic()

    # --- config -----------------------------------------------------------------------------

    def _take_messages(self) -> None:
        acks: list[bytes] = []
        for topic, raw in self.link.take_messages():
            if not raw:
                continue  # a retained message cleared
            if topic == self.ack_topic:
                if self.end_to_end:
                    acks.append(raw)
            elif topic == self.topics["config"]:
                self._take_config(topic, raw)
        if acks:
            self._take_e2e_acks(acks)

    def _take_config(self, topic: str, raw: bytes) -> None:
        try:
            _, cfg = contract.validate_message(topic, raw)
        except contract.ContractError as exc:
            self.config_error = f"{exc.reason}: {exc.detail}"[:200]
            log.warning("%s: config rejected: %s", self.machine_id, self.config_error)
            self._birth_due = True
            return
        applied = (self.config or {}).get("config_version")
        if applied is not None and cfg["config_version"] <= applied:
            return
        try:
            self._apply_config(cfg)
        except ConfigRejected as exc:
            self.config_error = f"config {cfg['config_version']}: {exc}"[:200]
            log.warning("%s: config rejected: %s", self.machine_id, self.config_error)
        else:
            self.config, self.config_error = cfg, None
            self.outbox.set_meta(config=cfg)
            log.info("%s: applied config version %s", self.machine_id, cfg["config_version"])
        self._birth_due = True

    def _apply_config(self, cfg: dict[str, Any]) -> None:
        """Apply rate and frame size; all or nothing. Raises ConfigRejected."""
        decimation = 1
        rate = cfg.get("rate_hz")
        if rate is not None:
            ratio = self.source_rate_hz / float(rate)
            decimation = round(ratio)
            if decimation < 1 or abs(ratio - decimation) > RATE_MATCH_TOLERANCE * ratio:
                raise ConfigRejected(
                    f"rate_hz {rate} is not the source rate {self.source_rate_hz} "
                    "divided by an integer"
                )
        if self.framer.rate_hz != self.source_rate_hz / decimation:
            self._pending += self.framer.set_rate(self.source_rate_hz, decimation)
        if "frame_samples" in cfg:
            self._pending += self.framer.set_frame_samples(int(cfg["frame_samples"]))
