"""A rebalance that never ends: the worker exits so its supervisor restarts it.

faust-streaming 0.15 can hang inside a rebalance: seen in the multi-host rehearsal after a
broker was killed under load, the worker sat in ``_on_partitions_assigned`` with every
partition paused for 10 minutes and more, healthy by every other sign. Its state is in
Kafka (changelog, committed offsets) and the pipeline is at-least-once with idempotent
outputs, so exiting is as safe as the kill -9 the tests already score exactly; waiting is
not. Pure: the caller reads the flag and the clock, and does the exit.
"""

from __future__ import annotations

from dataclasses import dataclass

EXIT_REBALANCE_STUCK = 75
"""Exit status of a worker that gave up a stuck rebalance (EX_TEMPFAIL: restart it)."""


@dataclass(slots=True)
class RebalanceWatch:
    limit_s: float
    """How long one rebalance (recovery included) may last; 0 switches the watch off."""
    since: float | None = None

    def observe(self, rebalancing: bool, now: float) -> float | None:
        """How long the current rebalance has lasted, once that is past ``limit_s``
        (counting then starts again: a caller that replaces its consumer instead of exiting,
        like the sink, gives the new one its own ``limit_s``); None while not rebalancing,
        within the limit, and always when ``limit_s`` is 0."""
        if not rebalancing or self.limit_s <= 0:
            self.since = None
            return None
        if self.since is None:
            self.since = now
        lasted = now - self.since
        if lasted <= self.limit_s:
            return None
        self.since = None
        return lasted
