"""Secure mode: a message is forwarded only when its machine is registered to the clinic
its MQTT topic names; anything else becomes a dead letter.

The broker's ACL already keeps a device under its own clinic and machine (issue #13, H1).
This is the second layer, for what the ACL cannot judge: a service account that may
publish for many machines (the simulator, an operator tool) or a mis-provisioned ACL.

Registry source: the ``registry.json`` that ``sledfleet device add|revoke`` renders next to
the broker's accounts (``edge/devices.py``; machine id -> clinic id, no secrets), named by
``SLEDFLEET_BRIDGE_REGISTRY_FILE``. Empty (dev mode) turns the check off. The file is
re-read when its modification time changes (looked at every ``RECHECK_S``, and at most
every ``MISS_RECHECK_S`` when a machine is not found), so a device provisioned a moment ago
is let through without restarting the bridge, and a revoked one is refused.

Reasons (dead-letter ``reason`` and the ``dead_lettered`` metric): ``unregistered_machine``
(the machine is in no clinic's registry), ``clinic_mismatch`` (it is registered to another
clinic than the topic says).
"""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path
from typing import Final

from edge.contract import ContractError, check_id, parse_topic
from stream.bridge.core import Record, dead_record

log = logging.getLogger(__name__)

RECHECK_S: Final = 1.0
"""How often the registry file's modification time is looked at."""
MISS_RECHECK_S: Final = 0.05
"""After a machine was not found, how soon the file may be looked at again."""
UNREGISTERED: Final = "unregistered_machine"
CLINIC_MISMATCH: Final = "clinic_mismatch"


class RegistryError(RuntimeError):
    """The registry file is missing or unreadable at start (secure mode cannot run)."""


def read_registry(path: Path) -> dict[str, str]:
    """machine id -> clinic id from ``registry.json``; every id checked by the contract."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        machines = data["machines"]
        return {check_id("machine_id", m): check_id("clinic_id", c) for m, c in machines.items()}
    except (OSError, ValueError, KeyError, TypeError, AttributeError, ContractError) as exc:
        raise RegistryError(f"device registry {path}: {type(exc).__name__}: {exc}") from exc


class Registration:
    """The machine -> clinic check the bridge applies to every forwarded record."""

    def __init__(self, path: Path, *, prefix: str, bridge_id: str, raw_limit: int) -> None:
        self.path = path
        self.prefix = prefix
        self.bridge_id = bridge_id
        self.raw_limit = raw_limit
        self._mtime_ns = os.stat(path).st_mtime_ns if path.exists() else -1
        self.machines = read_registry(path)
        self._checked = time.monotonic()

    def check(self, mqtt_topic: str, raw: bytes, record: Record, received_at_ns: int) -> Record:
        """``record`` itself when it may pass, else its dead letter."""
        if record.dead:
            return record
        parts = parse_topic(mqtt_topic)  # valid: route() forwarded it
        clinic = self._clinic_of(parts.machine_id)
        if clinic == parts.clinic_id:
            return record
        if clinic is None:
            reason, detail = UNREGISTERED, f"machine {parts.machine_id} is not registered"
        else:
            reason = CLINIC_MISMATCH
            detail = f"machine {parts.machine_id} is registered to clinic {clinic}"
        return dead_record(
            mqtt_topic,
            raw,
            reason,
            detail,
            received_at_ns,
            prefix=self.prefix,
            bridge_id=self.bridge_id,
            raw_limit=self.raw_limit,
        )

    def _clinic_of(self, machine_id: str) -> str | None:
        now = time.monotonic()
        clinic = self.machines.get(machine_id)
        wait = RECHECK_S if clinic is not None else MISS_RECHECK_S
        if now - self._checked >= wait:
            self._checked = now
            self._reload()
            clinic = self.machines.get(machine_id)
        return clinic

    def _reload(self) -> None:
        try:
            mtime = os.stat(self.path).st_mtime_ns
        except OSError:
            log.error("device registry %s is gone; keeping the last one read", self.path)
            return
        if mtime == self._mtime_ns:
            return
        try:
            self.machines = read_registry(self.path)
        except RegistryError as exc:
            log.error("%s; keeping the last one read", exc)
            return
        self._mtime_ns = mtime
        log.info("device registry reloaded: %d machines", len(self.machines))


def for_bridge(
    registry_file: str, prefix: str, bridge_id: str, raw_limit: int
) -> Registration | None:
    """The bridge's check, or None in dev mode (no registry file configured)."""
    if not registry_file:
        return None
    return Registration(
        Path(registry_file), prefix=prefix, bridge_id=bridge_id, raw_limit=raw_limit
    )
