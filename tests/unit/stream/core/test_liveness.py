"""Liveness bookkeeping (``stream.core.liveness``) on an injected wall clock: which machines
are due a check, when a partition is a stall suspect, and handled offsets."""

from __future__ import annotations

from stream.core.liveness import Liveness

IDLE, STALL = 2.0, 60.0


def live(marks: tuple[float, ...] = (2.0, 120.0, 600.0)) -> Liveness:
    return Liveness(IDLE, STALL, marks)


def due(lv: Liveness, caught_up: set[int], now: float) -> list[str]:
    """Machines due at ``now``, each checked as the adapter does."""
    out = []
    for machine_id, heard in lv.silent(caught_up, now):
        lv.checked(heard, now - heard.wall)
        out.append(machine_id)
    return out


def test_a_silent_machine_gets_one_check_per_mark_its_silence_passes() -> None:
    lv = live()
    lv.heard("m1", 0, now=100.0)
    assert due(lv, {0}, 101.0) == []
    assert due(lv, {0}, 102.5) == ["m1"]
    assert due(lv, {0}, 150.0) == []  # the 2 s mark is done, 120 s not reached
    assert due(lv, {0}, 221.0) == ["m1"]
    # a long pause passing two marks at once: still one check
    assert due(lv, {0}, 5000.0) == ["m1"]
    assert due(lv, {0}, 9000.0) == []


def test_a_message_starts_the_machines_silence_again() -> None:
    lv = live()
    lv.heard("m1", 0, now=0.0)
    assert due(lv, {0}, 3.0) == ["m1"]
    lv.heard("m1", 0, now=10.0)
    assert due(lv, {0}, 11.0) == []
    assert due(lv, {0}, 12.0) == ["m1"]


def test_only_machines_on_a_partition_read_to_its_end_are_due() -> None:
    lv = live()
    lv.heard("busy-partition", 0, now=0.0)
    lv.heard("caught-up", 1, now=0.0)
    assert due(lv, {1}, 10.0) == ["caught-up"]
    # the backlog is read later: the check comes then, not lost
    assert due(lv, {0, 1}, 11.0) == ["busy-partition"]


def test_one_machines_silence_is_its_own() -> None:
    lv = live()
    lv.heard("quiet", 0, now=0.0)
    for t in range(1, 30):
        lv.heard("chatty", 0, now=float(t))  # same partition, streaming on
        assert "chatty" not in due(lv, {0}, float(t))
    assert lv.current("quiet") is not None
    assert "quiet" not in due(lv, {0}, 30.0)  # checked once already, at t=2
    lv2 = live()
    lv2.heard("quiet", 0, now=0.0)
    lv2.heard("chatty", 0, now=1.9)
    assert due(lv2, {0}, 2.0) == ["quiet"]


def test_handled_offsets_never_go_backwards() -> None:
    lv = live()
    assert lv.next_offset(3) is None
    lv.handled(3, 10)
    lv.handled(3, 4)  # a late redelivery
    assert lv.next_offset(3) == 11
    assert lv.already_handled(3, 10)
    assert not lv.already_handled(3, 11)
    assert lv.handled_to(3, committed=None) == 11
    assert lv.handled_to(3, committed=20) == 20
    assert lv.handled_to(4, committed=None) == 0


def test_caught_up_compares_progress_or_commit_with_the_end() -> None:
    lv = live()
    lv.handled(0, 9)
    ends = {0: 10, 1: 5, 2: None}
    committed = {0: None, 1: 5, 2: 7}
    assert lv.caught_up({0, 1, 2}, ends.get, committed.get) == {0, 1}
    ends[0] = 11
    assert lv.caught_up({0, 1, 2}, ends.get, committed.get) == {1}


def test_reset_forgets_offsets_and_stalls_and_hears_again_from_owned_machines() -> None:
    lv = live()
    lv.handled(0, 5)
    lv.stalled(1)
    lv.heard("m1", 0, now=0.0)
    lv.reset([("m1", 0), ("m2", 1), ("elsewhere", 2), ("unknown", None)], {0, 1}, now=50.0)
    assert lv.next_offset(0) is None
    assert not lv.is_stalled(1)
    assert sorted(lv.machines()) == ["m1", "m2"]
    assert due(lv, {0, 1}, 51.0) == []  # silence counts from the reset
    assert due(lv, {0, 1}, 52.0) == ["m1", "m2"]


def test_a_quiet_partition_behind_is_a_stall_suspect_once_per_stall_s() -> None:
    lv = live()
    lv.heard("m0", 0, now=0.0)
    lv.heard("m1", 1, now=0.0)
    owned = {0, 1}
    # partition 1 quiet with a backlog, but not yet for stall_s
    assert lv.stall_suspects(owned, {0}, 30.0) == []
    assert lv.stall_suspects(owned, {0}, 61.0) == [1]
    assert lv.stall_suspects(owned, {0}, 62.0) == []  # checked 1 s ago
    assert lv.stall_suspects(owned, {0}, 122.0) == [1]
    assert lv.silent_for(1, 122.0) == 122.0


def test_no_stall_suspect_while_a_busy_partition_still_has_a_backlog() -> None:
    lv = live()
    owned = {0, 1}
    lv.heard("m1", 1, now=0.0)
    for t in range(0, 200, 1):
        lv.heard("m0", 0, now=float(t))  # busy, and not caught up
        assert lv.stall_suspects(owned, set(), float(t)) == []
    # once partition 0 is read to its end, the quiet partition 1 is suspected
    assert lv.stall_suspects(owned, {0}, 199.5) == [1]


def test_a_stalled_partition_is_suspect_at_every_check_until_delivered() -> None:
    lv = live()
    lv.heard("m1", 1, now=0.0)
    assert lv.stall_suspects({1}, set(), 61.0) == [1]
    lv.stalled(1)
    assert lv.stall_suspects({1}, set(), 61.5) == [1]
    assert lv.stall_suspects({1}, set(), 62.0) == [1]
    lv.delivered(1)
    lv.heard("m1", 1, now=63.0)
    assert lv.stall_suspects({1}, set(), 64.0) == []


def test_a_partition_never_heard_from_starts_its_silence_when_first_seen() -> None:
    lv = live()
    assert lv.quiet({5}, 100.0) == set()
    assert lv.quiet({5}, 101.0) == set()
    assert lv.quiet({5}, 102.0) == {5}
    assert lv.stall_suspects({5}, set(), 159.0) == []
    assert lv.stall_suspects({5}, set(), 160.0) == [5]
