"""Run history: ``csvpg.runs`` (one row a run) and ``csvpg.run_files`` (one a file).

A loaded file's row is written in the file's own transaction, so the history can never
claim a load that did not happen, nor miss one that did.
"""

from __future__ import annotations

import json
import logging
import threading
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import psycopg
from psycopg.types.json import Jsonb

if TYPE_CHECKING:
    from csvpg.summary import FileSummary, RunSummary

log = logging.getLogger(__name__)


def hold(conn: psycopg.Connection[Any], run_id: str) -> None:
    """Take the run's session lock on ``conn`` (kept open while the run lives)."""
    conn.execute("SELECT pg_advisory_lock(hashtext('csvpg.run'), hashtext(%s))", (run_id,))


class Liveness:
    """The sessions holding a run's lock while it lives. A session the server lost (it
    restarted, or an administrator ended it) is opened again and takes the lock back,
    checked every :attr:`every` seconds: a live run is not left looking abandoned."""

    every = 1.0

    def __init__(self, run_id: str) -> None:
        self.run_id = run_id
        #: DSN → its session (None while the server cannot be reached); the history's first.
        self.sessions: dict[str, psycopg.Connection[Any] | None] = {}
        self.history: str | None = None
        self._stop = threading.Event()
        self._watcher: threading.Thread | None = None

    def hold(self, dsn: str, *, history: bool = False) -> None:
        self.sessions[dsn] = self._take(dsn, wait=True)
        if history:
            self.history = dsn
        if self._watcher is None:
            self._watcher = threading.Thread(target=self._watch, name="csvpg-liveness", daemon=True)
            self._watcher.start()

    def _take(self, dsn: str, *, wait: bool = False) -> psycopg.Connection[Any] | None:
        """A session holding the lock; None when the lost one still holds it (the server
        has not seen it gone yet): the watcher tries again, never waits."""
        from csvpg.pg.connect import connect

        conn = connect(dsn, autocommit=True, connect_timeout=10)
        try:
            if wait:
                hold(conn, self.run_id)
                return conn
            row = conn.execute(
                "SELECT pg_try_advisory_lock(hashtext('csvpg.run'), hashtext(%s))",
                (self.run_id,),
            ).fetchone()
        except BaseException:
            conn.close()
            raise
        if row and row[0]:
            return conn
        conn.close()
        return None

    def _watch(self) -> None:
        while not self._stop.wait(self.every):
            for dsn, conn in list(self.sessions.items()):
                if self._stop.is_set():
                    return
                if conn is not None and _answers(conn):
                    continue
                if conn is not None:
                    conn.close()
                self.sessions[dsn] = None
                try:
                    taken = self.sessions[dsn] = self._take(dsn)
                    if taken is not None:
                        if dsn == self.history:
                            revive(taken, self.run_id)
                        log.info("run %s took its lock again", self.run_id)
                except Exception as exc:  # the server is still away: try again soon
                    log.debug("run %s cannot take its lock again yet: %s", self.run_id, exc)

    def close(self) -> None:
        """The run is over: its lock is released."""
        self._stop.set()
        if self._watcher is not None:
            self._watcher.join()
        for conn in self.sessions.values():
            if conn is not None:
                conn.close()
        self.sessions.clear()


def _answers(conn: psycopg.Connection[Any]) -> bool:
    try:
        conn.execute("SELECT 1")
        return True
    except psycopg.Error:
        return False


def alive(conn: psycopg.Connection[Any], run_id: str) -> bool:
    """Whether the run's process still holds its lock. Call it in a transaction: a
    dead run's lock stays taken until that transaction ends."""
    row = conn.execute(
        "SELECT pg_try_advisory_xact_lock(hashtext('csvpg.run'), hashtext(%s))", (run_id,)
    ).fetchone()
    return not (row and row[0])


def reap(conn: psycopg.Connection[Any]) -> list[str]:
    """Runs still 'running' whose process is gone (killed, machine lost) become
    'abandoned': their lock is free. Returns their ids."""
    with conn.transaction():
        running = conn.execute("SELECT id FROM csvpg.runs WHERE status = 'running'").fetchall()
        gone = [run_id for (run_id,) in running if not alive(conn, run_id)]
        if gone:
            conn.execute(
                "UPDATE csvpg.runs SET status = 'abandoned', finished_at = now()"
                " WHERE id = ANY(%s) AND status = 'running'",
                (gone,),
            )
    return gone


def run_started(
    conn: psycopg.Connection[Any], run_id: str, job: str, digest: str, database: str
) -> None:
    with conn.transaction():
        conn.execute(
            "INSERT INTO csvpg.runs (id, job, spec_hash, status, database)"
            " VALUES (%s, %s, %s, 'running', %s) ON CONFLICT (id) DO NOTHING",
            (run_id, job, digest, database),
        )


