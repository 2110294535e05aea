"""Rehearsal hosts: namespaces on a private switch, reachable by name, removed completely
(on a clean exit, on Ctrl-C, and by ``services/rehearse --teardown`` after a kill -9)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator

import pytest

from rehearsal import netns
from tests.integration.polling import wait_until
from tests.integration.rehearsal_support import (
    REPO,
    nothing_left,
    require_netns,
    run_on,
    unique_prefix,
)

pytestmark = pytest.mark.integration

SERVE_ONCE = """
import socket
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", 7070)); s.listen()
print("listening", flush=True)
c, peer = s.accept(); c.sendall(("%s %s" % (socket.gethostname(), peer[0])).encode()); c.close()
"""
DIAL = """
import socket, sys
try:
    c = socket.create_connection(("b", 7070), timeout=float(sys.argv[1]))
    print(c.recv(100).decode())
except OSError as e:
    print("unreachable", type(e).__name__)
"""


def root_links() -> set[str]:
    out = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True, check=True).stdout
    return {line.split(":")[1].strip() for line in out.splitlines()}


@pytest.fixture
def prefix() -> Iterator[str]:
    require_netns()
    p = unique_prefix()
    yield p
    netns.teardown(p)  # backstop: a failing test leaves nothing either


def dial(net: netns.Net, timeout_s: float) -> str:
    argv = net.command("a", [sys.executable, "-c", DIAL, str(timeout_s)])
    return subprocess.run(argv, capture_output=True, text=True, check=False).stdout


def serve_once(net: netns.Net) -> subprocess.Popen[str]:
    server = subprocess.Popen(
        net.command("b", [sys.executable, "-c", SERVE_ONCE]), stdout=subprocess.PIPE, text=True
    )
    assert server.stdout is not None
    assert server.stdout.readline().strip() == "listening"
    return server


def test_hosts_talk_by_name_and_leave_nothing(prefix: str) -> None:
    before = root_links()
    net = netns.Net(prefix, ["a", "b", "c"])
    net.up()
    assert root_links() == before, "the machine's own interfaces must not change"
    assert run_on(net, "a", "import socket; print(socket.gethostname())").strip() == "a"

    server = serve_once(net)
    reply = dial(net, 10).split()
    assert reply == ["b", net.address("a")]
    server.wait(10)

    # a cut cable: the host keeps running but nobody reaches it; restored, it answers again
    server = serve_once(net)
    net.set_link("b", up=False)
    cut = dial(net, 2)
    assert cut.startswith("unreachable")
    assert server.poll() is None
    net.set_link("b", up=True)
    reply = dial(net, 20).split()
    assert reply == ["b", net.address("a")]
    server.wait(10)

    sleeper = subprocess.Popen(net.command("c", ["sleep", "600"]))
    wait_until(lambda: net.pids("c"), 60, "a process on host c")
    assert nothing_left(prefix), "leftovers() must see the live setup"
    netns.teardown(prefix)
    assert nothing_left(prefix) == {}
    assert sleeper.wait(10) == -signal.SIGKILL
    assert root_links() == before


def _hold(prefix: str, wrapper: bool) -> subprocess.Popen[str]:
    env = {**os.environ, "SLEDFLEET_REHEARSE_PREFIX": prefix, "SLEDFLEET_PYTHON": sys.executable}
    argv = (
        [str(REPO / "services" / "rehearse"), "hosts", "--hold"]
        if wrapper
        else [sys.executable, "-m", "rehearsal", "--prefix", prefix, "hosts", "--hold"]
    )
    # as a terminal's foreground job gets it, whatever ran this suite: a shell that starts
    # a job in the background hands it SIGINT ignored, which bash then cannot trap and
    # Python keeps (no KeyboardInterrupt), so Ctrl-C would not be rehearsed at all
    argv = ["env", "--default-signal=INT", *argv]
    proc = subprocess.Popen(
        argv, stdout=subprocess.PIPE, text=True, cwd=REPO, env=env, start_new_session=True
    )
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.strip() == "ready":
            return proc
    raise AssertionError(f"hosts never became ready (exit {proc.wait(10)})")


def test_ctrl_c_removes_everything(prefix: str) -> None:
    proc = _hold(prefix, wrapper=True)
    net = netns.Net(prefix, ["a", "b", "c"])
    subprocess.Popen(net.command("a", ["sleep", "600"]))
    wait_until(lambda: net.pids("a"), 60, "a process on host a")
    os.killpg(proc.pid, signal.SIGINT)  # what a terminal sends on Ctrl-C
    proc.wait(60)
    assert nothing_left(prefix) == {}


def test_teardown_removes_what_a_killed_run_left(prefix: str) -> None:
    proc = _hold(prefix, wrapper=False)
    proc.kill()  # kill -9: no finally, no trap
    proc.wait(10)
    assert nothing_left(prefix)["namespaces"]
    env = {**os.environ, "SLEDFLEET_REHEARSE_PREFIX": prefix}
    done = subprocess.run(
        [str(REPO / "services" / "rehearse"), "--teardown"], env=env, capture_output=True,
        text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert nothing_left(prefix) == {}
