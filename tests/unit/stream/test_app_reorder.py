"""The machine inbox: events/state merged into the telemetry stream by device time."""

from __future__ import annotations

import json

from stream.app.reorder import Inbox


def ev(name: str, ts: int | None) -> dict[str, object]:
    return {"name": name, "ts_ns": ts}


def names(items: list[tuple[str, dict[str, object]]]) -> list[object]:
    return [payload["name"] for _, payload in items]


def test_event_before_any_frame_is_held_until_the_frame_that_follows_it() -> None:
    inbox = Inbox()
    assert inbox.admit("event", ev("start", 100), 100) == []
    assert inbox.admit("event", ev("end", 500), 500) == []
    assert names(inbox.before_frame(90)) == []
    assert names(inbox.before_frame(100)) == ["start"]
    assert names(inbox.before_frame(400)) == []
    assert names(inbox.before_frame(600)) == ["end"]
    assert not inbox.queue


def test_late_event_is_applied_at_once_and_untimed_one_keeps_its_place() -> None:
    inbox = Inbox()
    inbox.before_frame(1_000)
    assert names(inbox.admit("event", ev("late", 900), 900)) == ["late"]
    assert names(inbox.admit("state", ev("will", None), None)) == ["will"]
    inbox.admit("event", ev("future", 2_000), 2_000)
    inbox.admit("state", ev("offline", None), None)  # behind a held item: waits its turn
    assert names(inbox.before_frame(1_500)) == []
    assert names(inbox.before_frame(2_000)) == ["future", "offline"]


def test_partition_clock_releases_after_grace_and_idle_releases_everything() -> None:
    inbox = Inbox()
    inbox.admit("event", ev("end", 1_000), 1_000)
    inbox.admit("event", ev("next", 5_000), 5_000)
    assert names(inbox.release_due(clock_ns=1_020, grace_ns=30)) == []
    assert names(inbox.release_due(clock_ns=1_030, grace_ns=30)) == ["end"]
    assert names(inbox.release_all()) == ["next"]


def test_repeated_and_stale_state_messages_are_recognised() -> None:
    inbox = Inbox()
    online = {"status": "online", "ts_ns": 10}
    assert not inbox.repeated_state(online)
    assert inbox.repeated_state(dict(online))
    assert inbox.repeated_state({"status": "online", "ts_ns": 5})
    assert not inbox.repeated_state({"status": "offline"})
    assert inbox.repeated_state({"status": "offline"})
    assert not inbox.repeated_state({"status": "online", "ts_ns": 20})


def test_inbox_survives_a_json_round_trip() -> None:
    inbox = Inbox()
    inbox.before_frame(7)
    inbox.admit("event", ev("a", 100), 100)
    inbox.repeated_state({"status": "online", "ts_ns": 3})
    again = Inbox.from_json(json.loads(json.dumps(inbox.to_json())))
    assert again == inbox
    assert names(again.before_frame(100)) == ["a"]


def test_an_item_far_ahead_does_not_hold_back_later_earlier_events() -> None:
    """A birth stamped with the host clock during a backfill must not block check-ins."""
    inbox = Inbox()
    far = 10**18
    assert inbox.admit("state", {"status": "online"}, far) == []
    assert inbox.admit("event", {"type": "session_started"}, 100) == []
    assert inbox.admit("event", {"type": "session_ended"}, 200) == []
    released = inbox.before_frame(150)
    assert [p["type"] for _, p in released] == ["session_started"]
    assert [p["type"] for _, p in inbox.before_frame(250)] == ["session_ended"]
    assert [k for k, _ in inbox.release_all()] == ["state"]


def test_a_timeless_item_keeps_its_place() -> None:
    inbox = Inbox()
    inbox.admit("event", {"type": "a"}, 100)
    inbox.admit("state", {"status": "offline"}, None)
    inbox.admit("state", {"status": "online"}, 50)
    assert [p.get("type") or p["status"] for _, p in inbox.release_all()] == [
        "a",
        "offline",
        "online",
    ]
