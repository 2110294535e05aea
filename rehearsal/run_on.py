"""Run a probe on a rehearsal host and read its JSON answer."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

from rehearsal.compose import REPO
from rehearsal.netns import Net


class ProbeFailed(RuntimeError):
    """A probe exited non-zero or printed no JSON."""


def probe(net: Net, host: str, *args: str, timeout_s: float = 300.0) -> dict[str, Any]:
    argv = net.command(host, [sys.executable, "-m", "rehearsal.probe", *args])
    proc = subprocess.run(
        argv, capture_output=True, text=True, timeout=timeout_s, check=False, cwd=REPO
    )
    if proc.returncode != 0:
        raise ProbeFailed(f"probe {args[0]} on {host}: {proc.stderr.strip()[-1500:]}")
    lines = proc.stdout.strip().splitlines()
    if not lines:
        raise ProbeFailed(f"probe {args[0]} on {host} printed nothing: {proc.stderr[-500:]}")
    result: dict[str, Any] = json.loads(lines[-1])
    return result
