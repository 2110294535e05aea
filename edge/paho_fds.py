"""Many MQTT clients in one process: paho past file descriptor 1,023.

paho-mqtt 2.2 (the latest release) waits on its sockets with ``select.select()``, which
refuses descriptors past ``FD_SETSIZE`` - 1 (1,023): paho turns the ``ValueError`` into
"connection lost" and the client never completes its CONNECT. One edge process holds a
socket, a wake-up socket pair and SQLite files per machine, so ~150 agents in one process
were the ceiling (``sledfleet edge run --machines N``, ``sledfleet simulate --publish``,
the capacity benchmark).

:func:`install` gives paho's client module a ``select`` of its own whose ``select()`` is
built on ``poll()``, which has no such limit (same arguments, same results, same errors for
closed or invalid sockets). Only paho's reference to the module changes; the standard
``select`` module is untouched. :func:`raise_open_files_limit` lifts the soft
``RLIMIT_NOFILE`` (1,024 on many systems) towards the hard limit for large fleets.
"""

from __future__ import annotations

import errno
import logging
import resource
import select
from collections.abc import Sequence
from typing import Any

log = logging.getLogger(__name__)

_READ = select.POLLIN | select.POLLPRI
_WRITE = select.POLLOUT
_FAIL = select.POLLERR | select.POLLHUP
"""select() reports a socket in error or hung up as readable and writable (the next
read or write then tells what happened): so does :func:`poll_select`."""
FDS_PER_AGENT = 8
"""Descriptors one edge agent holds: MQTT socket, paho's wake-up pair, the outbox's
SQLite database, journal and WAL files, with room to spare."""


def _fd(obj: Any) -> int:
    if isinstance(obj, int):
        fd = obj
    else:
        fileno = getattr(obj, "fileno", None)
        if fileno is None:
            raise TypeError(f"argument must be an int, or have a fileno() method: {obj!r}")
        fd = int(fileno())
    if fd < 0:
        raise ValueError(f"file descriptor cannot be a negative integer ({fd})")
    return fd


def poll_select(
    rlist: Sequence[Any], wlist: Sequence[Any], xlist: Sequence[Any], timeout: float | None = None
) -> tuple[list[Any], list[Any], list[Any]]:
    """``select.select`` on ``poll()``: any descriptor number; ``xlist`` is not supported
    (paho passes an empty one)."""
    if xlist:
        raise ValueError("poll_select does not wait for exceptional conditions")
    masks: dict[int, int] = {}
    objs: dict[int, tuple[list[Any], list[Any]]] = {}
    for obj in rlist:
        fd = _fd(obj)
        masks[fd] = masks.get(fd, 0) | _READ
        objs.setdefault(fd, ([], []))[0].append(obj)
    for obj in wlist:
        fd = _fd(obj)
        masks[fd] = masks.get(fd, 0) | _WRITE
        objs.setdefault(fd, ([], []))[1].append(obj)
    poller = select.poll()
    for fd, mask in masks.items():
        poller.register(fd, mask)
    ms = None if timeout is None else max(0, round(timeout * 1000))
    readable: list[Any] = []
    writable: list[Any] = []
    for fd, revents in poller.poll(ms):
        if revents & select.POLLNVAL:
            raise OSError(errno.EBADF, "Bad file descriptor")
        if revents & (_READ | _FAIL):
            readable.extend(objs[fd][0])
        if revents & (_WRITE | _FAIL):
            writable.extend(objs[fd][1])
    return readable, writable, []


class _PollSelectModule:
    """What paho's client module sees as ``select``: the real module, but ``select()``
    on ``poll()``."""

    select = staticmethod(poll_select)

    def __getattr__(self, name: str) -> Any:
        return getattr(select, name)


def install() -> None:
    """Make every paho client of this process wait with ``poll()`` (idempotent)."""
    import paho.mqtt.client as paho_client

    if not isinstance(getattr(paho_client, "select", None), _PollSelectModule):
        setattr(paho_client, "select", _PollSelectModule())  # noqa: B010 (not exported)


def raise_open_files_limit(agents: int) -> None:
    """Lift the soft descriptor limit so ``agents`` edge agents fit (up to the hard limit)."""
    want = 64 + agents * FDS_PER_AGENT
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < want:
        new = want if hard == resource.RLIM_INFINITY else min(want, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (new, hard))
        if new < want:
            log.warning(
                "%d agents need ~%d file descriptors; the hard limit is %d (ulimit -Hn)",
                agents,
                want,
                hard,
            )
