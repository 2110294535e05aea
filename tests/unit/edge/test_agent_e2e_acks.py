"""End-to-end acknowledgement on the agent (delete_on=ack), against a fake link: PUBACK
keeps rows, a bridge's ack deletes exactly its seqs, reconnects and timeouts re-send the
unconfirmed rows oldest first, the bound still holds; and the pure ResendClock."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest
from edge_synth import T0_NS
from test_agent import FakeLink, feed, make_agent

from edge import contract
from edge.acks import ResendClock, parse_ack
from edge.agent import EdgeAgent
from edge.outbox import NewRow, Outbox
from edge.samples import SourceEvent


def ack(frames: list[tuple[int, int]], events: list[tuple[int, int]] = ()) -> tuple[str, bytes]:  # type: ignore[assignment]
    payload = contract.ack_payload("c1", "m1", "bridge-x", frames, list(events), 1)
    return contract.ack_topic("c1", "m1"), contract.encode(payload)


def e2e(tmp_path: Path, **kw: Any) -> tuple[EdgeAgent, FakeLink]:
    agent, link = make_agent(tmp_path, delete_on="ack", **kw)
    agent.start()
    return agent, link


def seqs(link: FakeLink) -> list[int]:
    return [f["seq"] for f in link.payloads("telemetry")]


def outbox_seqs(agent: EdgeAgent) -> list[int]:
    rows = agent.outbox.after(0, 10_000)
    return [contract.decode(r.payload)["seq"] for r in rows if r.kind == "telemetry"]


def test_puback_alone_keeps_rows_and_the_ack_deletes_its_seqs(tmp_path: Path) -> None:
    agent, link = e2e(tmp_path)
    feed(agent, 260)
    agent.pump()
    assert seqs(link) == [0, 1, 2, 3, 4]
    link.ack_all()
    agent.pump()
    assert agent.acked == 5
    assert outbox_seqs(agent) == [0, 1, 2, 3, 4]  # the broker's PUBACK deletes nothing
    link.messages.append(ack([(0, 1), (3, 3)]))
    agent.pump()
    assert outbox_seqs(agent) == [2, 4]
    assert agent.confirmed == 3
    assert agent.outbox.stats().rows == agent.outbox.rows == 2
    # a second bridge of the share group acknowledges the rest
    link.messages.append(ack([(2, 2), (4, 4)]))
    agent.pump()
    assert outbox_seqs(agent) == []
    assert agent.outbox.stats().bytes == 0


def test_events_are_acknowledged_by_their_own_seq_counter(tmp_path: Path) -> None:
    agent, link = e2e(tmp_path)
    agent.feed(SourceEvent(T0_NS, "session_started", {"patient_id": "p1", "session_id": "s1"}))
    feed(agent, 110, start=1)
    agent.pump()
    link.ack_all()
    assert [r.kind for r in agent.outbox.after(0, 100)] == ["event", "telemetry", "telemetry"]
    link.messages.append(ack([(0, 100)], []))
    agent.pump()
    assert [r.kind for r in agent.outbox.after(0, 100)] == ["event"]  # event seq 0 stays
    link.messages.append(ack([], [(0, 0)]))
    agent.pump()
    assert agent.outbox.after(0, 100) == []


def test_an_ack_never_deletes_a_row_not_yet_sent(tmp_path: Path) -> None:
    agent, link = e2e(tmp_path, max_inflight=2)
    feed(agent, 260)
    agent.pump()
    assert seqs(link) == [0, 1]
    link.messages.append(ack([(0, 4)]))  # e.g. a stale retained ack: rows 2..4 unsent
    agent.pump()
    assert outbox_seqs(agent) == [2, 3, 4]


def test_malformed_or_foreign_acks_are_counted_and_ignored(tmp_path: Path) -> None:
    agent, link = e2e(tmp_path)
    feed(agent, 110)
    agent.pump()
    other = contract.ack_payload("c1", "m2", "b", [(0, 9)], [], 1)
    link.messages += [
        (contract.ack_topic("c1", "m1"), b"{not json"),
        (contract.ack_topic("c1", "m1"), contract.encode(other)),
        (
            contract.ack_topic("c1", "m1"),
            b'{"v":1,"clinic_id":"c1","machine_id":"m1","frames":[[3,1]]}',
        ),
    ]
    agent.pump()
    assert agent.bad_acks == 3
    assert outbox_seqs(agent) == [0, 1]


def test_reconnect_resends_every_unconfirmed_row_oldest_first(tmp_path: Path) -> None:
    agent, link = e2e(tmp_path)
    feed(agent, 260)
    agent.pump()
    link.ack_all()
    agent.pump()
    link.messages.append(ack([(0, 1)]))
    agent.pump()
    link.drop()
    feed(agent, 100, start=260)  # 2 more frames while offline
    agent.pump()
    link.sent.clear()
    link.connect()
    agent.pump()
    tele = link.payloads("telemetry")
    assert [(f["seq"], f["replayed"]) for f in tele] == [(s, True) for s in range(2, 7)]


def test_timeout_resends_unconfirmed_rows_with_backoff(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = [1000.0]
    monkeypatch.setattr("edge.agent.time.monotonic", lambda: now[0])
    agent, link = e2e(tmp_path, ack_timeout_s=10.0, ack_timeout_max_s=40.0)
    feed(agent, 160)
    agent.pump()
    link.ack_all()
    agent.pump()
    link.sent.clear()
    now[0] += 9.0
    agent.pump()
    assert seqs(link) == []  # not yet
    now[0] += 1.5
    agent.pump()
    assert seqs(link) == [0, 1, 2]  # oldest first, flagged replayed
    assert all(f["replayed"] for f in link.payloads("telemetry"))
    link.ack_all()
    link.sent.clear()
    now[0] += 15.0  # the wait doubled to 20 s
    agent.pump()
    assert seqs(link) == []
    now[0] += 6.0
    agent.pump()
    assert seqs(link) == [0, 1, 2]
    # progress resets the wait: seq 0 confirmed, 1 and 2 are due again after 10 s
    link.ack_all()
    link.sent.clear()
    link.messages.append(ack([(0, 0)]))
    agent.pump()
    now[0] += 10.5
    agent.pump()
    assert seqs(link) == [1, 2]


def test_full_outbox_drops_oldest_unconfirmed_frames_but_not_those_in_flight(
    tmp_path: Path,
) -> None:
    agent, link = e2e(tmp_path, outbox_max_rows=6, max_inflight=2)
    feed(agent, 210)
    agent.pump()
    link.ack_all()
    agent.pump()  # seqs 0..3 sent (two windows), none confirmed
    feed(agent, 200, start=210)  # 4 more frames: the outbox is over its bound
    agent.pump()
    left = outbox_seqs(agent)
    assert left[-4:] == [4, 5, 6, 7][-len(left[-4:]) :]
    assert agent.outbox.stats().rows <= 6 + 2
    assert agent.outbox.stats().dropped_frames >= 1
    assert 0 not in left  # the oldest unconfirmed frame went first


def test_backlog_counts_rows_waiting_for_their_ack(tmp_path: Path) -> None:
    agent, link = e2e(tmp_path)
    feed(agent, 260)
    agent.pump()
    link.ack_all()
    agent.pump()
    assert agent.backlog() == 5  # a replay source waits for Kafka, not just the broker
    link.messages.append(ack([(0, 4)]))
    agent.pump()
    assert agent.backlog() == 0


def test_puback_mode_is_unchanged(tmp_path: Path) -> None:
    agent, link = make_agent(tmp_path)
    agent.start()
    feed(agent, 260)
    agent.pump()
    link.ack_all()
    link.messages.append(ack([(0, 4)]))
    agent.pump()
    assert agent.outbox.stats().rows == 0
    assert agent.confirmed == 0


def test_unknown_delete_on_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="DELETE_ON"):
        make_agent(tmp_path, delete_on="never")


def test_old_outbox_files_get_their_seq_column(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    db = sqlite3.connect(path)
    db.executescript(
        "CREATE TABLE outbox (id INTEGER PRIMARY KEY AUTOINCREMENT, kind TEXT NOT NULL, "
        "topic TEXT NOT NULL, payload BLOB NOT NULL, qos INTEGER NOT NULL, "
        "retain INTEGER NOT NULL, samples INTEGER NOT NULL);"
    )
    db.execute(
        "INSERT INTO outbox(kind, topic, payload, qos, retain, samples) VALUES (?,?,?,?,?,?)",
        ("telemetry", "t", b'{"seq":7,"replayed":false}', 1, 0, 10),
    )
    db.commit()
    db.close()
    box = Outbox(path)
    assert box.delete_acked([("telemetry", [(7, 7)])], upto_id=10) == (1, 1)
    box.store([NewRow("telemetry", "t", b"{}", seq=8)])
    assert box.delete_acked([("telemetry", [(8, 8)])], upto_id=10) == (1, 2)
    box.close()


def test_parse_ack_names_row_kinds() -> None:
    _, raw = ack([(0, 3)], [(1, 1)])
    assert parse_ack(raw, "c1", "m1") == [("telemetry", [(0, 3)]), ("event", [(1, 1)])]
    with pytest.raises(contract.ContractError):
        parse_ack(raw, "c1", "m9")


def test_resend_clock() -> None:
    clock = ResendClock(10.0, 25.0)
    assert not clock.due(None, 0.0)
    clock.sent(5, 0.0)
    clock.sent(9, 4.0)
    assert not clock.due(1, 9.9)
    assert clock.due(1, 10.0)  # row 1 handed at t=0
    assert clock.current_s == 20.0
    clock.rewound()
    assert not clock.due(1, 100.0)  # not re-sent yet since the rewind
    clock.sent(9, 100.0)
    assert not clock.due(1, 119.0)
    assert clock.due(1, 120.0)
    assert clock.current_s == 25.0  # capped
    clock.sent(12, 121.0)
    assert not clock.due(10, 125.0)  # progress: back to 10 s; row 10 was handed at 121
    assert clock.current_s == 10.0
    assert clock.due(10, 131.0)
    assert not clock.due(None, 132.0)
    assert clock.current_s == 10.0
    with pytest.raises(ValueError):
        ResendClock(0, 1)


def test_a_hole_is_sent_again_after_the_short_hole_wait(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = [1000.0]
    monkeypatch.setattr("edge.agent.time.monotonic", lambda: now[0])
    agent, link = e2e(tmp_path, ack_timeout_s=30.0, ack_hole_s=2.0)
    feed(agent, 260)
    agent.pump()
    link.ack_all()
    link.messages.append(ack([(0, 0), (2, 4)]))  # seq 1 lost on the way
    agent.pump()
    link.sent.clear()
    now[0] += 1.5
    agent.pump()
    assert seqs(link) == []
    now[0] += 1.0
    agent.pump()
    assert seqs(link) == [1]  # long before the 30 s timeout


def test_resend_clock_hole_wait_and_backoff() -> None:
    clock = ResendClock(30.0, 40.0, hole_s=2.0)
    clock.sent(5, 0.0)
    assert not clock.due(1, 1.9, hole=True)
    assert clock.due(1, 2.0, hole=True)
    assert clock.hole_current_s == 4.0
    clock.rewound()
    clock.sent(5, 2.0)
    assert not clock.due(1, 5.9, hole=True)
    assert clock.due(1, 6.0, hole=True)
    clock.rewound()
    clock.sent(9, 6.0)
    assert not clock.due(3, 7.0, hole=True)  # progress: back to 2 s (row 3 sent at 6.0)
    assert clock.hole_current_s == 2.0
    assert clock.due(3, 8.0, hole=True)
    assert not clock.due(3, 8.5)  # no hole: the 30 s timeout applies


def test_unconfirmed_rows_are_capped_so_frames_stay_inside_the_reorder_window(
    tmp_path: Path,
) -> None:
    agent, link = e2e(tmp_path, max_unconfirmed_rows=3, ack_hole_s=600.0)
    feed(agent, 560)
    agent.pump()
    assert seqs(link) == [0, 1, 2]
    link.ack_all()
    agent.pump()
    assert seqs(link) == [0, 1, 2]  # the broker has them; nobody confirmed them yet
    link.messages.append(ack([(0, 0), (2, 2)]))  # seq 1 held by a killed bridge
    agent.pump()
    assert seqs(link) == [0, 1, 2, 3]  # at most 3 rows from seq 1 on
    assert outbox_seqs(agent)[:2] == [1, 3]  # 1 and 3 wait for their ack
    # the other bridge confirms everything after seq 1: still nothing past 1 + 3
    link.ack_all()
    link.messages.append(ack([(3, 3)]))
    agent.pump()
    assert seqs(link) == [0, 1, 2, 3]
    link.messages.append(ack([(1, 1)]))  # the held frame arrives at last
    agent.pump()
    assert seqs(link) == [0, 1, 2, 3, 4, 5, 6]
