"""The SQLite outbox: persistence, batching, bounds policy, replayed flag."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from edge.outbox import NewRow, Outbox, OutboxInUse, replayed_bytes


def frame(i: int, size: int = 100) -> NewRow:
    body = b'{"seq":%d,"pad":"%s","replayed":false}' % (i, b"x" * size)
    return NewRow("telemetry", "sledfleet/v1/c/m/telemetry", body, samples=50)


def event(i: int) -> NewRow:
    return NewRow("event", "sledfleet/v1/c/m/event", b'{"seq":%d,"replayed":false}' % i)


def test_rows_and_meta_survive_reopen(tmp_path: Path) -> None:
    ob = Outbox(tmp_path / "o.db")
    ob.store([frame(0), frame(1), event(0)], next_seq=2, next_event_seq=1)
    ob.close()
    ob = Outbox(tmp_path / "o.db")
    rows = ob.after(0, 10)
    assert [r.kind for r in rows] == ["telemetry", "telemetry", "event"]
    assert (ob.meta("next_seq"), ob.meta("next_event_seq")) == (2, 1)
    assert ob.stats().rows == 3
    assert ob.stats().bytes == sum(len(r.payload) for r in rows)
    assert ob._db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_after_and_delete_keep_order_and_counts(tmp_path: Path) -> None:
    ob = Outbox(tmp_path / "o.db")
    ob.store(frame(i) for i in range(10))
    first = ob.after(0, 4)
    assert [r.id for r in first] == [1, 2, 3, 4]
    assert [r.id for r in ob.after(4, 100)] == [5, 6, 7, 8, 9, 10]
    ob.delete([1, 2, 3, 99])
    assert ob.stats().rows == 7
    assert [r.id for r in ob.after(0, 2)] == [4, 5]
    assert [r.id for r in ob.by_ids({9, 4, 1})] == [4, 9]
    assert ob.max_id() == 10


def test_full_outbox_drops_oldest_unsent_telemetry_never_events(tmp_path: Path) -> None:
    ob = Outbox(tmp_path / "o.db", max_rows=5)
    ob.store([event(0), frame(0), frame(1), frame(2), event(1)])
    dropped = ob.store([frame(3), frame(4)], protect_upto=2)  # row 2 (frame 0) is in flight
    assert dropped == 2
    kinds_seqs = [(r.kind, r.payload.split(b",")[0]) for r in ob.after(0, 100)]
    assert kinds_seqs == [
        ("event", b'{"seq":0'),
        ("telemetry", b'{"seq":0'),  # protected: already handed to MQTT
        ("event", b'{"seq":1'),
        ("telemetry", b'{"seq":3'),
        ("telemetry", b'{"seq":4'),
    ]
    st = ob.stats()
    assert (st.rows, st.dropped_frames, st.dropped_samples) == (5, 2, 100)
    ob.close()
    assert Outbox(tmp_path / "o.db").stats().dropped_frames == 2  # persisted


def test_byte_bound_is_enforced(tmp_path: Path) -> None:
    ob = Outbox(tmp_path / "o.db", max_bytes=1000)
    for i in range(20):
        ob.store([frame(i, size=200)])
    st = ob.stats()
    assert st.bytes <= 1000
    assert st.rows + st.dropped_frames == 20
    assert ob.after(0, 1)[0].payload.startswith(b'{"seq":%d,' % st.dropped_frames)


def test_events_alone_may_exceed_the_bound(tmp_path: Path) -> None:
    ob = Outbox(tmp_path / "o.db", max_rows=2)
    ob.store([event(i) for i in range(4)])
    assert ob.stats().rows == 4
    assert ob.stats().dropped_frames == 0


def test_replayed_flag_flips_only_the_trailing_key() -> None:
    assert replayed_bytes(b'{"a":"\\"replayed\\":false","replayed":false}') == (
        b'{"a":"\\"replayed\\":false","replayed":true}'
    )
    assert replayed_bytes(b'{"status":"online"}') == b'{"status":"online"}'


def test_failed_transaction_rolls_back(tmp_path: Path) -> None:
    ob = Outbox(tmp_path / "o.db")
    with pytest.raises(sqlite3.ProgrammingError):
        ob.store([NewRow("telemetry", "t", object())])  # type: ignore[arg-type]
    assert ob.max_id() == 0


def test_bad_settings_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        Outbox(tmp_path / "o.db", synchronous="EXTRA")
    with pytest.raises(ValueError):
        Outbox(tmp_path / "o.db", max_rows=0)


def test_one_agent_per_outbox(tmp_path: Path) -> None:
    ob = Outbox(tmp_path / "o.db")
    with pytest.raises(OutboxInUse):
        Outbox(tmp_path / "o.db")
    ob.close()
    Outbox(tmp_path / "o.db").close()
