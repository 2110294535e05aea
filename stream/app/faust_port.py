"""Every touch of Faust beyond its documented API, in one place, behind a typed interface.

The worker needs a few things Faust 0.15 does not offer publicly: the committed offset of
a partition, its cached high-water mark, the consumer generation, whether recovery has
finished, and, after a batch that read frames Faust's fetcher stepped over
(``stream.app.holes``), a repair of Faust's acknowledgement bookkeeping (``_acked``,
``_acked_index``, ``_gap``, ``_committed_offset``, under ``ack_lock``). Table values are
read and written through ``table.data`` with explicit changelog partitions (see
``stream.app.state``).

faust-streaming is pinned to exactly :data:`FAUST_VERSION` (pyproject). The worker
refuses to start on another version (:func:`check_version`), and
``tests/unit/stream/test_app_faust_port.py`` fails when the source of the internals used
here changes (:data:`PATCHED_SOURCES`).
"""

from __future__ import annotations

import asyncio
import hashlib
import inspect
from collections.abc import Awaitable, Iterable, MutableMapping
from typing import Any, Final

import faust

from edge.settings import KafkaSettings

FAUST_VERSION: Final = "0.15.3"

PATCHED_SOURCES: Final[dict[str, str]] = {
    # qualified name -> sha256 of inspect.getsource (first 16 hex digits)
    "faust.transport.consumer.Consumer.__init__": "302410d59e6972d1",
    "faust.transport.consumer.Consumer.ack": "5fcf41cf45153475",
    "faust.transport.consumer.Consumer._new_offset": "1d2c7ea89a7ad4f1",
    "faust.transport.consumer.Consumer._drain_messages": "44a2500309e83c63",
}
"""The Faust code whose behaviour :meth:`FaustPort.mark_acked` relies on, as printed by
:func:`source_digests`; a mismatch means an upgrade changed them: re-check ``mark_acked``
and ``stream.app.holes`` before updating these digests and :data:`FAUST_VERSION`."""

Message = tuple[str, bytes, bytes, int | None]  # (topic, key, value, partition)


def installed_version() -> str:
    import faust

    version: str = faust.__version__
    return version


def check_version() -> None:
    """Refuse to run on a Faust whose internals were not checked (see module docstring)."""
    found = installed_version()
    if found != FAUST_VERSION:
        raise RuntimeError(
            f"faust-streaming {found} is installed; this worker is checked against "
            f"{FAUST_VERSION} only (stream/app/faust_port.py): install faust-streaming=="
            f"{FAUST_VERSION}"
        )


def _resolve(qualname: str) -> Any:
    import importlib

    module_name, _, rest = qualname.partition(".Consumer.")
    module = importlib.import_module(module_name)
    return getattr(module.Consumer, rest)


def source_digests() -> dict[str, str]:
    """sha256 (16 hex digits) of the source of each patched internal."""
    out = {}
    for name in PATCHED_SOURCES:
        source = inspect.getsource(_resolve(name))
        out[name] = hashlib.sha256(source.encode()).hexdigest()[:16]
    return out


