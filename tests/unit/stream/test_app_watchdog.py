"""The stuck-rebalance watch (stream.app.watchdog) and the worker's exit on it."""

from __future__ import annotations

import subprocess
import sys

from stream.app.watchdog import EXIT_REBALANCE_STUCK, RebalanceWatch


def test_a_rebalance_past_the_limit_is_reported_with_its_length() -> None:
    w = RebalanceWatch(300.0)
    assert w.observe(False, 0.0) is None
    assert w.observe(True, 10.0) is None
    assert w.observe(True, 310.0) is None  # exactly the limit: still allowed
    assert w.observe(True, 310.5) == 300.5


def test_each_rebalance_is_timed_from_its_own_start() -> None:
    w = RebalanceWatch(60.0)
    w.observe(True, 0.0)
    assert w.observe(True, 59.0) is None
    assert w.observe(False, 100.0) is None  # ended: the next one starts afresh
    assert w.observe(True, 1000.0) is None
    assert w.observe(True, 1059.0) is None
    assert w.observe(True, 1061.0) == 61.0


def test_zero_switches_the_watch_off() -> None:
    w = RebalanceWatch(0.0)
    w.observe(True, 0.0)
    assert w.observe(True, 10**6) is None


def test_the_worker_exits_with_the_restart_status_and_says_why() -> None:
    code = "from stream.app.app import exit_stuck; exit_stuck(301.0); print('not reached')"
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert proc.returncode == EXIT_REBALANCE_STUCK
    assert "not reached" not in proc.stdout
    assert "rebalance stuck for 301 s" in proc.stderr
