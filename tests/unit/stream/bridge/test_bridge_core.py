"""Routing and acknowledgement-order decisions of the bridge (pure, no network)."""

from __future__ import annotations

import base64
import hashlib
import json

import pytest
from frames import event, state, telemetry

from edge.contract import encode
from stream.bridge.core import AckWindow, Record, route, subscriptions

PREFIX = "tunit."
LIMIT = 11 * 1024 * 1024


def _route(topic: str, raw: bytes) -> Record:
    return route(
        topic, raw, 123, prefix=PREFIX, bridge_id="bridge-x-0", dead_letter_raw_limit=LIMIT
    )


def _dead(record: Record) -> dict[str, object]:
    assert record.dead
    assert record.topic == PREFIX + "sledfleet.deadletter"
    out: dict[str, object] = json.loads(record.value)
    return out


@pytest.mark.parametrize(
    ("kind", "payload", "target"),
    [
        ("telemetry", telemetry(), "sledfleet.telemetry"),
        ("event", event(), "sledfleet.telemetry"),
        ("state", state(), "sledfleet.telemetry"),
    ],
)
def test_every_kind_goes_to_the_machines_one_ordered_topic_keyed_by_machine(kind, payload, target):
    raw = encode(payload)
    record = _route(f"sledfleet/v1/c1/m1/{kind}", raw)
    assert not record.dead
    assert record.topic == PREFIX + target
    assert record.key == b"m1"
    assert record.value is raw  # original bytes, not re-encoded
    assert dict(record.headers) == {
        "mqtt_topic": f"sledfleet/v1/c1/m1/{kind}".encode(),
        "kind": kind.encode(),
        "received_at_ns": b"123",
        "bridge_id": b"bridge-x-0",
    }


def _with(**changes: object) -> bytes:
    payload = telemetry()
    payload.update(changes)
    return encode(payload)


NAN_TEXT = encode(telemetry()).replace(b'"load_kg":80.0', b'"load_kg":NaN')
INF_TEXT = encode(telemetry()).replace(b"[400.0,", b"[Infinity,", 1)


_INVALID_CASES = [
    ("sledfleet/v1/c1/m1/telemetry", b'{"v":1,"clinic_id":', "malformed_json"),
    ("sledfleet/v1/c1/m1/telemetry", b"\xff\xfe\x00garbage\x80", "not_utf8"),
    ("sledfleet/v1/c1/m1/telemetry", b"[1,2,3]", "not_an_object"),
    ("sledfleet/v1/c1/m1/telemetry", _with(v=2), "unknown_version"),
    ("sledfleet/v1/c1/m1/telemetry", _with(v="1"), "unknown_version"),
    ("sledfleet/v1/c1/m2/telemetry", _with(), "topic_mismatch"),
    ("sledfleet/v1/c9/m1/telemetry", _with(), "topic_mismatch"),
    ("sledfleet/v1/c1/m1/telemetry", _with(force_left_n=[1.0] * 49), "unequal_lengths"),
    ("sledfleet/v1/c1/m1/telemetry", _with(position_mm=[1.0] * 101), "bad_length"),
    ("sledfleet/v1/c1/m1/telemetry", NAN_TEXT, "non_finite"),
    ("sledfleet/v1/c1/m1/telemetry", INF_TEXT, "non_finite"),
    ("sledfleet/v1/c1/m1/telemetry", _with(rate_hz=-50.0), "out_of_range"),
    ("sledfleet/v1/c1/m1/telemetry", _with(machine_id="'; DROP TABLE x;--"), "bad_id"),
    ("sledfleet/v1/c1/m1/telemetry", _with(clinic_id="<script>alert(1)</script>"), "bad_id"),
    ("sledfleet/v1/c1/m1/telemetry", _with(machine_id="машина"), "bad_id"),
    ("sledfleet/v1/c1/<script>/telemetry", _with(), "bad_id"),
    ("sledfleet/v1/c1/m1/config", _with(), "unexpected_kind"),
    ("sledfleet/v2/c1/m1/telemetry", _with(), "bad_topic"),
]


@pytest.mark.parametrize(("topic", "raw", "reason"), _INVALID_CASES)
def test_invalid_message_is_dead_lettered_with_reason_and_original_bytes(topic, raw, reason):
    record = _route(topic, raw)
    letter = _dead(record)
    assert record.reason == reason
    assert letter["reason"] == reason
    assert letter["source"] == "bridge"
    assert letter["origin"] == topic
    assert base64.b64decode(str(letter["payload_b64"])) == raw
    assert letter["payload_sha256"] == hashlib.sha256(raw).hexdigest()
    assert ("reason", reason.encode()) in record.headers
    assert record.key == topic.encode()


def test_config_kind_is_valid_but_not_forwarded():
    raw = encode({"v": 1, "clinic_id": "c1", "machine_id": "m1", "config_version": 3})
    assert _route("sledfleet/v1/c1/m1/config", raw).reason == "unexpected_kind"


