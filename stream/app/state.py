"""Per-key core state kept in Faust tables, written with explicit partitions.

A table value is JSON: ``{"p": partition, "s": <core state>, ...}`` (machines also
carry their inbox, ``"q"``/``"f"``). Live core objects are cached per key and reused
while the table still holds the very value object they were written as; a changelog
recovery replaces those objects, so the cache can never serve stale state.

Faust's ``table[key] = value`` is not used: it takes the changelog partition from the
"current event", which inside ``take()`` is whatever event came last, and queues the
changelog in a buffer whose flush may return before it is empty. Here every write names
its partition, and the caller awaits the acknowledgement.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from types import ModuleType
from typing import Any, Generic, TypeVar

from stream.app.reorder import Inbox
from stream.core.adherence import PatientState
from stream.core.processor import MachineState

orjson: ModuleType | None
try:
    import orjson
except ImportError:  # pragma: no cover - orjson is in the stream extra
    orjson = None

S = TypeVar("S")
Message = tuple[str, bytes, bytes, int | None]  # (topic, key, value, partition)


def plain(o: Any) -> Any:
    """``json`` default hook: numpy scalars and arrays (the core may keep some) as plain
    numbers and lists."""
    if hasattr(o, "tolist"):
        return o.tolist()
    if hasattr(o, "item"):
        return o.item()
    raise TypeError(f"{type(o).__name__} is not JSON serializable")


def dumps(value: Any) -> bytes:
    """Table keys/values: compact JSON, by orjson (~5x faster than ``json``; non-string
    keys become strings as with ``json``). The values are NaN-free: core state is
    checked when it is copied out (``stream.core.jsonstate``) and held inputs passed
    the contract (orjson would write NaN as null). Output records go through
    ``codecs.encode_record`` instead."""
    if orjson is None:  # pragma: no cover - orjson is in the stream extra
        return json.dumps(value, separators=(",", ":"), default=plain).encode()
    encoded: bytes = orjson.dumps(value, default=plain, option=orjson.OPT_NON_STR_KEYS)
    return encoded


@dataclass(slots=True)
class MachineEntry:
    partition: int
    state: MachineState
    inbox: Inbox

    def to_json(self) -> dict[str, Any]:
        return {"p": self.partition, "s": self.state.to_json(), **self.inbox.to_json()}


@dataclass(slots=True)
class PatientEntry:
    partition: int
    state: PatientState

    def to_json(self) -> dict[str, Any]:
        return {"p": self.partition, "s": self.state.to_json()}


class StateTable(Generic[S]):
    """One Faust table of core state, with a cache of live objects."""

    def __init__(self, table: Any, from_json: Callable[[dict[str, Any]], S]) -> None:
        self.table = table
        self._from_json = from_json
        self._cache: dict[str, tuple[Any, S]] = {}

    @property
    def changelog(self) -> str:
        name: str = self.table.changelog_topic.get_topic_name()
        return name

    def get(self, key: str) -> S | None:
        stored = self.table.data.get(key)
        if stored is None:
            return None
        cached = self._cache.get(key)
        if cached is not None and cached[0] is stored:
            return cached[1]
        entry = self._from_json(stored)
        self._cache[key] = (stored, entry)
        return entry

    def snapshot_keys(self) -> Iterator[str]:
        return iter(list(self.table.data.keys()))

    def partition_of(self, key: str) -> int | None:
        stored = self.table.data.get(key)
        return None if stored is None else int(stored["p"])

    def put(self, key: str, entry: S, value: dict[str, Any], partition: int) -> Message:
        """Store locally and return the changelog message to send."""
        self.table.data[key] = value
        self._cache[key] = (value, entry)
        return (self.changelog, dumps(key), dumps(value), partition)


class MachinePartitions:
    """Machine state, one table value per *input partition*: ``{"c": clock, "m": {machine_id:
    entry}}``. One Kafka record holds a partition's clock and every machine on it, so a
    kill -9 can never leave some machines (or the clock that drives their ticks) at an
    older point of the partition's stream than others."""

    def __init__(self, table: Any) -> None:
        self.table = table
        self._cache: dict[str, tuple[Any, MachineEntry]] = {}

    @property
    def changelog(self) -> str:
        name: str = self.table.changelog_topic.get_topic_name()
        return name

    def _record(self, partition: int) -> dict[str, Any] | None:
        record: dict[str, Any] | None = self.table.data.get(str(partition))
        return record

    def partitions(self) -> list[int]:
        return sorted(int(k) for k in list(self.table.data.keys()))

    def clock(self, partition: int) -> int:
        record = self._record(partition)
        return int(record["c"]) if record else 0

    def members(self, partition: int) -> list[str]:
        record = self._record(partition)
        return sorted(record["m"]) if record else []

    def get(self, machine_id: str, partition: int) -> MachineEntry | None:
        record = self._record(partition)
        stored = record["m"].get(machine_id) if record else None
        if stored is None:
            return None
        cached = self._cache.get(machine_id)
        if cached is not None and cached[0] is stored:
            return cached[1]
        entry = machine_from_json(stored)
        self._cache[machine_id] = (stored, entry)
        return entry

    def put(self, partition: int, clock: int, entries: dict[str, MachineEntry]) -> Message:
        """Store the partition's new value locally; return its changelog message."""
        record = self._record(partition)
        machines = dict(record["m"]) if record else {}
        for machine_id, entry in entries.items():
            value = entry.to_json()
            machines[machine_id] = value
            self._cache[machine_id] = (value, entry)
        new = {"c": clock, "m": machines}
        self.table.data[str(partition)] = new
        return (self.changelog, dumps(str(partition)), dumps(new), partition)


def machine_from_json(stored: dict[str, Any]) -> MachineEntry:
    return MachineEntry(
        int(stored["p"]), MachineState.from_json(stored["s"]), Inbox.from_json(stored)
    )


def patient_from_json(stored: dict[str, Any]) -> PatientEntry:
    return PatientEntry(int(stored["p"]), PatientState.from_json(stored["s"]))
