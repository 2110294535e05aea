"""Run one or many edge agents in one process.

Each machine gets its own ``EdgeAgent`` (own MQTT client id ``edge-<machine_id>``,
own persistent session, own outbox file) fed by its own ``SensorSource`` in its own
thread. One pump thread (the caller's) services every agent each
``pump_interval_s``: it stores framed data, applies acks and configs and publishes.
``sledfleet edge run`` uses it for one machine; the live simulator for many.

A source that is not live (``source.live`` is False: CSV replay, benchmarks) is
paused while its agent has more than ``backpressure_rows`` unsent rows, so a fast
replay fills the outbox no faster than MQTT drains it instead of hitting the bound.

A source may say more about its device (the simulator's do, ``edge.simulator.source``):

- ``reported_clock_offset_ms``: the device clock's offset as its agent knows it; the
  agent reports it in its state (``clock_offset_ms``) instead of estimating it;
- ``connect_gate`` (a ``threading.Event``): the machine's uplink is down until it is set.
  Its agent starts (connects) only then; meanwhile the source fills the outbox without
  backpressure, and everything stored before the connection is sent marked replayed.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from edge import paho_fds
from edge.agent import EdgeAgent
from edge.agent_settings import EdgeSettings
from edge.clock import ClockOffsetEstimator
from edge.samples import SensorSource, SourceItem
from edge.settings import MqttSettings

log = logging.getLogger(__name__)

SOURCE_JOIN_TIMEOUT_S = 5.0
REPLAY_CHUNK = 250
"""Items a non-live source hands to its agent at once (one lock round trip)."""


@dataclass(slots=True)
class FleetStats:
    machines: int = 0
    frames: int = 0
    events: int = 0
    samples: int = 0
    published: int = 0
    acked: int = 0
    dropped_frames: int = 0
    undelivered_rows: int = 0
    deliver_s: float | None = None
    """Seconds from the sources' start until every row was acknowledged (exit_when_done)."""
    source_errors: list[str] = field(default_factory=list)


class ReportedOffset(ClockOffsetEstimator):
    """The offset a device knows (the simulator's clocks): reported as is."""

    def __init__(self, offset_ms: float) -> None:
        super().__init__()
        self._offset_ms = offset_ms

    def observe(self, device_ns: int, host_ns: int) -> None:
        return None

    @property
    def offset_ms(self) -> float | None:
        return round(self._offset_ms, 3)


def _make_agent(
    settings: EdgeSettings, mqtt_settings: MqttSettings, src: SensorSource
) -> EdgeAgent:
    offset = getattr(src, "reported_clock_offset_ms", None)
    live = bool(getattr(src, "live", True))
    # the agent reports clock_offset_ms only when it is live; a known offset is reported
    agent = EdgeAgent(settings, mqtt_settings, src.rate_hz, live=live or offset is not None)
    if offset is not None:
        agent.clock = ReportedOffset(float(offset))
    return agent


