"""The bridge's end-to-end ack bookkeeping (pure): which records acknowledge which seqs,
ranges coalesced per machine, the contiguous run of one bridge, the split of big sets, and
the publisher's message format (decoded by the agent's own parser)."""

from __future__ import annotations

import itertools
import json
import random
from importlib import resources

import pytest
from frames import event, state, telemetry
from jsonschema import Draft202012Validator

from edge.acks import parse_ack
from edge.contract import ContractError, ack_topic, encode, validate_ack
from stream.bridge.ack_out import AckPublisher
from stream.bridge.acks import Ack, AckRef, AckTracker, RangeSet, dead_ack_ref
from stream.bridge.core import route

KW = {"prefix": "", "bridge_id": "b1", "dead_letter_raw_limit": 1 << 20}


def test_valid_frames_and_events_carry_their_seq_state_does_not() -> None:
    t = route("sledfleet/v1/c1/m1/telemetry", encode(telemetry(seq=7)), 1, **KW)
    e = route("sledfleet/v1/c1/m1/event", encode(event(seq=3)), 1, **KW)
    s = route("sledfleet/v1/c1/m1/state", encode(state()), 1, **KW)
    assert t.ack == AckRef("c1", "m1", "frames", 7)
    assert e.ack == AckRef("c1", "m1", "events", 3)
    assert s.ack is None


def test_slow_path_valid_message_carries_its_seq_too() -> None:
    raw = encode(telemetry(seq=9)).replace(b'"v":1', b'"v" : 1')  # still JSON, still valid
    record = route("sledfleet/v1/c1/m1/telemetry", raw, 1, **KW)
    assert not record.dead
    assert record.ack == AckRef("c1", "m1", "frames", 9)


def test_dead_letters_are_acknowledged_when_topic_and_seq_say_whose() -> None:
    bad = telemetry(seq=5)
    bad["load_kg"] = 9999  # out of range
    record = route("sledfleet/v1/c1/m1/telemetry", encode(bad), 1, **KW)
    assert record.dead
    assert record.ack is None
    assert dead_ack_ref("sledfleet/v1/c1/m1/telemetry", encode(bad)) == AckRef(
        "c1", "m1", "frames", 5
    )
    assert dead_ack_ref("sledfleet/v1/c1/m1/telemetry", b"{not json") is None
    assert dead_ack_ref("not/a/topic", encode(bad)) is None
    assert dead_ack_ref("sledfleet/v1/c1/m1/telemetry", b'{"seq": -1}') is None
    assert dead_ack_ref("sledfleet/v1/c1/m1/telemetry", b'{"seq": true}') is None


def test_rangeset_matches_a_plain_set_in_any_order() -> None:
    rng = random.Random(7)
    for _ in range(200):
        seqs = [rng.randrange(60) for _ in range(rng.randrange(1, 50))]
        rs = RangeSet()
        for s in seqs:
            rs.add(s)
        if rng.random() < 0.5:
            lo = rng.randrange(60)
            hi = lo + rng.randrange(10)
            rs.add_range(lo, hi)
            seqs += range(lo, hi + 1)
        ranges = rs.ranges()
        assert {s for lo, hi in ranges for s in range(lo, hi + 1)} == set(seqs)
        # sorted, disjoint and not adjacent (maximally merged)
        assert all(a[1] + 1 < b[0] for a, b in itertools.pairwise(ranges))


def test_one_bridge_acks_a_watermark_range_once_per_take() -> None:
    tracker = AckTracker()
    for s in range(10):
        tracker.add(AckRef("c1", "m1", "frames", s))
    assert tracker.take() == [Ack("c1", "m1", [(0, 9)], [])]
    assert tracker.take() == []  # nothing new: no message
    for s in range(10, 15):
        tracker.add(AckRef("c1", "m1", "frames", s))
    # the run since this bridge started: a reconnecting agent learns all of it (retained)
    assert tracker.take() == [Ack("c1", "m1", [(0, 14)], [])]


def test_a_jump_restarts_the_run_and_old_seqs_arriving_late_are_still_acked() -> None:
    tracker = AckTracker()
    for s in (0, 1, 2, 10, 11):
        tracker.add(AckRef("c1", "m1", "frames", s))
    assert tracker.take() == [Ack("c1", "m1", [(0, 2), (10, 11)], [])]
    for s in (5, 12):  # 5 re-sent after a broker crash
        tracker.add(AckRef("c1", "m1", "frames", s))
    assert tracker.take() == [Ack("c1", "m1", [(5, 5), (10, 12)], [])]


def test_two_bridges_ack_only_what_each_produced_and_together_cover_all() -> None:
    a, b = AckTracker(), AckTracker()
    for s in range(20):
        (a if s % 3 else b).add(AckRef("c1", "m1", "frames", s))
    covered: set[int] = set()
    for tracker, mine in ((a, {s for s in range(20) if s % 3}), (b, set(range(0, 20, 3)))):
        (ack,) = tracker.take()
        seqs = {s for lo, hi in ack.frames for s in range(lo, hi + 1)}
        assert seqs == mine  # never a seq the other bridge holds
        covered |= seqs
    assert covered == set(range(20))


def test_machines_and_streams_are_kept_apart_and_big_sets_split() -> None:
    tracker = AckTracker(max_ranges=3)
    for s in range(0, 20, 2):  # 10 separate ranges
        tracker.add(AckRef("c1", "m1", "frames", s))
    tracker.add(AckRef("c1", "m1", "events", 4))
    tracker.add(AckRef("c2", "m2", "events", 0))
    acks = tracker.take()
    m1 = [x for x in acks if x.machine_id == "m1"]
    assert [len(x.frames) for x in m1] == [3, 3, 3, 1]
    assert [x.events for x in m1] == [[(4, 4)], [], [], []]
    assert [x for x in acks if x.machine_id == "m2"] == [Ack("c2", "m2", [], [(0, 0)])]


def test_publisher_coalesces_per_machine_and_agent_parses_its_messages() -> None:
    sent: list[tuple[str, bytes]] = []
    pub = AckPublisher("bridge-a", 0.1, lambda t, p: sent.append((t, p)) is None)
    for s in range(100):
        pub.add(AckRef("c1", "m1", "frames", s))
    pub.add(AckRef("c1", "m1", "events", 0))
    assert pub.flush() == 1
    assert pub.flush() == 0
    ((topic, raw),) = sent
    assert topic == ack_topic("c1", "m1")
    assert parse_ack(raw, "c1", "m1") == [("telemetry", [(0, 99)]), ("event", [(0, 0)])]
    assert (pub.messages, pub.refs) == (1, 101)


def test_published_acks_pass_the_json_schema_and_bad_ones_fail_both() -> None:
    schema = Draft202012Validator(
        json.loads(resources.files("edge").joinpath("schemas", "ack.json").read_text())
    )
    sent: list[tuple[str, bytes]] = []
    pub = AckPublisher("bridge-a", 0.1, lambda t, p: sent.append((t, p)) is None)
    for s in (0, 1, 2, 7):
        pub.add(AckRef("c1", "m1", "frames", s))
    pub.flush()
    payload = json.loads(sent[0][1])
    assert list(schema.iter_errors(payload)) == []
    for bad in ({"frames": [[1]]}, {"frames": [[-1, 2]]}, {"v": 2}, {"events": "x"}):
        broken = {**payload, **bad}
        assert list(schema.iter_errors(broken)) != []
        with pytest.raises(ContractError):
            validate_ack(broken, "c1", "m1")