def test_ten_megabyte_payload_is_dead_lettered_whole():
    raw = b"{" + b" " * (10 * 1000 * 1000) + b"}"
    record = _route("sledfleet/v1/c1/m1/telemetry", raw)
    letter = _dead(record)
    assert letter["reason"] == "too_large"
    assert letter["payload_size"] == len(raw)
    assert base64.b64decode(str(letter["payload_b64"])) == raw
    assert len(record.value) < 16 * 1024 * 1024


def test_payload_beyond_the_dead_letter_limit_is_truncated_and_says_so():
    raw = b"x" * 2000
    record = route(
        "sledfleet/v1/c1/m1/telemetry",
        raw,
        1,
        prefix="",
        bridge_id="b",
        dead_letter_raw_limit=1000,
    )
    letter = _dead_noprefix(record)
    assert letter["payload_size"] == 1000
    assert "truncated" in str(letter["detail"])
    assert "2000" in str(letter["detail"])


def _dead_noprefix(record: Record) -> dict[str, object]:
    assert record.topic == "sledfleet.deadletter"
    out: dict[str, object] = json.loads(record.value)
    return out


def test_hostile_topic_is_truncated_in_key_and_origin():
    topic = "sledfleet/v1/c1/" + "a" * 2000 + "/telemetry"
    record = _route(topic, b"{}")
    assert len(record.key) == 512
    assert len(str(_dead(record)["origin"])) == 512


def test_subscriptions_are_shared_per_kind():
    assert subscriptions("g1") == [
        "$share/g1/sledfleet/v1/+/+/telemetry",
        "$share/g1/sledfleet/v1/+/+/event",
        "$share/g1/sledfleet/v1/+/+/state",
    ]
    assert subscriptions("g1", "clinicA")[0] == "$share/g1/sledfleet/v1/clinicA/+/telemetry"
    two = subscriptions("g1", "c01, c02")
    assert len(two) == 2 * len(subscriptions("g1"))
    assert "$share/g1/sledfleet/v1/c02/+/state" in two


@pytest.mark.parametrize(("group", "clinic"), [("", "+"), ("a/b", "+"), ("g+", "+"), ("g", "#")])
def test_subscriptions_refuse_wildcards_in_names(group, clinic):
    with pytest.raises(ValueError):
        subscriptions(group, clinic)


# --- AckWindow ----------------------------------------------------------------------------


def test_acks_are_released_in_arrival_order_only():
    w = AckWindow()
    a, b, c = w.add(10, 1), w.add(11, 1), w.add(12, 1)
    assert w.complete(c) == []
    assert w.complete(b) == []
    assert w.complete(a) == [(10, 1), (11, 1), (12, 1)]
    assert len(w) == 0


def test_failed_message_blocks_every_later_ack():
    w = AckWindow()
    _first, second = w.add(1, 1), w.add(2, 1)
    assert w.complete(second) == []  # first never completes (Kafka refused it)
    assert len(w) == 2


def test_qos0_messages_hold_their_place_but_are_not_acked():
    w = AckWindow()
    a, b = w.add(0, 0), w.add(5, 1)
    assert w.complete(b) == []
    assert w.complete(a) == [(5, 1)]


def test_reset_forgets_old_connection_and_ignores_its_completions():
    w = AckWindow()
    old = w.add(7, 1)
    assert w.reset() == 1
    new = w.add(7, 1)  # the broker redelivers with the same packet id
    assert w.complete(old) == []
    assert w.complete(new) == [(7, 1)]


def test_duplicate_and_unknown_completions_are_ignored():
    w = AckWindow()
    a = w.add(1, 1)
    assert w.complete(a) == [(1, 1)]
    assert w.complete(a) == []
    assert w.complete(999) == []


# --- the orjson fast path gives the contract's verdicts exactly ------------------------

EXTRA_CASES = [
    ("sledfleet/v1/c1/m1/telemetry", _with(seq=10**30)),  # orjson: float; json: int
    ("sledfleet/v1/c1/m1/telemetry", _with(load_kg=10**30)),
    ("sledfleet/v1/c1/m1/telemetry", _with(seq=2**63 - 1)),
    ("sledfleet/v1/c1/m1/telemetry", encode(telemetry()).replace(b'"c1"', b'"\\ud800"', 1)),
    ("sledfleet/v1/c1/m1/telemetry", encode(telemetry()).replace(b"80.0", b"1e999", 1)),
    ("sledfleet/v1/c1/m1/telemetry", encode(telemetry()) + b"  "),
    ("sledfleet/v1/c1/m1/telemetry", b'{"v":1,"v":2}'),
    ("sledfleet/v1/c1/m1/event", encode(event())),
    ("sledfleet/v1/c1/m1/state", encode(state())),
    ("sledfleet/v1/c1/m1/telemetry", encode(telemetry())),
]


