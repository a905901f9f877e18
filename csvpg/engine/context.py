"""What a file's load needs of its run — and nothing more. :class:`csvpg.engine.run.Engine`
makes one :class:`RunContext` per run (the job, where to write, the reject limit, how to
report, how to tell it was cancelled, the run's connection budget) and from it one
:class:`FileContext` per file: that file's route and the few job settings a load follows.
A :class:`csvpg.engine.fileload.FileLoad` gets its file's context; it never sees the engine
or the whole job."""

from __future__ import annotations

import itertools
import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import psycopg

from csvpg import events as ev
from csvpg.engine.plan import FilePlan
from csvpg.errors import CsvpgError
from csvpg.interfaces import Source
from csvpg.pg.connect import connect
from csvpg.spec import Job, RunSection

__all__ = [
    "CANCELLED",
    "CancelToken",
    "Cancelled",
    "ConnectionBudget",
    "FileContext",
    "RunContext",
    "Sessions",
]

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


class Sessions:
    """Connections a run's threads keep from one file to the next: a thread that loads
    many small files opens one connection per database, not one per file (an opening
    costs more than a small file's load). A connection goes back only when its block
    ended cleanly with no transaction left open (an open implicit one is committed, as
    ``with connect(...)`` would); after an error it is closed, so no file inherits a
    broken or half-done session. ``keep=False``: every block opens and closes its own."""

    def __init__(self, *, keep: bool = True) -> None:
        self.keep = keep
        self._local = threading.local()
        self._lock = threading.Lock()
        #: Every connection open, and the DSN it was opened for.
        self._open: dict[psycopg.Connection[Any], str] = {}
        self._busy: set[psycopg.Connection[Any]] = set()

    @contextmanager
    def connection(self, dsn: str, **kwargs: Any) -> Iterator[psycopg.Connection[Any]]:
        """A connection to ``dsn`` (a new one is opened with ``kwargs``)."""
        idle: dict[str, psycopg.Connection[Any]] = self._local.__dict__.setdefault("idle", {})
        conn = idle.pop(dsn, None)
        if conn is None or conn.closed or conn.broken:
            conn = connect(dsn, **kwargs)
            with self._lock:
                self._open[conn] = dsn
        with self._lock:
            self._busy.add(conn)
        clean = False
        try:
            yield conn
            status = conn.info.transaction_status
            if status == psycopg.pq.TransactionStatus.INTRANS:
                conn.commit()
                status = conn.info.transaction_status
            clean = self.keep and status == psycopg.pq.TransactionStatus.IDLE
        finally:
            with self._lock:
                self._busy.discard(conn)
            if clean and dsn not in idle:  # (a nested block's second one is not kept)
                idle[dsn] = conn
            else:
                self._discard(conn)

    def _discard(self, conn: psycopg.Connection[Any]) -> None:
        with self._lock:
            self._open.pop(conn, None)
        conn.close()  # a transaction still open rolls back

    def release(self) -> None:
        """Close the connections this thread keeps: its slots are the files' now (a
        role's connection limit counts every one)."""
        idle: dict[str, psycopg.Connection[Any]] = self._local.__dict__.get("idle", {})
        while idle:
            self._discard(idle.popitem()[1])

    def close(self, *, keeping: str | None = None) -> None:
        """Every kept connection closed: the files are done. ``keeping``: one to that
        DSN (any thread's, idle) is this thread's now, for the run's end: a new one, at a
        role's connection limit, can be refused until the server has seen the closed
        ones go."""
        idle: dict[str, psycopg.Connection[Any]] = self._local.__dict__.setdefault("idle", {})
        with self._lock:
            kept = [c for c in self._open if c not in self._busy]
            ready = [c for c in kept if self._open[c] == keeping and not (c.closed or c.broken)]
            mine = idle.get(keeping) if keeping in idle else (ready[0] if ready else None)
            for conn in kept:
                if conn is not mine:
                    del self._open[conn]
        idle.clear()
        if mine is not None and keeping is not None:
            idle[keeping] = mine
        for conn in kept:
            if conn is not mine:
                conn.close()


@dataclass(frozen=True)
class Replay:
    """A run that replays another run's fixed rejects (``csvpg rejects RUN --replay``):
    one file, loaded as ``file`` with its job settings, from a file of the fixed rows."""

    #: The run whose rejects these are, and the file they were rejects of.
    of_run: str
    file: str
    #: Line in the file loaded → the reject id its row fixes.
    lines: dict[int, int]
    #: Reject id → its fixed row in the source file's dialect (a reject's ``raw``).
    texts: dict[int, str]
    #: The file the run loads: the fixed rows as plain CSV (lines as in ``lines``).
    path: Path


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
    replay: Replay | None = None
    #: The connections its files open (the engine keeps them between files).
    sessions: Sessions = field(default_factory=lambda: Sessions(keep=False))

    def for_file(self, source: Source, fp: FilePlan) -> FileContext:
        """What the load of ``fp`` (opened through ``source``) gets of this run: the
        run's own parts (the fields both contexts name alike), the file's route, and of
        the job only the settings a load follows."""
        mine = {f.name for f in fields(self)}
        shared = {f.name: getattr(self, f.name) for f in fields(FileContext) if f.name in mine}
        return FileContext(
            **shared,
            job_name=self.job.name,
            file=fp,
            source=source,
            settings=self.job.run,
            max_rejects=self.job.sink.max_rejects,
            rejects_csv=self.job.sink.rejects_csv,
            base_dir=self.job.base_dir,
            after_load="keep" if self.replay else self.job.source.after_load,
            move_to=self.job.source.move_to,
        )


@dataclass(frozen=True)
class FileContext:
    """One file's load, as it sees its run: the file's route (its own settings, with its
    ``[[override]]`` applied, are all in :attr:`file`), the job's ``[run]`` settings and
    reject limit, and the run's shared parts. Made by :meth:`RunContext.for_file`."""

    run_id: str
    #: The job's name: the file's manifest row and claim are the job's.
    job_name: str
    #: The file's route: format, transforms, target table, mode and sink.
    file: FilePlan
    #: Opens the file (a second time on the careful path).
    source: Source
    #: ``[run]``: retries and their delay, split_mb, fail_fast.
    settings: RunSection
    #: ``[sink] max_rejects`` as written (to say it), and as (count, share).
    max_rejects: int | str
    limit: tuple[int | None, float | None]
    #: ``[sink] rejects_csv``: a file's rejects also go to a CSV beside the job.
    rejects_csv: bool
    #: The job file's folder (relative paths in sink options, the rejects CSV).
    base_dir: Path
    dsn: str
    history_dsn: str
    emit: Callable[[ev.Event], None]
    cancel: CancelToken
    budget: ConnectionBudget
    has_manifest: bool
    dry_run: bool
    force: bool
    log: logging.Logger
    sessions: Sessions
    #: ``[source] after_load`` and ``move_to``: what happens to the file once it is in.
    after_load: str = "keep"
    move_to: str | None = None
    #: A replay run's file: its rejects resolve the replayed run's (see :class:`Replay`).
    replay: Replay | None = None

    @property
    def separate_history(self) -> bool:
        return self.history_dsn != self.dsn
