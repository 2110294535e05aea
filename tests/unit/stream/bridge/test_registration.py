"""The secure-mode machine -> clinic check (stream/bridge/registration.py), no network."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from frames import telemetry

from edge.contract import encode
from stream.bridge import registration
from stream.bridge.core import route
from stream.bridge.registration import Registration, RegistryError


def _registry(path: Path, machines: dict[str, str]) -> Path:
    path.write_text(json.dumps({"version": 1, "machines": machines}))
    return path


def _check(reg: Registration, clinic: str, machine: str) -> str | None:
    topic = f"sledfleet/v1/{clinic}/{machine}/telemetry"
    raw = encode(telemetry(clinic, machine))
    record = route(topic, raw, 1, prefix="t.", bridge_id="b", dead_letter_raw_limit=1 << 20)
    assert record.reason is None
    return reg.check(topic, raw, record, 1).reason


def test_registered_passes_others_are_dead_lettered(tmp_path: Path) -> None:
    reg = Registration(
        _registry(tmp_path / "r.json", {"m1": "c1"}), prefix="t.", bridge_id="b", raw_limit=1 << 20
    )
    assert _check(reg, "c1", "m1") is None
    assert _check(reg, "c2", "m1") == registration.CLINIC_MISMATCH
    assert _check(reg, "c1", "m9") == registration.UNREGISTERED


def test_dead_records_pass_through_untouched(tmp_path: Path) -> None:
    reg = Registration(_registry(tmp_path / "r.json", {}), prefix="", bridge_id="b", raw_limit=10)
    topic = "sledfleet/v1/c1/m1/telemetry"
    dead = route(topic, b"{", 1, prefix="", bridge_id="b", dead_letter_raw_limit=10)
    assert reg.check(topic, b"{", dead, 1) is dead


def test_changes_to_the_file_are_picked_up(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = _registry(tmp_path / "r.json", {"m1": "c1"})
    reg = Registration(path, prefix="", bridge_id="b", raw_limit=1 << 20)
    monkeypatch.setattr(registration, "MISS_RECHECK_S", 0.0)
    monkeypatch.setattr(registration, "RECHECK_S", 0.0)
    _registry(path, {"m1": "c2", "m2": "c1"})
    os.utime(path, ns=(1, 1))  # a different mtime, whatever the clock's resolution
    assert _check(reg, "c1", "m2") is None
    assert _check(reg, "c1", "m1") == registration.CLINIC_MISMATCH
    path.write_text("not json")  # a broken file keeps the last good registry
    os.utime(path, ns=(2, 2))
    assert _check(reg, "c1", "m2") is None


@pytest.mark.parametrize(
    "content", ["", "[]", '{"machines": {"m/1": "c1"}}', '{"machines": {"m1": "c+"}}']
)
def test_a_bad_registry_stops_the_start(tmp_path: Path, content: str) -> None:
    path = tmp_path / "r.json"
    path.write_text(content)
    with pytest.raises(RegistryError):
        Registration(path, prefix="", bridge_id="b", raw_limit=1)
    with pytest.raises(RegistryError):
        Registration(tmp_path / "missing.json", prefix="", bridge_id="b", raw_limit=1)


def test_dev_mode_has_no_check() -> None:
    assert registration.for_bridge("", "", "b", 1) is None