class FleetRunner:
    def __init__(
        self,
        machines: Sequence[tuple[EdgeSettings, SensorSource]],
        mqtt_settings: MqttSettings,
        exit_when_done: bool = True,
        drain_timeout_s: float = 10.0,
        mqtt_for: Callable[[EdgeSettings], MqttSettings] | None = None,
    ) -> None:
        """``mqtt_for`` gives each machine its own connection settings (secure mode: its
        own account on the TLS listener); without it every agent uses ``mqtt_settings``."""
        if not machines:
            raise ValueError("no machines to run")
        ids = [s.machine_id for s, _ in machines]
        if len(set(ids)) != len(ids):
            raise ValueError("machine ids must be unique (each is an MQTT client id)")
        paho_fds.raise_open_files_limit(len(machines))
        self.sources = [src for _, src in machines]
        self.agents = [
            _make_agent(s, mqtt_for(s) if mqtt_for else mqtt_settings, src) for s, src in machines
        ]
        self.paced = [bool(getattr(src, "live", True)) for src in self.sources]
        self.gates: list[threading.Event | None] = [
            getattr(src, "connect_gate", None) for src in self.sources
        ]
        self._started = [False] * len(machines)
        self._uplink = [threading.Event() for _ in machines]
        """Set by a gated machine's feed thread once everything taken before its gate
        opened is with its agent: the pump thread may connect it then."""
        self.settings = machines[0][0]
        self.exit_when_done = exit_when_done
        self.drain_timeout_s = drain_timeout_s
        self.stop_event = threading.Event()
        self._done = [threading.Event() for _ in machines]
        self._errors: list[str] = []
        self._started_at = 0.0
        self._delivered_at: float | None = None

    def stop(self) -> None:
        self.stop_event.set()

    def run(self) -> FleetStats:
        self._start_agents()
        deadline = time.monotonic() + self.settings.connect_wait_s
        for i, agent in enumerate(self.agents):
            if not self._started[i]:
                continue
            if not agent.wait_connected(max(0.0, deadline - time.monotonic())):
                log.warning("%s: not connected yet; buffering in the outbox", agent.machine_id)
                break
        threads = [
            threading.Thread(
                target=self._feed, args=(i,), name=f"source-{a.machine_id}", daemon=True
            )
            for i, a in enumerate(self.agents)
        ]
        self._started_at = time.monotonic()
        for t in threads:
            t.start()
        try:
            self._pump_loop()
        finally:
            self.stop_event.set()
            for src in self.sources:
                _close_quietly(src)
            for t in threads:
                t.join(SOURCE_JOIN_TIMEOUT_S)
            self._start_agents(force=True)  # an offline machine still flushes its outbox
            for agent in self.agents:
                agent.stop(self.drain_timeout_s if self.exit_when_done else 1.0)
        return self._stats()

    def _start_agents(self, force: bool = False) -> None:
        """Start (connect) every agent whose uplink is up (no gate, or its gate set)."""
        for i, agent in enumerate(self.agents):
            gate = self.gates[i]
            if not self._started[i] and (force or gate is None or self._uplink[i].is_set()):
                self._started[i] = True
                if gate is not None:
                    agent.pump()  # frames taken while offline go to the outbox: the backlog
                agent.start()

    def _pump_loop(self) -> None:
        interval = self.settings.pump_interval_s
        while not self.stop_event.is_set():
            t0 = time.monotonic()
            self._start_agents()
            for agent in self.agents:
                agent.pump()
            if self.exit_when_done and self._all_delivered():
                self._delivered_at = time.monotonic()
                return
            self.stop_event.wait(max(0.0, interval - (time.monotonic() - t0)))

    def _all_delivered(self) -> bool:
        sources_done = all(d.is_set() for d in self._done)
        return sources_done and all(a.outbox.stats().rows == 0 for a in self.agents)

    def _feed(self, i: int) -> None:
        agent, source = self.agents[i], self.sources[i]
        chunk: list[SourceItem] = []  # a replay source hands over REPLAY_CHUNK items at once
        gate, uplink = self.gates[i], self._uplink[i]
        try:
            for item in source.items():
                if self.stop_event.is_set():
                    break
                if gate is not None and not uplink.is_set() and gate.is_set():
                    # the uplink is back: what was taken before it goes to the agent first
                    agent.feed_many(chunk)
                    chunk = []
                    uplink.set()
                if self.paced[i]:
                    agent.feed(item)
                    continue
                chunk.append(item)
                if len(chunk) >= REPLAY_CHUNK:
                    self._wait_for_room(i)
                    agent.feed_many(chunk)
                    chunk = []
        except Exception as exc:
            log.exception("%s: source failed", agent.machine_id)
            self._errors.append(f"{agent.machine_id}: {exc}")
        finally:
            if chunk:
                agent.feed_many(chunk)
            agent.finish()
            uplink.set()
            self._done[i].set()

    def _wait_for_room(self, i: int) -> None:
        agent, gate = self.agents[i], self.gates[i]
        while agent.backlog() > agent.settings.backpressure_rows:
            if gate is not None and not gate.is_set():
                return  # offline: the outbox holds the backlog until the uplink is back
            if self.stop_event.wait(agent.settings.pump_interval_s):
                return

    def source_errors(self) -> list[str]:
        return list(self._errors)

    def _stats(self) -> FleetStats:
        st = FleetStats(machines=len(self.agents), source_errors=list(self._errors))
        if self._delivered_at is not None:
            st.deliver_s = self._delivered_at - self._started_at
        for a in self.agents:
            fs = a.framer.stats
            st.frames += fs.frames
            st.events += fs.events
            st.samples += fs.samples
            st.published += a.published
            st.acked += a.acked
            ob = a.outbox.stats()  # in-memory counters: valid after the outbox is closed
            st.dropped_frames += ob.dropped_frames
            st.undelivered_rows += ob.rows
        return st


def _close_quietly(source: SensorSource) -> None:
    try:
        source.close()
    except Exception:
        log.exception("closing a source failed")
