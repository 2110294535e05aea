"""Sensor sources: CSV replay and a line protocol over TCP or a serial port.

The simulator lives in ``edge.simulator``. Every source implements
``edge.samples.SensorSource`` and says whether it is ``live`` (samples arrive as they
are taken: the agent estimates the device clock offset from them) or a replay.

**CSV** (``csv:PATH``): a header row, then one row per sample or event::

    t_ns,position_mm,force_left_n,force_right_n,load_kg,event,event_fields
    1763900000000000000,12.5,40.1,38.9,60,,
    1763900000010000000,,41.0,39.2,60,,                 <- empty cell: dropout
    1763900000015000000,,,,,session_started,"{""patient_id"": ""p-17"", ""session_id"": ""s-1""}"

``event``/``event_fields`` may be omitted when a file has no events.

**Line protocol** (``tcp://HOST:PORT`` connects to the device, ``tcp-listen://HOST:PORT``
waits for it, ``serial:/dev/ttyUSB0`` reads a serial port configured beforehand with
``stty``): UTF-8 text, one item per line, ``#`` starts a comment::

    position_mm,force_left_n,force_right_n,load_kg[,t_ns]      a sample
    !session_started {"patient_id": "p-17", "session_id": "s-1"}  an event (JSON fields)

A device without a clock omits ``t_ns``; the source then stamps samples on a nominal
clock (first sample at arrival, then one period apart) and re-anchors it when it drifts
more than ``RESYNC_S`` from the host clock, e.g. after the device paused. Malformed
lines are counted (``bad_lines``) and logged, never fatal.
"""

from __future__ import annotations

import contextlib
import csv
import itertools
import json
import logging
import os
import select
import socket
import statistics
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Final

from edge.samples import Sample, SourceEvent, SourceItem

log = logging.getLogger(__name__)

RESYNC_S: Final = 1.0
"""Nominal clock re-anchored when it is this far from the host clock (line protocol)."""
POLL_S: Final = 0.2
"""How often blocking reads check whether the source was closed."""
RECONNECT_MAX_S: Final = 10.0
MAX_LINE_BYTES: Final = 4096
RATE_PROBE_SAMPLES: Final = 200


def _num(cell: str) -> float | None:
    cell = cell.strip()
    return None if cell == "" else float(cell)


def _event(t_ns: int, etype: str, fields_json: str) -> SourceEvent:
    fields = json.loads(fields_json) if fields_json.strip() else {}
    if not isinstance(fields, dict):
        raise ValueError("event fields must be a JSON object")
    return SourceEvent(t_ns, etype.strip(), fields)


# --- CSV replay ---------------------------------------------------------------------------------


class CsvReplaySource:
    """Replays a recorded CSV, as fast as possible or paced in real time.

    ``restamp`` shifts every time so the first row is *now* (demos, dashboards);
    ``rate_hz`` defaults to the median sample interval of the file's first rows.
    """

    live = False

    def __init__(
        self,
        path: str | Path,
        rate_hz: float | None = None,
        realtime: bool = False,
        restamp: bool = False,
    ) -> None:
        self.path = Path(path)
        self.realtime = realtime
        self.restamp = restamp
        self._closed = threading.Event()
        self.rate_hz = rate_hz if rate_hz is not None else self._probe_rate()

    def _rows(self) -> Iterator[dict[str, str]]:
        with self.path.open(newline="") as f:
            yield from csv.DictReader(f)

    def _probe_rate(self) -> float:
        times: list[int] = []
        for row in self._rows():
            if not (row.get("event") or "").strip():
                times.append(int(row["t_ns"]))
            if len(times) >= RATE_PROBE_SAMPLES:
                break
        deltas = [b - a for a, b in itertools.pairwise(times) if b > a]
        if not deltas:
            raise ValueError(f"{self.path}: cannot infer the sample rate; pass rate_hz")
        return round(1e9 / statistics.median(deltas), 6)

    def items(self) -> Iterator[SourceItem]:
        shift = 0
        start_wall = time.monotonic_ns()
        first_t: int | None = None
        for row in self._rows():
            if self._closed.is_set():
                return
            t_ns = int(row["t_ns"])
            if first_t is None:
                first_t = t_ns
                shift = time.time_ns() - t_ns if self.restamp else 0
            if self.realtime:
                due = start_wall + (t_ns - first_t)
                delay = (due - time.monotonic_ns()) / 1e9
                if delay > 0 and self._closed.wait(delay):
                    return
            etype = (row.get("event") or "").strip()
            if etype:
                yield _event(t_ns + shift, etype, row.get("event_fields") or "")
            else:
                yield Sample(
                    t_ns + shift,
                    _num(row["position_mm"]),
                    _num(row["force_left_n"]),
                    _num(row["force_right_n"]),
                    float(row["load_kg"]),
                )

    def close(self) -> None:
        self._closed.set()


