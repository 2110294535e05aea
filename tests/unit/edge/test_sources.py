"""CSV replay and the line protocol (parser, TCP both ways, serial via a pty). Loopback only."""

from __future__ import annotations

import os
import pty
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from edge_synth import T0_NS

from edge.samples import Sample, SourceEvent, SourceItem
from edge.sources import (
    CsvReplaySource,
    LineParser,
    SerialLineSource,
    TcpLineSource,
    TcpListenLineSource,
    open_source,
)

P = 10_000_000


def write_csv(path: Path) -> Path:
    lines = ["t_ns,position_mm,force_left_n,force_right_n,load_kg,event,event_fields"]
    lines.append(
        f'{T0_NS},,,,,session_started,"{{""patient_id"": ""p-1"", ""session_id"": ""s-1""}}"'
    )
    for i in range(30):
        pos = "" if i == 5 else f"{100 + i}.5"
        lines.append(f"{T0_NS + i * P},{pos},300,290.5,40,,")
    path.write_text("\n".join(lines) + "\n")
    return path


def test_csv_replay_yields_samples_events_and_dropouts(tmp_path: Path) -> None:
    src = CsvReplaySource(write_csv(tmp_path / "r.csv"))
    assert src.rate_hz == 100.0
    assert src.live is False
    items = list(src.items())
    assert isinstance(items[0], SourceEvent)
    assert items[0].fields == {"patient_id": "p-1", "session_id": "s-1"}
    samples = [i for i in items if isinstance(i, Sample)]
    assert len(samples) == 30
    assert samples[5].position_mm is None
    assert samples[6] == Sample(T0_NS + 6 * P, 106.5, 300.0, 290.5, 40.0)


def test_csv_restamp_and_realtime(tmp_path: Path) -> None:
    src = open_source(f"csv:{write_csv(tmp_path / 'r.csv')}", realtime=True, restamp=True)
    t0 = time.monotonic()
    items = list(src.items())
    assert time.monotonic() - t0 >= 0.25  # 29 periods of 10 ms
    assert abs(items[0].t_ns - time.time_ns()) < 5 * 10**9
    assert items[-1].t_ns - items[1].t_ns == 29 * P


def test_csv_without_event_columns(tmp_path: Path) -> None:
    path = tmp_path / "plain.csv"
    rows = [f"{T0_NS + i * 20_000_000},1,2,3,10" for i in range(5)]
    path.write_text("t_ns,position_mm,force_left_n,force_right_n,load_kg\n" + "\n".join(rows))
    src = CsvReplaySource(path)
    assert src.rate_hz == 50.0
    assert len(list(src.items())) == 5


def test_line_parser_samples_events_and_bad_lines() -> None:
    lp = LineParser(100.0)
    host = T0_NS
    assert lp.feed("# comment", host) is None
    assert lp.feed("", host) is None
    a = lp.feed("10.5,300,290,40", host)
    b = lp.feed("11.5,,290,40", host + 3 * P)  # arrives late: stamped on the nominal clock
    assert isinstance(a, Sample)
    assert isinstance(b, Sample)
    assert (a.t_ns, b.t_ns) == (T0_NS, T0_NS + P)
    assert b.force_left_n is None
    c = lp.feed(f"1,2,3,40,{T0_NS + 777}", host)
    assert isinstance(c, Sample)
    assert c.t_ns == T0_NS + 777
    e = lp.feed('!load_changed {"load_kg": 45}', host)
    assert isinstance(e, SourceEvent)
    assert e.fields == {"load_kg": 45}
    for bad in ("1,2", "a,b,c,d", "1,2,3,", '!fault ["x"]', "!fault {"):
        assert lp.feed(bad, host) is None
    assert lp.bad_lines == 5


def test_line_parser_resyncs_after_a_pause() -> None:
    lp = LineParser(100.0)
    lp.feed("1,2,3,4", T0_NS)
    late = lp.feed("1,2,3,4", T0_NS + 5 * 10**9)
    assert isinstance(late, Sample)
    assert late.t_ns == T0_NS + 5 * 10**9


def take(items: Iterator[SourceItem], n: int, out: list[SourceItem]) -> None:
    for item in items:
        out.append(item)
        if len(out) == n:
            break


def run_in_thread(
    src: TcpLineSource | TcpListenLineSource | SerialLineSource, n: int
) -> tuple[threading.Thread, list[SourceItem]]:
    result: list[SourceItem] = []
    t = threading.Thread(target=take, args=(src.items(), n, result), daemon=True)
    t.start()
    return t, result


def test_tcp_listen_source_reads_a_device(tmp_path: Path) -> None:
    src = TcpListenLineSource("127.0.0.1", 0, 100.0)
    t, result = run_in_thread(src, 3)
    with socket.create_connection(src.address) as dev:
        dev.sendall(b"1,2,3,40\n4,5,")
        dev.sendall(b'6,40\nbroken\n!fault {"code": "E1"}\n')
        t.join(5)
    src.close()
    assert [type(i).__name__ for i in result] == ["Sample", "Sample", "SourceEvent"]
    assert src.bad_lines == 1


def test_tcp_client_source_connects_and_closes(tmp_path: Path) -> None:
    server = socket.create_server(("127.0.0.1", 0))
    src = open_source(f"tcp://127.0.0.1:{server.getsockname()[1]}")
    assert isinstance(src, TcpLineSource)
    t, result = run_in_thread(src, 100)
    conn, _ = server.accept()
    conn.sendall(b"1,2,3,40\n" * 2)
    deadline = time.monotonic() + 5
    while len(result) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    src.close()  # unblocks the reader within POLL_S
    t.join(2)
    assert not t.is_alive()
    assert len(result) == 2
    conn.close()
    server.close()


def test_serial_source_reads_a_tty() -> None:
    master, slave = pty.openpty()
    src = SerialLineSource(os.ttyname(slave), 100.0)
    t, result = run_in_thread(src, 2)
    os.write(master, b"1,2,3,40\r\n5,6,7,40\n")
    t.join(5)
    src.close()
    os.close(master)
    os.close(slave)
    assert [i.position_mm for i in result if isinstance(i, Sample)] == [1.0, 5.0]


def test_unknown_source_spec() -> None:
    with pytest.raises(ValueError, match="unknown source"):
        open_source("modbus://x")
