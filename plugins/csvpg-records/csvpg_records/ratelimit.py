"""A token bucket: ``rate`` tokens a second, at most ``burst`` saved up."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from csvpg.rates import Rate

#: The longest sleep between looks at the rate.
MAX_NAP = 0.25


class TokenBucket:
    """``take()`` blocks until a token is there. Thread-safe: files delivered at once to
    the same endpoint share one bucket, so the rate holds for the job, not per file.
    A rate of 0 (or less) means no limit."""

    def __init__(
        self,
        rate: float | Rate,
        burst: int = 1,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        #: Read on every take: a run's rate may change while it sends.
        self.holder = rate if isinstance(rate, Rate) else Rate(rate)
        self.capacity = float(max(1, burst))
        self.clock = clock
        self.sleep = sleep
        self._tokens = self.capacity
        self._updated = clock()
        self._lock = threading.Lock()

    def take(self) -> float:
        """Take one token, waiting for it; returns the seconds waited."""
        with self._lock:  # waiters queue here, so they are served in turn
            waited = 0.0
            while True:
                rate, now = self.holder.value, self.clock()
                if rate <= 0:
                    self._updated = now
                    return waited
                self._tokens = min(self.capacity, self._tokens + (now - self._updated) * rate)
                self._updated = now
                if self._tokens >= 1:
                    self._tokens -= 1
                    return waited
                # In short naps: a rate raised meanwhile is taken at the next one.
                pause = min(MAX_NAP, (1 - self._tokens) / rate)
                self.sleep(pause)
                waited += pause

    @property
    def rate(self) -> float:
        return self.holder.value


_buckets: dict[tuple[str, float | int, int], TokenBucket] = {}
_buckets_lock = threading.Lock()


def shared_bucket(key: str, rate: float | Rate, burst: int) -> TokenBucket:
    """One bucket per endpoint and limit, for every file in this process: per run when
    the rate is a run's :class:`~csvpg.rates.Rate`, else for every run with that rate."""
    ident = id(rate) if isinstance(rate, Rate) else float(rate)
    with _buckets_lock:
        bucket = _buckets.get((key, ident, burst))
        if bucket is None:
            bucket = _buckets[(key, ident, burst)] = TokenBucket(rate, burst)
        return bucket
