"""What sensor sources produce: samples and lifecycle events, in device-clock order.

The one small interface between a sensor source (simulator, CSV replay, line
protocol over serial/TCP) and the edge agent's framing. Stdlib only.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True, slots=True)
class Sample:
    """One sensor reading. ``None`` marks a dropout of that channel (never interpolated)."""

    t_ns: int  # device clock, UTC epoch ns
    position_mm: float | None
    force_left_n: float | None
    force_right_n: float | None
    load_kg: float


@dataclass(frozen=True, slots=True)
class SourceEvent:
    """A lifecycle event as the machine reports it (check-in, load change, fault, ...).

    ``type`` is one of ``edge.contract.EVENT_TYPES``; ``fields`` carries the type's
    payload fields (``patient_id``, ``session_id``, ``load_kg``, ``code``, ...).
    """

    t_ns: int
    type: str
    fields: dict[str, Any] = field(default_factory=dict)


SourceItem = Sample | SourceEvent


class SensorSource(Protocol):
    """A source of samples and events for one machine, in time order."""

    rate_hz: float

    def items(self) -> Iterator[SourceItem]:
        """Yield samples and events; a live source blocks until the next one is due."""
        ...

    def close(self) -> None: ...
