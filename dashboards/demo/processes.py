"""Role processes (``sledfleet bridge``, ``stream worker``, ``sink``) as real subprocesses.

Each role runs in its own process group with its own log file, is health-checked over
its HTTP endpoint with a deadline, and is stopped with SIGTERM (then SIGKILL after a
grace period) so that Ctrl-C on the demo leaves no orphan.

A demo killed from outside (SIGKILL by a test's timeout, an OOM kill) runs no cleanup: so
every role also asks the kernel to send it SIGTERM when the process that started it dies
(Linux ``PR_SET_PDEATHSIG``, set in the child before it runs the role). The kernel sends it
when the *thread* that started the role ends: start roles from a thread that lives as long
as they should (the demo and the benchmarks start them from the main thread).
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)

STOP_GRACE_S = 20.0
"""How long a role gets to drain and commit on SIGTERM before it is killed."""


PR_SET_PDEATHSIG = 1
"""prctl(2) option: the signal this process gets when its parent dies (linux/prctl.h)."""
PARENT_DEATH_SIGNAL = signal.SIGTERM
"""A role drains and stops within seconds on SIGTERM (its own handler)."""


class RoleFailed(RuntimeError):
    """A role process exited or never became healthy."""


def die_with_parent(parent: int | None = None) -> Callable[[], None] | None:
    """A ``preexec_fn``: the child gets PARENT_DEATH_SIGNAL when ``parent`` (default: this
    process) dies, and signals itself at once if it is already gone. Called in a forked
    child (multiprocessing), pass the parent's pid and call the result. None where prctl is
    missing."""
    if not sys.platform.startswith("linux"):
        return None
    prctl = ctypes.CDLL(None, use_errno=True).prctl  # looked up before the fork
    parent = os.getpid() if parent is None else parent
    sig = int(PARENT_DEATH_SIGNAL)

    def preexec() -> None:
        if prctl(PR_SET_PDEATHSIG, sig, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
        if os.getppid() != parent:  # the parent died before prctl: nobody will signal
            os.kill(os.getpid(), sig)

    return preexec


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Role:
    name: str
    args: Sequence[str]
    env: Mapping[str, str]
    log_path: Path
    health_url: str | None = None
    proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, **self.env}
        with self.log_path.open("ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "edge.cli", *self.args],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                preexec_fn=die_with_parent(),  # noqa: PLW1509 (prctl only, no locks taken)
            )
        log.info("%s started (pid %s, log %s)", self.name, self.proc.pid, self.log_path)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def wait_healthy(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if not self.alive():
                raise RoleFailed(f"{self.name} exited early; see {self.log_path}")
            if self.health_url is None or _http_ok(self.health_url):
                return
            time.sleep(0.2)
        raise RoleFailed(f"{self.name} not healthy after {timeout_s:.0f} s; see {self.log_path}")

    def stop(self, grace_s: float = STOP_GRACE_S) -> int | None:
        if self.proc is None or self.proc.poll() is not None:
            return None if self.proc is None else self.proc.returncode
        pgid = os.getpgid(self.proc.pid)
        os.killpg(pgid, signal.SIGTERM)
        try:
            return self.proc.wait(grace_s)
        except subprocess.TimeoutExpired:
            log.warning("%s did not stop in %.0f s: killing it", self.name, grace_s)
            os.killpg(pgid, signal.SIGKILL)
            return self.proc.wait(5)


def _http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1.0) as resp:  # noqa: S310 (loopback URL)
            return 200 <= int(resp.status) < 300
    except OSError:
        return False


@dataclass
class RoleSet:
    roles: list[Role] = field(default_factory=list)

    def start(self, role: Role, timeout_s: float = 90.0) -> Role:
        self.roles.append(role)
        role.start()
        role.wait_healthy(timeout_s)
        return role

    def check(self) -> None:
        for role in self.roles:
            if not role.alive():
                raise RoleFailed(f"{role.name} exited; see {role.log_path}")

    def stop(self) -> None:
        # reverse order: producers first, then the stream, the sink last so it drains
        for role in reversed(self.roles):
            role.stop()