# --- line protocol --------------------------------------------------------------------------------


class LineParser:
    """Parses line-protocol lines; stamps clockless samples on a nominal clock. Pure."""

    def __init__(self, rate_hz: float) -> None:
        self.period_ns = round(1e9 / rate_hz)
        self._anchor_ns: int | None = None
        self._n = 0
        self.bad_lines = 0

    def parse(self, line: str, host_ns: int) -> SourceItem | None:
        line = line.strip()
        if not line or line.startswith("#"):
            return None
        if line.startswith("!"):
            etype, _, rest = line[1:].partition(" ")
            return _event(self._stamp(None, host_ns, advance=False), etype, rest)
        cells = line.split(",")
        if len(cells) not in (4, 5):
            raise ValueError(f"expected 4 or 5 fields, got {len(cells)}")
        t_ns = int(cells[4]) if len(cells) == 5 and cells[4].strip() else None
        load = _num(cells[3])
        if load is None:
            raise ValueError("load_kg is required")
        return Sample(
            self._stamp(t_ns, host_ns, advance=True),
            _num(cells[0]),
            _num(cells[1]),
            _num(cells[2]),
            load,
        )

    def _stamp(self, t_ns: int | None, host_ns: int, advance: bool) -> int:
        if t_ns is not None:
            return t_ns
        nominal = None if self._anchor_ns is None else self._anchor_ns + self._n * self.period_ns
        if nominal is None or abs(host_ns - nominal) > RESYNC_S * 1e9:
            self._anchor_ns, self._n, nominal = host_ns, 0, host_ns
        if advance:
            self._n += 1
        return nominal

    def feed(self, line: str, host_ns: int) -> SourceItem | None:
        """``parse`` that counts and logs malformed lines instead of raising."""
        try:
            return self.parse(line, host_ns)
        except (ValueError, KeyError) as exc:
            self.bad_lines += 1
            if self.bad_lines <= 5 or self.bad_lines % 1000 == 0:
                log.warning("bad line #%s %r: %s", self.bad_lines, line[:80], exc)
            return None


class _LineSource:
    """A line-protocol source reading a file descriptor (socket or tty) with select()."""

    live = True

    def __init__(self, rate_hz: float) -> None:
        self.rate_hz = rate_hz
        self.parser = LineParser(rate_hz)
        self._closed = threading.Event()

    @property
    def bad_lines(self) -> int:
        return self.parser.bad_lines

    def _connections(self) -> Iterator[tuple[int, object]]:
        """Yield (fd, handle) for each connection to read until it ends."""
        raise NotImplementedError

    def _release(self, handle: object) -> None:
        raise NotImplementedError

    def items(self) -> Iterator[SourceItem]:
        for fd, handle in self._connections():
            try:
                yield from self._read(fd)
            finally:
                self._release(handle)
            if self._closed.is_set():
                return

    def _read(self, fd: int) -> Iterator[SourceItem]:
        buf = b""
        while not self._closed.is_set():
            ready, _, _ = select.select([fd], [], [], POLL_S)
            if not ready:
                continue
            try:
                chunk = os.read(fd, 65536)
            except BlockingIOError:
                continue
            except OSError as exc:  # device unplugged, pty closed, connection reset
                log.warning("line source read failed: %s", exc)
                return
            if not chunk:
                return  # peer closed / end of file
            buf += chunk
            *lines, buf = buf.split(b"\n")
            if len(buf) > MAX_LINE_BYTES:
                self.parser.bad_lines += 1
                buf = b""
            now = time.time_ns()
            for raw in lines:
                item = self.parser.feed(raw.decode("utf-8", "replace"), now)
                if item is not None:
                    yield item

    def close(self) -> None:
        self._closed.set()


