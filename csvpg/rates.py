"""Rates a running job's sink reads on every send and someone else may change meanwhile
(``PUT /runs/{run_id}/rate``): one thread-safe :class:`Rate` per run.

A sink with a ``rate_per_second`` option takes its run's with :func:`rate_for`; the API
finds it with :func:`lookup`, and :func:`forget` drops it once the run ended."""

from __future__ import annotations

import threading


class Rate:
    """Requests a second (0: no limit), read by every sending thread, set by another."""

    def __init__(self, value: float) -> None:
        self._value = float(value)
        self._lock = threading.Lock()

    @property
    def value(self) -> float:
        with self._lock:
            return self._value

    def set(self, value: float) -> None:
        if value < 0:
            raise ValueError(f"a rate is 0 or more, not {value}")
        with self._lock:
            self._value = float(value)


_by_run: dict[str, Rate] = {}
_lock = threading.Lock()


def rate_for(run_id: str, initial: float) -> Rate:
    """The run's rate; made with ``initial`` the first time it is asked for."""
    with _lock:
        return _by_run.setdefault(run_id, Rate(initial))


def lookup(run_id: str) -> Rate | None:
    with _lock:
        return _by_run.get(run_id)


def forget(run_id: str) -> None:
    with _lock:
        _by_run.pop(run_id, None)
