"""Run frames/events through a MachineProcessor and pick records apart."""

from __future__ import annotations

import json
from typing import Any, get_type_hints

from stream import records
from stream.core import MachineProcessor, MachineState
from stream.core.settings import CoreSettings

TYPES = {
    "rep": records.Rep,
    "set": records.Set,
    "session": records.Session,
    "adherence": records.Adherence,
    "alert": records.Alert,
    "machine_status": records.MachineStatus,
}


def check_shape(rec: dict[str, Any]) -> None:
    """Exactly the TypedDict's keys, and JSON-serialisable without NaN."""
    td = TYPES[rec["kind"]]
    hints = get_type_hints(td)
    # (with postponed annotations Python 3.11 cannot see NotRequired: read the strings)
    raw = td.__annotations__
    required = {k for k in hints if "NotRequired[" not in str(raw.get(k, ""))}
    assert required <= set(rec) <= set(hints), (rec["kind"], set(rec) ^ required)
    json.dumps(rec, allow_nan=False)


def run(
    items: list[tuple[str, dict[str, Any]]],
    settings: CoreSettings | None = None,
    roundtrip: bool = False,
    ticks: list[int] | None = None,
) -> list[dict[str, Any]]:
    """Feed ("frame"|"event"|"state"|"tick"|"silence", payload) items; optionally JSON round-trip
    the state before every item (what a Faust restart does)."""
    p = MachineProcessor(settings)
    st = p.new_state("c1", "m1")
    out: list[dict[str, Any]] = []
    for kind, item in items:
        if roundtrip:
            st = MachineState.from_json(json.loads(json.dumps(st.to_json())), settings)
        if kind == "frame":
            out += p.on_frame(st, item, 0)
        elif kind == "event":
            out += p.on_event(st, item, 0)
        elif kind == "state":
            out += p.on_state(st, item, 0)
        elif kind == "silence":
            out += p.on_silence(
                st, int(item["clock_ns"]), int(item["silent_ns"]), int(item["wall_ns"])
            )
        else:
            out += p.on_tick(st, int(item["now_ns"]))
    for rec in out:
        check_shape(rec)
    return out


def kind(out: list[dict[str, Any]], k: str) -> list[dict[str, Any]]:
    return [r for r in out if r["kind"] == k]
