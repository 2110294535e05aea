"""Helpers for the rehearsal tests: root check, unique prefixes, running code on a host."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from rehearsal import netns

REPO = Path(__file__).resolve().parents[2]
CI = os.environ.get("CI", "").strip().lower() in {"1", "true", "yes", "on"}


def require_netns() -> None:
    """Skip (locally) or fail (CI=true) when this process cannot create network namespaces."""
    probe = f"sfrp{uuid.uuid4().hex[:6]}"
    made = subprocess.run(
        ["ip", "netns", "add", probe], capture_output=True, text=True, check=False
    )
    subprocess.run(["ip", "netns", "del", probe], capture_output=True, check=False)
    if made.returncode == 0:
        return
    message = f"cannot create network namespaces ({made.stderr.strip()}); run as root"
    if CI:
        pytest.fail(message + " (CI=true: a failure)", pytrace=False)
    pytest.skip(message)


def unique_prefix() -> str:
    return f"sft{uuid.uuid4().hex[:6]}"


def nothing_left(prefix: str) -> dict[str, list[str]]:
    return {k: v for k, v in netns.leftovers(prefix).items() if v}


def run_on(net: netns.Net, host: str, code: str, timeout: float = 60) -> str:
    """Run Python ``code`` on ``host``; returns its stdout, fails the test on a non-zero exit."""
    proc = subprocess.run(
        net.command(host, [sys.executable, "-c", code]),
        capture_output=True, text=True, timeout=timeout, check=False, cwd=REPO,
    )  # fmt: skip
    assert proc.returncode == 0, f"on {host}: {proc.stderr[-2000:]}"
    return proc.stdout
