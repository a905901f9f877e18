"""Runs ``csvpg serve`` queues (``POST /runs``, the web app's Run button) or finds queued:
their files load on whichever worker takes them (the server's own, ``--workers``, or a
``csvpg worker`` elsewhere), so their live state is read from the database.

A :class:`Follower` polls the run's rows (``csvpg.runs``, ``csvpg.run_files``, and the
queue's tasks in flight) and turns what changed into the engine's events, for the run's
:class:`~csvpg.serve.live.LiveRun` and its live page, as a run loading here feeds them.
A file the server's own worker loads also sends its own events (bytes read, rejects) as
they happen (:class:`LocalEvents`); either source's end of a file counts once.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

import psycopg

from csvpg import events as ev
from csvpg.errors import CsvpgError
from csvpg.hookspecs import hookimpl
from csvpg.pg import history
from csvpg.pg import queue as queue_sql
from csvpg.pg.connect import connect
from csvpg.serve.live import LiveRun, QueuedHandle
from csvpg.worker.app import LOAD_FILE

log = logging.getLogger(__name__)

#: Seconds between two looks at a followed run's rows.
POLL = 0.5


class Follower:
    """One queued run followed until it ends; ``ended`` gets its history's dict."""

    def __init__(
        self,
        live: LiveRun,
        handle: QueuedHandle,
        read: Callable[[str], dict[str, Any] | None],
        ended: Callable[[LiveRun, dict[str, Any]], None],
    ) -> None:
        self.live, self.handle, self.read, self.ended = live, handle, read, ended
        self._lock = threading.Lock()
        self._started: set[str] = set()
        self._finished: set[str] = set()
        self._planned = False
        self._stop = threading.Event()

    def start(self) -> Follower:
        name = f"csvpg-follow-{self.live.run_id[:8]}"
        threading.Thread(target=self._loop, name=name, daemon=True).start()
        return self

    def stop(self) -> None:
        self._stop.set()

    def _emit(self, event: ev.Event) -> None:
        self.live.track_event(event)
        self.handle.put(event)

    def local(self, event: ev.Event) -> None:
        """An event of the server's own worker loading one of the run's files."""
        file = getattr(event, "file", None)
        if file is None:
            return  # the run's start and end are the database's to say
        with self._lock:
            if file in self._finished:
                return
            if isinstance(event, ev.FileStarted):
                self._started.add(file)
                with self.live.lock:  # the worker marked the run running before
                    if self.live.status == "queued":
                        self.live.status = "running"
            elif isinstance(event, ev.FileLoaded | ev.FileFailed | ev.FileCancelled):
                self._finished.add(file)
            self._emit(event)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                if self._poll():
                    return
            except (psycopg.Error, CsvpgError) as exc:  # the database away: look again
                log.warning("cannot read run %s: %s", self.live.run_id, exc)
            self._stop.wait(POLL)

    def _poll(self) -> bool:
        """One look; True once the run has ended (and its end is handed on)."""
        run_id = self.live.run_id
        with connect(self.handle.dsn, connect_timeout=10) as conn:
            run = queue_sql.queued_run(conn, run_id)
            files = history.files(conn, run_id)
            flying = queue_sql.files_in_flight(conn, run_id, LOAD_FILE)
        if run is None:
            return False  # not written yet
        with self._lock:
            self._changes(run, files, flying)
        if not run.finished:
            return False
        found = self.read(run_id) or {"run_id": run_id, "status": run.status, "files": []}
        self.ended(self.live, found)
        self.handle.end(found)
        return True

    def _changes(
        self, run: queue_sql.QueuedRun, files: list[history.FileRow], flying: list[str]
    ) -> None:
        run_id = run.id
        if not self._planned:
            self._planned = True
            self._emit(
                ev.JobStarted(run_id=run_id, job=run.job, files=run.queued_files, database="")
            )
        for url in flying:
            if url not in self._started and url not in self._finished:
                self._started.add(url)
                self._emit(ev.FileStarted(run_id=run_id, file=url, table="", size=None))
        for f in files:
            if f.file not in self._finished:
                self._finished.add(f.file)
                self._emit(file_event(run_id, f))
        with self.live.lock:
            if not run.finished:
                self.live.status = run.status
                if run.status == "queued":
                    self.live.phase = "queued"


def file_event(run_id: str, f: history.FileRow) -> ev.Event:
    """A file's end as a worker recorded it, as the engine would have said it."""
    seconds = f.seconds or 0.0
    if f.status == "loaded":
        return ev.FileLoaded(
            run_id=run_id,
            file=f.file,
            table=f.table or "",
            rows_read=f.rows_read,
            inserted=f.inserted,
            updated=f.updated,
            collapsed=f.collapsed,
            rejected=f.rejected,
            seconds=seconds,
            unchanged=f.unchanged,
        )
    if f.status == "failed":
        return ev.FileFailed(
            run_id=run_id,
            file=f.file,
            table=f.table,
            message=f.error or "failed",
            hint=f.hint,
            seconds=seconds,
        )
    if f.status == "cancelled":
        return ev.FileCancelled(run_id=run_id, file=f.file, table=f.table, seconds=seconds)
    return ev.FileSkipped(run_id=run_id, file=f.file, reason=f.error or f.status)


class LocalEvents:
    """The server's own worker's events, handed to the followers of their runs."""

    def __init__(self, followers: dict[str, Follower]) -> None:
        self.followers = followers

    @hookimpl
    def track_event(self, event: ev.Event) -> None:
        follower = self.followers.get(event.run_id)
        if follower is not None:
            follower.local(event)
