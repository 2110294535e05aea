"""Device clock offset: max filter per window, median over windows."""

from __future__ import annotations

from edge.clock import ClockOffsetEstimator

S = 1_000_000_000


def test_no_estimate_without_samples() -> None:
    assert ClockOffsetEstimator().offset_ms is None


def test_offset_is_the_fastest_sample_per_window() -> None:
    est = ClockOffsetEstimator(window_s=10, windows_kept=6)
    offset = 250 * 1_000_000  # device 250 ms ahead
    host = 1_700_000_000 * S
    for i in range(6000):  # 60 s at 100 Hz, transport delay 2..40 ms
        delay = (2 + (i * 7919) % 39) * 1_000_000
        t_host = host + i * 10_000_000 + delay
        est.observe(host + i * 10_000_000 + offset, t_host)
    assert est.offset_ms == 248.0


def test_one_clock_step_does_not_dominate() -> None:
    est = ClockOffsetEstimator(window_s=1, windows_kept=5)
    for w in range(5):
        jump = 10_000 * 1_000_000 if w == 2 else 0
        for i in range(10):
            t = w * S + i * 100_000_000
            est.observe(t - 5_000_000 + jump, t)
    assert est.offset_ms == -5.0