class FaustPort:
    """The worker's one handle on a Faust app's consumer, producer and tables."""

    def __init__(self, app: Any) -> None:
        self.app = app

    # --- consumer ----------------------------------------------------------------------------

    def committed(self, tp: Any) -> int | None:
        """The last committed offset Faust knows for ``tp`` (None: none yet)."""
        value: int | None = self.app.consumer._committed_offset.get(tp)
        return value

    def highwater(self, tp: Any) -> int | None:
        """The end offset last seen by the fetcher (cached: no broker call)."""
        value: int | None = self.app.consumer.highwater(tp)
        return value

    def assigned(self, topic: str) -> set[int]:
        return {tp.partition for tp in self.app.consumer.assignment() if tp.topic == topic}

    def generation(self) -> int:
        gen: int = self.app.consumer_generation_id
        return gen

    def ready(self) -> bool:
        """Assigned, not rebalancing, and table recovery complete."""
        return bool(not self.app.rebalancing and self.app.tables.recovery.completed.is_set())

    def lag(self) -> dict[tuple[str, int], int]:
        """Records behind the end, per assigned (topic, partition), from what the consumer
        already knows (no network round trip): the committed offset (the next one to read)
        against the high water of the latest fetch. Partitions without either are left
        out rather than guessed."""
        consumer = self.app.consumer
        out: dict[tuple[str, int], int] = {}
        for tp in consumer.assignment():
            committed = consumer._committed_offset.get(tp)
            try:
                high = consumer.highwater(tp)
            except (AssertionError, KeyError):  # aiokafka: not fetched or assigned yet
                continue
            if committed is None or high is None:
                continue
            out[(tp.topic, tp.partition)] = max(0, int(high) - int(committed))
        return out

    def consumer_snapshot(self) -> dict[str, Any]:
        consumer = self.app.consumer

        def tps(items: Any) -> list[str]:
            return sorted(f"{tp.topic}:{tp.partition}" for tp in items or ())

        return {
            "assigned": tps(consumer.assignment()),
            "active": tps(consumer._active_partitions),
            "paused": tps(consumer._paused_partitions),
            "buffered": tps(consumer._buffered_partitions),
            "flow_active": consumer.flow_active,
            "rebalancing": self.app.rebalancing,
        }

    def mark_acked(self, holes: Iterable[tuple[Any, int, int]], tps: Iterable[Any] = ()) -> int:
        """Make Faust's commit bookkeeping for ``tps`` and the holes' partitions exact, once
        the batch that handled them is flushed; returns how many offsets were added.

        * the holes' offsets are added as acked (as ``Consumer.ack`` does for a delivered
          message): Faust never commits past a missing head offset;
        * gaps Faust recorded (offset ranges it never delivered, each ending at a delivered
          and handled message) are folded into the acked offsets now instead of at commit
          time;
        * the acked list is made duplicate-free. Faust appends its gaps at commit time
          without checking, and frames it delivers late *inside* such a gap are acked a
          second time: an offset listed twice splits the run of consecutive offsets its
          committer looks for, and the commit then crept ~1 offset per commit interval.
        """
        from faust.types.tuples import ack_lock

        consumer = self.app.consumer
        by_tp: dict[Any, list[range]] = {tp: [] for tp in tps}
        for tp, start, end in holes:
            by_tp.setdefault(tp, []).append(range(start, end))
        added = 0
        with ack_lock:
            for tp, ranges in by_tp.items():
                gap = consumer._gap[tp]
                ranges.extend(range(iv.begin, iv.end) for iv in sorted(gap))
                gap.clear()
                committed = consumer._committed_offset[tp]
                index = consumer._acked_index[tp]
                acked = consumer._acked[tp]
                for offsets in ranges:
                    for offset in offsets:
                        if (committed is None or offset >= committed) and offset not in index:
                            index.add(offset)
                            acked.append(offset)
                            added += 1
                if len(acked) != len(index):
                    acked[:] = sorted(index)
        return added

    # --- producer ----------------------------------------------------------------------------

    async def produce(self, messages: Iterable[Message]) -> None:
        """Send messages with explicit partitions (or by key) and wait until Kafka
        acknowledged every one."""
        producer = self.app.producer
        futures: list[Awaitable[Any]] = []
        for topic, key, value, partition in messages:
            futures.append(await producer.send(topic, key, value, partition, None, None))
        if futures:
            await asyncio.gather(*futures)

    async def crash(self, exc: BaseException) -> None:
        await self.app.crash(exc)

    # --- tables ------------------------------------------------------------------------------

    @staticmethod
    def table_data(table: Any) -> MutableMapping[str, Any]:
        data: MutableMapping[str, Any] = table.data
        return data

    @staticmethod
    def changelog_topic(table: Any) -> str:
        name: str = table.changelog_topic.get_topic_name()
        return name


# --- web server --------------------------------------------------------------------------

BUILT_IN_PAGES: Final = "faust.web.apps."
"""Module prefix of Faust's own blueprints (tables, router, graph, stats, metrics, index)."""


def harden_web(app: Any) -> None:
    """Drop every Faust built-in blueprint still enabled (the production index at ``/``,
    any the flags do not cover). Call after ``faust.App(...)``, before the worker starts."""
    blueprints = app.web.blueprints
    if blueprints.applied:
        raise RuntimeError("harden_web must run before the web server starts")
    blueprints._enabled = [
        (prefix, bp)
        for prefix, bp in blueprints._enabled
        if not (isinstance(bp, str) and bp.startswith(BUILT_IN_PAGES))
    ]


def built_in_routes(app: Any) -> list[str]:
    """The Faust built-in blueprints the web server would mount (empty once hardened)."""
    return [
        bp
        for _, bp in app.web.blueprints._enabled
        if isinstance(bp, str) and bp.startswith(BUILT_IN_PAGES)
    ]


# --- broker credentials ------------------------------------------------------------------


def broker_credentials(kafka: KafkaSettings) -> dict[str, Any]:
    """``faust.App`` keyword arguments for the Kafka security settings: ``broker_credentials``
    as ``faust.SASLCredentials`` (Faust's aiokafka driver passes them to its consumer,
    producer and topic creation). Empty for PLAINTEXT."""
    if not kafka.sasl:
        return {}
    return {
        "broker_credentials": faust.SASLCredentials(
            username=kafka.username,
            password=kafka.sasl_password().reveal(),
            mechanism=kafka.sasl_mechanism,
            ssl_context=kafka.ssl_context(),  # set: SASL_SSL, else SASL_PLAINTEXT
        )
    }