def file_done(conn: psycopg.Connection[Any], run_id: str, f: FileSummary) -> None:
    conn.execute(
        """
        INSERT INTO csvpg.run_files (run_id, file, table_name, status, rows_read, inserted,
            updated, collapsed, rejected, seconds, error, hint, details, unchanged)
        VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
        ON CONFLICT (run_id, file) DO UPDATE SET status = EXCLUDED.status,
            rows_read = EXCLUDED.rows_read, inserted = EXCLUDED.inserted,
            updated = EXCLUDED.updated, collapsed = EXCLUDED.collapsed,
            unchanged = EXCLUDED.unchanged,
            rejected = EXCLUDED.rejected, seconds = EXCLUDED.seconds,
            error = EXCLUDED.error, hint = EXCLUDED.hint, details = EXCLUDED.details
        """,
        (
            run_id,
            f.file,
            f.table,
            f.status,
            f.rows_read,
            f.inserted,
            f.updated,
            f.collapsed,
            f.rejected,
            f.seconds,
            f.error,
            f.hint,
            Jsonb(json.loads(json.dumps(f.details, default=str))),
            f.unchanged,
        ),
    )


def notified(conn: psycopg.Connection[Any], run_id: str, deliveries: list[dict[str, Any]]) -> None:
    with conn.transaction():
        conn.execute(
            "UPDATE csvpg.runs SET notifications = %s WHERE id = %s", (Jsonb(deliveries), run_id)
        )


def prune(conn: psycopg.Connection[Any], job: str, keep_days: int) -> int:
    """Forget this job's runs (their files and rejects too) older than ``keep_days``.
    The manifest stays: pruning history never makes a loaded file load again."""
    with conn.transaction():
        cur = conn.execute(
            "DELETE FROM csvpg.runs"
            " WHERE job = %s AND started_at < now() - make_interval(days => %s)",
            (job, keep_days),
        )
        return cur.rowcount


def end_values(
    summary: RunSummary, *, error: str | None = None, hint: str | None = None
) -> dict[str, Any]:
    """The columns of a run's end, as :func:`record_end` writes them (JSON-able: a run
    end the history could not take is kept in a file until it can, see csvpg.pending)."""
    return {
        "status": summary.status,
        "finished_at": datetime.now(UTC).isoformat(),
        "files": len(summary.files),
        "files_failed": sum(f.status == "failed" for f in summary.files),
        "rows_read": summary.total("rows_read"),
        "inserted": summary.total("inserted"),
        "updated": summary.total("updated"),
        "collapsed": summary.total("collapsed"),
        "rejected": summary.total("rejected"),
        "seconds": summary.seconds,
        "unchanged": summary.total("unchanged"),
        "error": error,
        "hint": hint,
    }


def run_finished(
    conn: psycopg.Connection[Any],
    summary: RunSummary,
    *,
    error: str | None = None,
    hint: str | None = None,
) -> int:
    """The run's end: its status and totals (and, for a run that ended early, why)."""
    return record_end(conn, summary.run_id, end_values(summary, error=error, hint=hint))


def record_end(
    conn: psycopg.Connection[Any], run_id: str, values: dict[str, Any], *, late: bool = False
) -> int:
    """Write a run's end (:func:`end_values`); the rows updated, 0 when this database has
    no such run. ``late``: an end kept while the history was away, written only over a
    row still 'running' (or reaped as 'abandoned' meanwhile)."""
    with conn.transaction():
        cur = conn.execute(
            """
            UPDATE csvpg.runs SET status = %(status)s,
                finished_at = %(finished_at)s::timestamptz, files = %(files)s,
                files_failed = %(files_failed)s, rows_read = %(rows_read)s,
                inserted = %(inserted)s, updated = %(updated)s, collapsed = %(collapsed)s,
                rejected = %(rejected)s, seconds = %(seconds)s, unchanged = %(unchanged)s,
                error = %(error)s, hint = %(hint)s
            WHERE id = %(id)s AND (NOT %(late)s OR status IN ('running', 'abandoned'))
            """,
            {**values, "id": run_id, "late": late},
        )
        return cur.rowcount


def known(conn: psycopg.Connection[Any], run_id: str) -> bool:
    """Whether this history has the run."""
    row = conn.execute("SELECT 1 FROM csvpg.runs WHERE id = %s", (run_id,)).fetchone()
    return row is not None


def revive(conn: psycopg.Connection[Any], run_id: str) -> None:
    """A live run that lost its lock (the server restarted) and took it again: if a
    reaper saw the lock free meanwhile and marked it 'abandoned', it is running again."""
    with conn.transaction():
        conn.execute(
            "UPDATE csvpg.runs SET status = 'running', finished_at = NULL"
            " WHERE id = %s AND status = 'abandoned'",
            (run_id,),
        )
