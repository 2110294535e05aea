"""Processes on rehearsal hosts: started through :meth:`Net.command`, one log file each,
stopped with SIGTERM (then SIGKILL) or killed with SIGKILL as a fault.

``ip netns exec``, ``unshare`` and ``sh -c 'exec'`` all exec, so the pid we hold is the
role's own process (the JVM, mosquitto, python): ``kill -9`` of it is a real crash."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from rehearsal.netns import Net

log = logging.getLogger(__name__)

STOP_GRACE_S = 20.0


class ProcFailed(RuntimeError):
    """A process on a rehearsal host exited or never became ready."""


@dataclass
class Proc:
    name: str
    host: str
    argv: Sequence[str]
    env: Mapping[str, str]
    log_path: Path
    cwd: Path | None = None
    popen: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    def start(self, net: Net) -> Proc:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as out:
            self.popen = subprocess.Popen(
                net.command(self.host, self.argv),
                env={**os.environ, **self.env},
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=self.cwd,
                start_new_session=True,
            )
        log.info("%s on %s: pid %d (%s)", self.name, self.host, self.popen.pid, self.log_path)
        return self

    @property
    def pid(self) -> int:
        if self.popen is None:
            raise ProcFailed(f"{self.name} was never started")
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def check(self) -> None:
        if not self.alive():
            code = None if self.popen is None else self.popen.returncode
            raise ProcFailed(f"{self.name} on {self.host} exited ({code}); see {self.log_path}")

    def kill9(self) -> None:
        """The fault: SIGKILL to the process (and its group), no chance to clean up."""
        if self.alive():
            os.killpg(self.pid, signal.SIGKILL)
            assert self.popen is not None
            self.popen.wait(30)
        log.info("%s on %s: killed -9", self.name, self.host)

    def stop(self, grace_s: float = STOP_GRACE_S) -> int | None:
        if self.popen is None or self.popen.poll() is not None:
            return None if self.popen is None else self.popen.returncode
        os.killpg(self.pid, signal.SIGTERM)
        try:
            return self.popen.wait(grace_s)
        except subprocess.TimeoutExpired:
            log.warning("%s did not stop in %.0f s: killing it", self.name, grace_s)
            os.killpg(self.pid, signal.SIGKILL)
            return self.popen.wait(10)
