"""Every touch of Faust internals: the pinned version, the patched sources, the ack repair."""

from __future__ import annotations

import pytest

from stream.app import faust_port
from stream.app.faust_port import FAUST_VERSION, PATCHED_SOURCES, FaustPort, source_digests

A, B = "A", "B"


def test_the_installed_faust_is_the_pinned_one() -> None:
    assert faust_port.installed_version() == FAUST_VERSION
    faust_port.check_version()  # does not raise


def test_the_worker_refuses_another_faust_version(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(faust_port, "installed_version", lambda: "0.16.0")
    with pytest.raises(RuntimeError, match=r"0\.16\.0 is installed"):
        faust_port.check_version()


def test_the_faust_internals_we_patch_are_unchanged() -> None:
    """Fails when an upgrade changed the consumer code ``mark_acked`` relies on."""
    assert source_digests() == PATCHED_SOURCES


def test_the_private_consumer_state_we_touch_exists() -> None:
    from faust.transport.consumer import Consumer

    names = Consumer.__annotations__
    for attr in ("_acked", "_acked_index", "_gap", "_committed_offset"):
        assert attr in names, attr


def test_mark_acked_adds_holes_folds_gaps_and_never_lists_an_offset_twice() -> None:
    from collections import defaultdict
    from types import SimpleNamespace

    from intervaltree import IntervalTree

    gaps: defaultdict[object, IntervalTree] = defaultdict(IntervalTree)
    gaps[B].addi(3, 6)  # Faust recorded offsets 3..5 of B as a gap (5 was delivered)
    consumer = SimpleNamespace(
        _committed_offset=defaultdict(lambda: None, {A: 6}),
        _acked_index=defaultdict(set, {A: {9}, B: {5}}),
        _acked=defaultdict(list, {A: [9], B: [5, 5]}),  # 5 acked twice already
        _gap=gaps,
    )
    port = FaustPort(SimpleNamespace(consumer=consumer))
    assert port.mark_acked([(A, 5, 10), (B, 0, 3)], tps=[B]) == 3 + 3 + 2
    assert sorted(consumer._acked[A]) == [6, 7, 8, 9]  # never below the commit
    assert consumer._acked[B] == [0, 1, 2, 3, 4, 5]
    assert consumer._acked_index[B] == {0, 1, 2, 3, 4, 5}
    assert not consumer._gap[B]
