"""The demo's role processes never outlive it, even when it is killed with SIGKILL.

A real ``sledfleet demo`` on the shared servers; once its bridge, stream worker and sink
run, the demo process gets kill -9 (what a test timeout or the OOM killer does: no
cleanup runs in it). Every role must then end by itself (PR_SET_PDEATHSIG,
dashboards/demo/processes.py), polled with a deadline.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from polling import wait_until

from dashboards.demo.pipeline import drop_database
from edge.settings import KafkaSettings, MqttSettings

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ROLES = ("bridge", "stream worker", "sink")
STARTED_WITHIN_S = 240.0
"""The worker joins its group and the sink connects: slow on a loaded machine."""
GONE_WITHIN_S = 90.0
"""Roles drain and stop on SIGTERM within seconds; generous for a loaded machine."""


def _stat(pid: int) -> tuple[str, int] | None:
    """(state, parent pid) of a process, None if it no longer exists."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    fields = text.rsplit(")", 1)[1].split()
    return fields[0], int(fields[1])


def _alive(pid: int) -> bool:
    st = _stat(pid)
    return st is not None and st[0] not in ("Z", "X")  # an unreaped zombie has ended


def _role_children(parent: int) -> dict[str, int]:
    out: dict[str, int] = {}
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        st = _stat(int(d.name))
        if st is None or st[1] != parent:
            continue
        try:
            cmd = (d / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        for role in ROLES:
            if f"edge.cli {role}" in cmd:
                out[role] = int(d.name)
    return out


def test_roles_end_when_the_demo_is_killed(
    tmp_path: Path,
    unique: str,
    admin_dsn: str,
    mqtt_settings: MqttSettings,
    kafka_settings: KafkaSettings,
) -> None:
    database = f"sledfleet_kill_{unique}"
    out = tmp_path / "demo"
    cmd = [sys.executable, "-m", "edge.cli", "demo", "--no-services", "--clinics", "1"]
    cmd += ["--machines-per-clinic", "1", "--patients-per-machine", "1", "--weeks", "1"]
    cmd += ["--live-machines", "0", "--database", database, "--out", str(out)]
    log = (tmp_path / "demo.log").open("wb")
    demo = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
    roles: dict[str, int] = {}
    try:

        def all_started() -> dict[str, int]:
            assert demo.poll() is None, (tmp_path / "demo.log").read_text()[-3000:]
            found = _role_children(demo.pid)
            return found if len(found) == len(ROLES) else {}

        roles = wait_until(all_started, STARTED_WITHIN_S, "the demo's bridge, worker and sink")
        os.kill(demo.pid, signal.SIGKILL)
        demo.wait(30)
        wait_until(
            lambda: not any(_alive(p) for p in roles.values()),
            GONE_WITHIN_S,
            f"every role to end after kill -9 of the demo: {roles}",
            every=0.5,
        )
    finally:
        if demo.poll() is None:
            demo.kill()
            demo.wait(30)
        for pid in roles.values():  # after a failure: leave nothing behind
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
        log.close()
        drop_database(admin_dsn, database)  # and the run's clinic roles
