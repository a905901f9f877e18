"""What a file's load needs of its run — and nothing more: the job, where to write, the
reject limit, how to report, how to tell it was cancelled, and the run's connection
budget. :class:`csvpg.engine.run.Engine` makes one :class:`RunContext` per run and hands it
to every :class:`csvpg.engine.fileload.FileLoad`; the load never sees the engine."""

from __future__ import annotations

import itertools
import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import psycopg

from csvpg import events as ev
from csvpg.errors import CsvpgError
from csvpg.spec import Job

__all__ = ["CANCELLED", "CancelToken", "Cancelled", "ConnectionBudget", "RunContext"]

log = logging.getLogger("csvpg.engine")

#: Why a cancelled file did not load.
CANCELLED = "cancelled; its rows were rolled back"


class Cancelled(CsvpgError):
    """The run was cancelled while this file loaded: its transaction rolls back."""


class CancelToken:
    """Cancellation of one run, from any thread (a signal, the dashboard's ``q``, the
    API): files not started are skipped, statements in flight are cancelled on the
    server, and a load checks :meth:`raise_if_cancelled` between its steps."""

    def __init__(self) -> None:
        #: Set by :meth:`cancel`: files in flight roll back and are recorded cancelled.
        self.cancelled = threading.Event()
        #: Set by :meth:`cancel`, and by ``fail_fast`` after a failure: start no file.
        self.stopping = threading.Event()
        self._lock = threading.Lock()
        self._in_flight: set[psycopg.Connection[Any]] = set()

    def cancel(self) -> None:
        self.cancelled.set()
        self.stopping.set()
        with self._lock:
            busy = list(self._in_flight)
        for conn in busy:
            try:
                conn.cancel_safe(timeout=10)
            except (psycopg.Error, OSError) as exc:  # closed meanwhile, or unreachable
                log.debug("cannot cancel a statement: %s", exc)

    def raise_if_cancelled(self, url: str) -> None:
        if self.cancelled.is_set():
            raise Cancelled(f"{url}: {CANCELLED}", file=url)

    @contextmanager
    def in_flight(self, conn: psycopg.Connection[Any], url: str) -> Iterator[None]:
        """``conn`` loads ``url`` while in the block: :meth:`cancel` interrupts it."""
        with self._lock:
            self._in_flight.add(conn)
        try:
            self.raise_if_cancelled(url)  # cancelled since the connect: cancel() missed it
            yield
        finally:
            with self._lock:
                self._in_flight.discard(conn)


class ConnectionBudget:
    """The connections a run may hold: one per file still to load, and a large file's
    extra ones, borrowed while no other file needs them (see :mod:`csvpg.pg.split`)."""

    def __init__(self, run_id: str) -> None:
        self.run_id = run_id
        #: Set once the server was asked what it allows (``[run] workers``).
        self.connections = 1
        self._unfinished = 0
        self._borrowed = 0
        self._lock = threading.Lock()
        self._splits = itertools.count()
        #: Whether any file made scratch: the run checks it is gone at its end.
        self.made_scratch = False

    def start(self, connections: int, files: int) -> None:
        with self._lock:
            self.connections, self._unfinished = connections, files

    def borrow(self, want: int) -> int:
        """Up to ``want`` connections no file of this run needs now; give them back with
        :meth:`give_back`."""
        with self._lock:
            n = max(0, min(want, self.connections - self._unfinished - self._borrowed))
            self._borrowed += n
            return n

    def give_back(self, n: int) -> None:
        with self._lock:
            self._borrowed -= n

    def file_finished(self) -> None:
        with self._lock:
            self._unfinished -= 1

    def scratch_schema(self) -> str:
        """A name for one split file's scratch tables, ``csvpg_split_<run>_<n>``."""
        self.made_scratch = True
        return f"csvpg_split_{self.run_id}_{next(self._splits)}"


@dataclass(frozen=True)
class RunContext:
    """One run, as each of its file loads sees it."""

    run_id: str
    job: Job
    #: The target database, resolved; and where runs, files and rejects go.
    dsn: str
    history_dsn: str
    #: ``[sink] max_rejects`` as (count, share): see :func:`csvpg.pg.rejects.reject_limit`.
    limit: tuple[int | None, float | None]
    #: Reports an event (the ``track_event`` hook), one at a time.
    emit: Callable[[ev.Event], None]
    #: The run's own: shared by all its files (a budget names the run's scratch).
    cancel: CancelToken
    budget: ConnectionBudget
    #: ``csvpg.manifest`` exists in the target: files can be compared with their last load.
    has_manifest: bool = False
    dry_run: bool = False
    #: Load every file, even one the manifest says is unchanged.
    force: bool = False
    log: logging.Logger = log

    @property
    def separate_history(self) -> bool:
        return self.history_dsn != self.dsn
