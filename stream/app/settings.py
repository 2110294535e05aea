"""Settings of the Faust stream worker (``SLEDFLEET_STREAM_*``)."""

from __future__ import annotations

from dataclasses import dataclass

from edge.settings import env


@dataclass(frozen=True, slots=True)
class StreamSettings:
    app_id: str = env("SLEDFLEET_STREAM_APP_ID", "sledfleet-stream")
    """Consumer group and table-changelog name stem; the Kafka topic prefix is prepended."""
    data_dir: str = env("SLEDFLEET_STREAM_DATA_DIR", ".run/stream")
    web_host: str = env("SLEDFLEET_STREAM_WEB_HOST", "127.0.0.1")
    web_port: int = env("SLEDFLEET_STREAM_WEB_PORT", 6066)
    """Faust's web server (health, stats); 0 picks a free port."""
    web_enabled: bool = env("SLEDFLEET_STREAM_WEB_ENABLED", True)
    tick_event_s: float = env("SLEDFLEET_STREAM_TICK_EVENT_S", 60.0)
    """Device time between the core's machine ticks on a partition (idle sessions,
    silent machines); driven by the partition's telemetry, never the wall clock."""
    tick_interval_s: float = env("SLEDFLEET_STREAM_TICK_INTERVAL_S", 60.0)
    """Wall time between the patients' daily-lapse checks (judged by event time)."""
    release_interval_s: float = env("SLEDFLEET_STREAM_RELEASE_INTERVAL_S", 1.0)
    """How often partitions whose telemetry went quiet are checked (release held
    events, tick at the partition clock)."""
    reorder_grace_s: float = env("SLEDFLEET_STREAM_REORDER_GRACE_S", 30.0)
    """Device time a partition's telemetry must pass a held event by to release it
    (see ``stream.app.reorder``)."""
    reorder_idle_s: float = env("SLEDFLEET_STREAM_REORDER_IDLE_S", 2.0)
    """Wall time without telemetry on a partition after which its held events go."""
    stall_s: float = env("SLEDFLEET_STREAM_STALL_S", 60.0)
    """An owned partition with frames waiting but none handled this long makes the worker
    exit (non-zero) so its supervisor restarts it (a Faust 0.15 fetch stall)."""
    rebalance_stuck_s: float = env("SLEDFLEET_STREAM_REBALANCE_STUCK_S", 300.0)
    """A rebalance (table recovery included) lasting longer than this makes the worker exit
    with status 75 so its supervisor restarts it (``stream.app.watchdog``); 0: never. Above
    the longest table recovery you expect (the 1,000-machine bench recovers in seconds)."""
    historical_alert_age_s: float = env("SLEDFLEET_STREAM_HISTORICAL_ALERT_AGE_S", 3600.0)
    """An alert about something older than this (platform time) when it is raised, e.g.
    from a machine replaying yesterday's outbox, is marked ``historical``: recorded, never
    counted as a new open alert."""
    take_max: int = env("SLEDFLEET_STREAM_TAKE_MAX", 1000)
    """Largest batch of input messages handled (and state written) at once."""
    fetch_max_bytes: int = env("SLEDFLEET_STREAM_FETCH_MAX_BYTES", 4 * 1024 * 1024)
    """Most bytes one fetch returns *per partition* (Faust's ``consumer_max_fetch_size``).
    Faust's 1 MiB default is ~300 frames of 50 samples: measured on 2 cores, a trivial
    Faust agent read 2,500 frames/s with it and 5,100/s with 4 MiB (round trips through
    Faust's consumer thread, not CPU, were the limit). Keep it below
    ``rebalance_timeout_s`` worth of processing for all partitions a worker may own."""
    max_poll_records: int = env("SLEDFLEET_STREAM_MAX_POLL_RECORDS", 5000)
    """Most records one poll of the consumer thread hands over (``broker_max_poll_records``)."""
    buffer_max: int = env("SLEDFLEET_STREAM_BUFFER_MAX", 16384)
    """Messages a stream may hold unprocessed before the fetcher waits
    (``stream_buffer_maxsize``; Faust's default 4096)."""
    take_within_s: float = env("SLEDFLEET_STREAM_TAKE_WITHIN_S", 0.1)
    """Longest wait for a batch to fill before handling what has arrived."""
    session_timeout_s: float = env("SLEDFLEET_STREAM_SESSION_TIMEOUT_S", 10.0)
    """Kafka consumer-group session timeout: how fast a dead worker's partitions move."""
    heartbeat_interval_s: float = env("SLEDFLEET_STREAM_HEARTBEAT_INTERVAL_S", 1.0)
    rebalance_timeout_s: float = env("SLEDFLEET_STREAM_REBALANCE_TIMEOUT_S", 20.0)
    commit_interval_s: float = env("SLEDFLEET_STREAM_COMMIT_INTERVAL_S", 1.0)
    processing_guarantee: str = env("SLEDFLEET_STREAM_PROCESSING_GUARANTEE", "at_least_once")
    """``at_least_once`` (default; outputs are idempotent by natural key) or ``exactly_once``."""
    validate_input: bool = env("SLEDFLEET_STREAM_VALIDATE_INPUT", True)
    """Re-check every input against the wire contract (the bridge already did)."""
    topic_wait_s: float = env("SLEDFLEET_STREAM_TOPIC_WAIT_S", 60.0)
    """How long the worker waits at start for the input topics to exist."""
    loglevel: str = env("SLEDFLEET_STREAM_LOGLEVEL", "info")