def test_fast_path_and_contract_agree(monkeypatch):
    from stream.bridge import core

    cases = [(t, r) for t, r, _ in _INVALID_CASES] + EXTRA_CASES
    with_fast = [_route(t, r) for t, r in cases]
    monkeypatch.setattr(core, "_orjson", None)
    without = [_route(t, r) for t, r in cases]
    assert [(r.topic, r.reason, r.value) for r in with_fast] == [
        (r.topic, r.reason, r.value) for r in without
    ]


def test_valid_frames_take_the_fast_path():
    from edge.contract import parse_topic
    from stream.bridge.core import fast_valid

    assert fast_valid(parse_topic("sledfleet/v1/c1/m1/telemetry"), encode(telemetry()))
    assert not fast_valid(parse_topic("sledfleet/v1/c1/m1/telemetry"), NAN_TEXT)


@pytest.mark.parametrize(
    "raw",
    [
        encode(telemetry()).replace(b"[100.0,", b"[" + b"9" * 400 + b",", 1),
        encode(telemetry()).replace(b'"load_kg":80.0', b'"load_kg":' + b"9" * 400),
        encode(telemetry()).replace(b'"seq":0', b'"seq":' + b"9" * 5000),
        b"[" * 30_000 + b"]" * 30_000,
    ],
    ids=["huge int in series", "huge int load", "5000-digit seq", "deep nesting"],
)
def test_input_that_breaks_the_validator_is_dead_lettered_not_raised(raw):
    record = _route("sledfleet/v1/c1/m1/telemetry", raw)
    assert record.dead
    assert record.reason == "unprocessable"
    assert base64.b64decode(str(_dead(record)["payload_b64"])) == raw


# --- the topic cache gives parse_topic's verdicts, and only valid topics are kept ---------


def test_cached_topics_route_exactly_like_fresh_ones(monkeypatch):
    from stream.bridge import core

    cases = [(t, r) for t, r, _ in _INVALID_CASES] + EXTRA_CASES
    core._topics.clear()
    fresh = [_route(t, r) for t, r in cases]
    cached = [_route(t, r) for t, r in cases]  # second time: valid topics come from the cache
    assert [r[:4] for r in cached] == [r[:4] for r in fresh]
    assert [r.reason for r in cached] == [r.reason for r in fresh]
    assert all(core.parse_topic(t) for t in core._topics)
    assert "sledfleet/v1/c1/m1/config" not in core._topics  # unexpected_kind: not cached


def test_invalid_topics_never_fill_the_cache():
    from stream.bridge import core

    core._topics.clear()
    for i in range(100):
        assert _route(f"sledfleet/v1/c1/m{i}/bogus", b"{}").reason == "bad_topic"
    assert core._topics == {}


def test_the_topic_cache_is_bounded(monkeypatch):
    from stream.bridge import core

    monkeypatch.setattr(core, "TOPIC_CACHE_SIZE", 10)
    core._topics.clear()
    for i in range(25):
        record = _route(f"sledfleet/v1/c1/m{i}/telemetry", encode(telemetry(machine=f"m{i}")))
        assert record.key == f"m{i}".encode()
    assert 0 < len(core._topics) <= 10


class _ReferenceWindow:
    """The obvious implementation: a list in arrival order, pop the done prefix."""

    def __init__(self) -> None:
        self.next = 0
        self.items: list[list[int]] = []  # [token, mid, qos, done]

    def add(self, mid: int, qos: int) -> int:
        self.items.append([self.next, mid, qos, 0])
        self.next += 1
        return self.next - 1

    def complete(self, token: int) -> list[tuple[int, int]]:
        for item in self.items:
            if item[0] == token:
                item[3] = 1
        due = []
        while self.items and self.items[0][3]:
            _, mid, qos, _ = self.items.pop(0)
            if qos:
                due.append((mid, qos))
        return due

    def reset(self) -> int:
        dropped = len(self.items)
        self.items = []
        return dropped


@pytest.mark.parametrize("seed", range(20))
def test_ack_window_matches_the_reference_under_random_operations(seed):
    import random

    rng = random.Random(seed)
    w, ref = AckWindow(), _ReferenceWindow()
    tokens: list[int] = []
    for _ in range(3000):
        op = rng.random()
        if op < 0.45:
            mid, qos = rng.randrange(1, 65536), rng.choice((0, 1, 1, 1))
            token = w.add(mid, qos)
            assert token == ref.add(mid, qos)
            tokens.append(token)
        elif op < 0.97 and tokens:
            token = rng.choice(tokens) if rng.random() < 0.9 else rng.randrange(-5, ref.next + 5)
            assert w.complete(token) == ref.complete(token)
        elif op >= 0.99:
            assert w.reset() == ref.reset()
        assert len(w) == len(ref.items)
