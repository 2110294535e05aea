"""Settings of one edge agent (one machine), read from ``SLEDFLEET_EDGE_*`` variables.

MQTT connection settings are ``edge.settings.MqttSettings``; this is what is specific
to the machine and its outbox. Stdlib only.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from edge.framing import DEFAULT_FRAME_SAMPLES, GAP_FILL_MAX_SAMPLES
from edge.outbox import DEFAULT_MAX_BYTES, DEFAULT_MAX_ROWS
from edge.settings import env


@dataclass(frozen=True, slots=True)
class EdgeSettings:
    machine_id: str = env("SLEDFLEET_EDGE_MACHINE_ID", "sled-1")
    clinic_id: str = env("SLEDFLEET_EDGE_CLINIC_ID", "clinic-1")
    source: str = env("SLEDFLEET_EDGE_SOURCE", "sim")
    """sim | csv:PATH | tcp://HOST:PORT | tcp-listen://HOST:PORT | serial:/dev/ttyUSB0"""
    firmware: str = env("SLEDFLEET_EDGE_FIRMWARE", "unknown")
    client_id: str = env("SLEDFLEET_EDGE_CLIENT_ID", "")
    """MQTT client id; empty means ``edge-<machine_id>`` (fixed, for the persistent session)."""
    outbox_dir: str = env("SLEDFLEET_EDGE_OUTBOX_DIR", ".run/edge")
    outbox_max_rows: int = env("SLEDFLEET_EDGE_OUTBOX_MAX_ROWS", DEFAULT_MAX_ROWS)
    outbox_max_bytes: int = env("SLEDFLEET_EDGE_OUTBOX_MAX_BYTES", DEFAULT_MAX_BYTES)
    outbox_synchronous: str = env("SLEDFLEET_EDGE_OUTBOX_SYNCHRONOUS", "FULL")
    """SQLite ``synchronous``: FULL survives power loss; NORMAL survives a process crash only."""
    frame_samples: int = env("SLEDFLEET_EDGE_FRAME_SAMPLES", DEFAULT_FRAME_SAMPLES)
    gap_fill_max: int = env("SLEDFLEET_EDGE_GAP_FILL_MAX", GAP_FILL_MAX_SAMPLES)
    session_expiry_s: int = env("SLEDFLEET_EDGE_SESSION_EXPIRY_S", 7 * 24 * 3600)
    reconnect_min_s: int = env("SLEDFLEET_EDGE_RECONNECT_MIN_S", 1)
    reconnect_max_s: int = env("SLEDFLEET_EDGE_RECONNECT_MAX_S", 30)
    connect_wait_s: float = env("SLEDFLEET_EDGE_CONNECT_WAIT_S", 5.0)
    """At start, how long sources wait for the first connection (data is buffered after)."""
    state_interval_s: float = env("SLEDFLEET_EDGE_STATE_INTERVAL_S", 60.0)
    """Period of the retained ``online`` state refresh (outbox stats, clock offset)."""
    pump_interval_s: float = env("SLEDFLEET_EDGE_PUMP_INTERVAL_S", 0.02)
    """How often buffered frames are stored, acks applied and the outbox published."""
    store_batch: int = env("SLEDFLEET_EDGE_STORE_BATCH", 64)
    """Messages stored in one transaction at most; a full batch is stored at once."""
    backpressure_rows: int = env("SLEDFLEET_EDGE_BACKPRESSURE_ROWS", 2000)
    """A non-live source (replay, benchmark) pauses while this many rows are unsent."""
    delete_on: str = env("SLEDFLEET_EDGE_DELETE_ON", "puback")
    """When an outbox row is deleted: ``puback`` (the broker has it: lost if the broker dies
    while it queues it) or ``ack`` (end-to-end: a bridge said Kafka with acks=all holds it;
    needs bridges with SLEDFLEET_BRIDGE_PUBLISH_ACKS, the default). docs/contract.md."""
    ack_timeout_s: float = env("SLEDFLEET_EDGE_ACK_TIMEOUT_S", 30.0)
    """``ack`` mode: rows the broker acknowledged are sent again when the oldest has waited
    this long for its end-to-end ack (and after every reconnect)..."""
    max_unconfirmed_rows: int = env("SLEDFLEET_EDGE_MAX_UNCONFIRMED_ROWS", 48)
    """``ack`` mode: a new row is sent only while it is fewer than this many rows after the
    oldest row not yet confirmed (however many rows between are confirmed: a frame a killed
    bridge holds must not be overtaken without bound while its neighbours flow through the
    other bridge). A frame held by a killed or slow bridge then has at most this many behind it,
    inside the stream's reorder window (SLEDFLEET_CORE_REORDER_WINDOW, 64), and is not given
    up as a gap while the agent re-sends it. Caps one machine's rate at about this many rows
    per ack round trip (~0.2 s: ~240 frames/s, a live sled sends 2)."""
    ack_hole_s: float = env("SLEDFLEET_EDGE_ACK_HOLE_S", 2.0)
    """``ack`` mode: an unconfirmed row older than a confirmed one (lost on the way: a broker
    restarted before any bridge subscribed again) is sent again after this long. Kept well
    under the stream's reorder hold (SLEDFLEET_CORE_REORDER_HOLD_S, 10 s) so it is not late."""
    ack_timeout_max_s: float = env("SLEDFLEET_EDGE_ACK_TIMEOUT_MAX_S", 600.0)
    """...the wait doubles after each re-send without progress, up to this (a platform outage
    must not fill the broker with copies); back to ack_timeout_s once acks flow."""
    metrics_host: str = env("SLEDFLEET_EDGE_METRICS_HOST", "127.0.0.1")
    metrics_port: int = env("SLEDFLEET_EDGE_METRICS_PORT", 0)
    """/metrics and /healthz of the edge process (all its machines); 0 disables them."""

    def outbox_path(self) -> Path:
        return Path(self.outbox_dir) / f"{self.clinic_id}.{self.machine_id}.db"

    def mqtt_client_id(self) -> str:
        return self.client_id or f"edge-{self.machine_id}"

    def for_machine(self, clinic_id: str, machine_id: str) -> EdgeSettings:
        """The same settings for another machine (fleet runner)."""
        return replace(self, clinic_id=clinic_id, machine_id=machine_id, client_id="")