class TcpLineSource(_LineSource):
    """Connects to a device (or a serial-to-Ethernet converter); reconnects with backoff."""

    def __init__(self, host: str, port: int, rate_hz: float) -> None:
        super().__init__(rate_hz)
        self.address = (host, port)

    def _connections(self) -> Iterator[tuple[int, object]]:
        delay = 0.5
        while not self._closed.is_set():
            try:
                sock = socket.create_connection(self.address, timeout=5)
            except OSError as exc:
                log.warning("line source %s:%s: %s; retry in %.1f s", *self.address, exc, delay)
                self._closed.wait(delay)
                delay = min(delay * 2, RECONNECT_MAX_S)
                continue
            delay = 0.5
            yield sock.fileno(), sock

    def _release(self, handle: object) -> None:
        if isinstance(handle, socket.socket):
            handle.close()


class TcpListenLineSource(_LineSource):
    """Waits for the device to connect (one connection at a time)."""

    def __init__(self, host: str, port: int, rate_hz: float) -> None:
        super().__init__(rate_hz)
        self.server = socket.create_server((host, port), reuse_port=False)
        self.address = self.server.getsockname()[:2]

    def _connections(self) -> Iterator[tuple[int, object]]:
        while not self._closed.is_set():
            ready, _, _ = select.select([self.server], [], [], POLL_S)
            if ready:
                conn, peer = self.server.accept()
                log.info("line source: device connected from %s", peer)
                yield conn.fileno(), conn

    def _release(self, handle: object) -> None:
        if isinstance(handle, socket.socket):
            handle.close()

    def close(self) -> None:
        super().close()
        with contextlib.suppress(OSError):
            self.server.close()


class SerialLineSource(_LineSource):
    """Reads a serial port (or any tty/FIFO) configured beforehand, e.g.
    ``stty -F /dev/ttyUSB0 115200 raw``; reopens it when the device goes away."""

    def __init__(self, path: str, rate_hz: float) -> None:
        super().__init__(rate_hz)
        self.path = path

    def _connections(self) -> Iterator[tuple[int, object]]:
        delay = 0.5
        while not self._closed.is_set():
            try:
                fd = os.open(self.path, os.O_RDONLY | os.O_NOCTTY | os.O_NONBLOCK)
            except OSError as exc:
                log.warning("serial %s: %s; retry in %.1f s", self.path, exc, delay)
                self._closed.wait(delay)
                delay = min(delay * 2, RECONNECT_MAX_S)
                continue
            delay = 0.5
            yield fd, fd

    def _release(self, handle: object) -> None:
        if isinstance(handle, int):
            with contextlib.suppress(OSError):
                os.close(handle)


# --- factory ---------------------------------------------------------------------------


def open_source(
    spec: str, rate_hz: float | None = None, realtime: bool = False, restamp: bool = False
) -> CsvReplaySource | _LineSource:
    """A source from its spec: ``csv:PATH``, ``tcp://H:P``, ``tcp-listen://H:P``, ``serial:DEV``."""
    if spec.startswith("csv:"):
        return CsvReplaySource(spec[4:], rate_hz, realtime, restamp)
    rate = rate_hz or 100.0
    for prefix, cls in (("tcp://", TcpLineSource), ("tcp-listen://", TcpListenLineSource)):
        if spec.startswith(prefix):
            host, _, port = spec[len(prefix) :].rpartition(":")
            return cls(host or "127.0.0.1", int(port), rate)
    if spec.startswith("serial:"):
        return SerialLineSource(spec[7:], rate)
    raise ValueError(
        f"unknown source {spec!r}: use csv:PATH, tcp://H:P, tcp-listen://H:P, serial:DEV"
    )
