"""A token bucket: ``rate`` tokens a second, at most ``burst`` saved up."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class TokenBucket:
    """``take()`` blocks until a token is there. Thread-safe: files delivered at once to
    the same endpoint share one bucket, so the rate holds for the job, not per file.
    A rate of 0 (or less) means no limit."""

    def __init__(
        self,
        rate: float,
        burst: int = 1,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.rate = float(rate)
        self.capacity = float(max(1, burst))
        self.clock = clock
        self.sleep = sleep
        self._tokens = self.capacity
        self._updated = clock()
        self._lock = threading.Lock()

    def take(self) -> float:
        """Take one token, waiting for it; returns the seconds waited."""
        if self.rate <= 0:
            return 0.0
        with self._lock:  # waiters queue here, so they are served in turn
            waited = 0.0
            while True:
                now = self.clock()
                self._tokens = min(self.capacity, self._tokens + (now - self._updated) * self.rate)
                self._updated = now
                if self._tokens >= 1:
                    self._tokens -= 1
                    return waited
                pause = (1 - self._tokens) / self.rate
                self.sleep(pause)
                waited += pause


_buckets: dict[tuple[str, float, int], TokenBucket] = {}
_buckets_lock = threading.Lock()


def shared_bucket(key: str, rate: float, burst: int) -> TokenBucket:
    """One bucket per endpoint and limit, for every file (and run) in this process."""
    with _buckets_lock:
        bucket = _buckets.get((key, rate, burst))
        if bucket is None:
            bucket = _buckets[(key, rate, burst)] = TokenBucket(rate, burst)
        return bucket
