"""Poll scheduling without Textual: how long to wait before a source's next poll.

After a success the next poll comes after the base interval.  After consecutive failures
the delay starts at ``min_delay`` and doubles up to ``max_delay``, with a +-``jitter``
fraction drawn from an injected :class:`random.Random` (seed it for deterministic tests;
the default is unseeded so that several dashboards don't retry in lockstep).  A
:class:`~tui.sources.base.RateLimited` error that carries a Retry-After is honoured:
the delay is at least that long.
"""

from __future__ import annotations

import random

from tui.sources.base import RateLimited, SourceError


class Backoff:
    def __init__(
        self,
        interval: float,
        *,
        min_delay: float = 2.0,
        max_delay: float = 120.0,
        jitter: float = 0.1,
        rng: random.Random | None = None,
    ) -> None:
        if not interval > 0:
            raise ValueError(f"interval must be positive, got {interval!r}")
        if not 0 < min_delay <= max_delay:
            raise ValueError("need 0 < min_delay <= max_delay")
        if not 0 <= jitter < 1:
            raise ValueError("jitter must be in [0, 1)")
        self.interval = float(interval)
        self.min_delay = float(min_delay)
        self.max_delay = float(max_delay)
        self.jitter = float(jitter)
        self.rng = rng if rng is not None else random.Random()
        #: consecutive failures since the last success
        self.failures = 0

    def success(self) -> float:
        """A poll succeeded: reset and return the base interval."""
        self.failures = 0
        return self.interval

    def failure(self, err: SourceError | None = None) -> float:
        """A poll failed: return the delay before the next attempt."""
        self.failures += 1
        base = min(self.max_delay, self.min_delay * 2.0 ** min(self.failures - 1, 60))
        factor = 1.0 + self.jitter * (2.0 * self.rng.random() - 1.0)
        delay = min(self.max_delay, max(self.min_delay, base * factor))
        if isinstance(err, RateLimited) and err.retry_after is not None:
            delay = max(delay, err.retry_after)
        return delay

    def reset(self) -> None:
        self.failures = 0
