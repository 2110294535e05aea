"""Device clock offset estimate: how far the sled's clock is ahead of platform time.

Samples are stamped by the device clock. The agent host's clock is taken as platform
time (it is NTP-synchronised like every platform server). For a *live* source each
sample arrives shortly after it was taken, so ``device_ns - host_receive_ns`` equals
``offset - transport_delay``. The delay is never negative, so the *largest* difference
seen in a window is the best estimate of the offset (the sample that travelled
fastest), the same minimum-delay filter NTP uses. Windows of ``WINDOW_S`` seconds are
kept and the estimate is the median of the last few windows' maxima, so one outlier
(a device clock step) does not dominate.

``offset_ms`` > 0 means the device clock runs ahead; the stream corrects
``platform_ns = device_ns - offset_ms * 1e6``. Replayed/recorded sources give no
estimate (``None``). Pure: the caller passes both clocks.
"""

from __future__ import annotations

import statistics
from collections import deque
from typing import Final

WINDOW_S: Final = 10.0
"""Length of one max-filter window."""
WINDOWS_KEPT: Final = 6
"""Windows whose maxima are combined (median): one minute of history."""


class ClockOffsetEstimator:
    def __init__(self, window_s: float = WINDOW_S, windows_kept: int = WINDOWS_KEPT) -> None:
        self._window_ns = int(window_s * 1e9)
        self._maxima: deque[int] = deque(maxlen=windows_kept)
        self._window_start = 0
        self._window_max: int | None = None

    def observe(self, device_ns: int, host_ns: int) -> None:
        diff = device_ns - host_ns
        if self._window_max is None:
            self._window_start = host_ns
            self._window_max = diff
        elif host_ns - self._window_start >= self._window_ns:
            self._maxima.append(self._window_max)
            self._window_start = host_ns
            self._window_max = diff
        elif diff > self._window_max:
            self._window_max = diff

    @property
    def offset_ms(self) -> float | None:
        values = list(self._maxima)
        if self._window_max is not None:
            values.append(self._window_max)
        if not values:
            return None
        return round(statistics.median(values) / 1e6, 3)
