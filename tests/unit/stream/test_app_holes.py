"""Holes in delivered telemetry offsets are found and filled from a side read."""

from __future__ import annotations

from stream.app.holes import fill, find_holes, read_ranges

A, B = ("tele", 0), ("tele", 1)


def test_contiguous_delivery_has_no_holes() -> None:
    delivered = [(A, 5), (B, 0), (A, 6), (A, 7), (B, 1)]
    assert find_holes(delivered, {A: 5, B: 0}.get) == []


def test_holes_from_the_expected_offset_and_inside_the_batch() -> None:
    delivered = [(A, 8), (A, 9), (B, 3), (A, 12), (A, 13)]
    assert find_holes(delivered, {A: 5, B: 3}.get) == [(A, 5, 8), (A, 10, 12)]


def test_unknown_expected_offset_checks_from_the_first_delivery_on() -> None:
    assert find_holes([(A, 40), (A, 41), (A, 44)], lambda tp: None) == [(A, 42, 44)]


def test_redeliveries_are_not_holes() -> None:
    # a rebalance re-seeks to the committed offset: offsets go back, never a hole
    delivered = [(A, 10), (A, 11), (A, 7), (A, 8), (A, 12)]
    assert find_holes(delivered, {A: 10}.get) == []


def test_one_read_range_per_partition_covers_its_holes() -> None:
    holes = [(A, 5, 8), (A, 10, 12), (B, 0, 2)]
    assert read_ranges(holes) == {A: (5, 12), B: (0, 2)}


def test_fill_keys_read_frames_by_the_frame_after_their_hole() -> None:
    holes = [(A, 5, 8), (A, 10, 12), (B, 0, 2)]
    h = (("kind", b"telemetry"),)
    found = [(A, o, b"a%d" % o, h) for o in (11, 10, 9, 8, 7, 6, 5)] + [
        (B, 1, b"b1", ()),
        (B, 0, None, ()),
    ]
    filled = fill(holes, found)
    assert filled == {
        (A, 8): [(5, b"a5", h), (6, b"a6", h), (7, b"a7", h)],
        (A, 12): [(10, b"a10", h), (11, b"a11", h)],
        (B, 2): [(0, None, ()), (1, b"b1", ())],
    }  # offsets 8 and 9 were delivered by Faust: not handled twice
