"""Per-key core state kept in Faust tables, written with explicit partitions.

One table value per key (a machine, a patient), never one per partition: each value
stays small and bounded however many machines share a partition. A value is JSON:
``{"p": partition, "s": <core state>}``, machines also ``"t": <timeline>``. Live core
objects are cached per key and reused while the table still holds the very value object
they were written as; a changelog recovery replaces those objects, so the cache can never
serve stale state.

Faust's ``table[key] = value`` is not used: it takes the changelog partition from the
"current event", which inside ``take()`` is whatever event came last, and queues the
changelog in a buffer whose flush may return before it is empty. Here every write names
its partition, and the caller awaits the acknowledgement.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, MutableMapping
from dataclasses import dataclass
from types import ModuleType
from typing import Any, Generic, TypeVar

from stream.app.faust_port import FaustPort
from stream.core.adherence import PatientState
from stream.core.processor import MachineState
from stream.core.timeline import Timeline

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
    """One machine's table value: its input partition, core state and timeline."""

    partition: int
    state: MachineState
    timeline: Timeline

    def to_json(self) -> dict[str, Any]:
        return {"p": self.partition, "s": self.state.to_json(), "t": self.timeline.to_json()}


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
    def _data(self) -> MutableMapping[str, Any]:
        return FaustPort.table_data(self.table)

    @property
    def changelog(self) -> str:
        return FaustPort.changelog_topic(self.table)

    def get(self, key: str) -> S | None:
        stored = self._data.get(key)
        if stored is None:
            return None
        cached = self._cache.get(key)
        if cached is not None and cached[0] is stored:
            return cached[1]
        entry = self._from_json(stored)
        self._cache[key] = (stored, entry)
        return entry

    def snapshot_keys(self) -> Iterator[str]:
        return iter(list(self._data.keys()))

    def partition_of(self, key: str) -> int | None:
        stored = self._data.get(key)
        return None if stored is None else int(stored["p"])

    def put(self, key: str, entry: S, value: dict[str, Any], partition: int) -> Message:
        """Store locally and return the changelog message to send."""
        self._data[key] = value
        self._cache[key] = (value, entry)
        return (self.changelog, dumps(key), dumps(value), partition)


def machine_from_json(stored: dict[str, Any]) -> MachineEntry:
    return MachineEntry(
        int(stored["p"]), MachineState.from_json(stored["s"]), Timeline.from_json(stored.get("t"))
    )


def patient_from_json(stored: dict[str, Any]) -> PatientEntry:
    return PatientEntry(int(stored["p"]), PatientState.from_json(stored["s"]))
