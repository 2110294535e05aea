"""poll_select: select.select's results for descriptors select() refuses (past 1,023)."""

from __future__ import annotations

import os
import select
import socket
from collections.abc import Iterator

import paho.mqtt.client as paho_client
import pytest

from edge import paho_fds

FILLER = 1100
"""Descriptors opened first, so the sockets under test get numbers past FD_SETSIZE."""


@pytest.fixture
def high_pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    paho_fds.raise_open_files_limit(FILLER // paho_fds.FDS_PER_AGENT + 50)
    filler = [os.open(os.devnull, os.O_RDONLY) for _ in range(FILLER)]
    a, b = socket.socketpair()
    try:
        assert a.fileno() > 1023
        assert b.fileno() > 1023
        yield a, b
    finally:
        a.close()
        b.close()
        for fd in filler:
            os.close(fd)


def test_stdlib_select_refuses_high_descriptors(high_pair: tuple[socket.socket, ...]) -> None:
    """Why the module exists: what paho 2.2 calls fails on these sockets."""
    with pytest.raises(ValueError, match="out of range"):
        select.select([high_pair[0]], [], [], 0)


def test_poll_select_reports_readable_and_writable_past_1023(
    high_pair: tuple[socket.socket, socket.socket],
) -> None:
    a, b = high_pair
    assert paho_fds.poll_select([a], [], [], 0) == ([], [], [])
    b.send(b"x")
    assert paho_fds.poll_select([a], [], [], 1.0) == ([a], [], [])
    assert paho_fds.poll_select([a, b], [b], [], 0) == ([a], [b], [])


def test_poll_select_hangup_is_readable(high_pair: tuple[socket.socket, socket.socket]) -> None:
    a, b = high_pair
    b.close()
    readable, _, _ = paho_fds.poll_select([a], [], [], 1.0)
    assert readable == [a]
    assert a.recv(1) == b""  # the read then tells: closed


def test_poll_select_errors_like_select() -> None:
    """paho turns TypeError and ValueError into "connection lost": same errors as select."""
    s = socket.socket()
    s.close()  # fileno() is -1
    with pytest.raises(ValueError):
        paho_fds.poll_select([s], [], [], 0)
    with pytest.raises(TypeError):
        paho_fds.poll_select([None], [], [], 0)


def test_install_gives_paho_poll_select_only() -> None:
    paho_fds.install()
    paho_fds.install()  # idempotent
    assert paho_client.select.select is paho_fds.poll_select  # type: ignore[attr-defined]
    assert paho_client.select.POLLIN == select.POLLIN  # type: ignore[attr-defined]
    assert select.select is not paho_fds.poll_select  # the stdlib module is untouched
