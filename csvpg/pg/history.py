"""Run history: ``csvpg.runs`` (one row a run) and ``csvpg.run_files`` (one a file).

A loaded file's row is written in the file's own transaction, so the history can never
claim a load that did not happen, nor miss one that did. What is read back (runs, files,
rejects, webhook deliveries) is read here, as :class:`RunRow`, :class:`FileRow`,
:class:`RejectRow` and :class:`NotificationRow`, by ``csvpg runs``, the dashboard and
``csvpg serve`` alike.
"""

from __future__ import annotations

import json
import logging
import threading
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar

import psycopg
from psycopg.rows import kwargs_row
from psycopg.types.json import Jsonb

from csvpg.masking import mask_text

if TYPE_CHECKING:
    from collections.abc import Callable

    from csvpg.summary import FileSummary, RunSummary

T = TypeVar("T")

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
        # A queued run's files are the workers' (csvpg.pg.queue): no one process holds it.
        running = conn.execute(
            "SELECT id FROM csvpg.runs WHERE status = 'running' AND queued_files IS NULL"
        ).fetchall()
        gone = [run_id for (run_id,) in running if not alive(conn, run_id)]
        if gone:
            conn.execute(
                "UPDATE csvpg.runs SET status = 'abandoned', finished_at = now()"
                " WHERE id = ANY(%s) AND status = 'running'",
                (gone,),
            )
    return gone


def run_started(
    conn: psycopg.Connection[Any],
    run_id: str,
    job: str,
    digest: str,
    database: str,
    *,
    replay_of: str | None = None,
) -> None:
    """A run's row, as it starts; ``replay_of``: the run whose rejects it replays."""
    with conn.transaction():
        conn.execute(
            "INSERT INTO csvpg.runs (id, job, spec_hash, status, database, replay_of)"
            " VALUES (%s, %s, %s, 'running', %s, %s) ON CONFLICT (id) DO NOTHING",
            (run_id, job, digest, database, replay_of),
        )


def file_after_load(
    conn: psycopg.Connection[Any], run_id: str, url: str, done: dict[str, Any]
) -> None:
    """A loaded file's ``details.after_load``: deleted, moved (and where) or kept (why)."""
    conn.execute(
        """
        UPDATE csvpg.run_files
        SET details = coalesce(details, '{}'::jsonb) || jsonb_build_object('after_load', %s::jsonb)
        WHERE run_id = %s AND file = %s
        """,
        (Jsonb(done), run_id, url),
    )


_FILE_DONE = """
    INSERT INTO csvpg.run_files (run_id, file, table_name, status, rows_read, inserted,
        updated, collapsed, rejected, seconds, error, hint, details, unchanged, drift)
    VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
    ON CONFLICT (run_id, file) DO UPDATE SET status = EXCLUDED.status,
        rows_read = EXCLUDED.rows_read, inserted = EXCLUDED.inserted,
        updated = EXCLUDED.updated, collapsed = EXCLUDED.collapsed,
        unchanged = EXCLUDED.unchanged,
        rejected = EXCLUDED.rejected, seconds = EXCLUDED.seconds,
        error = EXCLUDED.error, hint = EXCLUDED.hint, details = EXCLUDED.details,
        drift = EXCLUDED.drift
"""


def _dumps_any(obj: Any) -> str:
    """JSON of a file's details, whatever plugins put there (a date, a Path: as text)."""
    return json.dumps(obj, default=str)


def _file_values(run_id: str, f: FileSummary) -> tuple[Any, ...]:
    return (
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
        Jsonb(f.details, dumps=_dumps_any),
        f.unchanged,
        Jsonb(drift) if (drift := f.details.get("drift")) else None,
    )


def file_done(conn: psycopg.Connection[Any], run_id: str, f: FileSummary) -> None:
    conn.execute(_FILE_DONE, _file_values(run_id, f))


def files_done(conn: psycopg.Connection[Any], run_id: str, files: list[FileSummary]) -> None:
    """The rows of many files at once (a run's unchanged files): one pipelined batch."""
    if files:
        with conn.cursor() as cur:
            cur.executemany(_FILE_DONE, [_file_values(run_id, f) for f in files])


def notified(conn: psycopg.Connection[Any], run_id: str, deliveries: list[dict[str, Any]]) -> None:
    with conn.transaction():
        conn.execute(
            "UPDATE csvpg.runs SET notifications = %s WHERE id = %s", (Jsonb(deliveries), run_id)
        )


def write_per_byte(
    conn: psycopg.Connection[Any],
    job: str,
    files: int = 20,
    at_least: int = 4 << 20,
    runs: int = 20,
) -> float | None:
    """Seconds PostgreSQL went on writing after a file was read, per byte, over the
    job's last ``files`` files of ``at_least`` bytes loaded on the fast path (a small
    file's write is mostly a commit's fixed cost) in its last ``runs`` runs: the time
    left of a run counts the write phase from its first second. None before the job has
    such a file.

    Every run starts with this query, so it reads the files of the job's last runs
    alone, through ``run_files``' key: over the whole of ``run_files`` it took 45 ms
    with 50,000 files of other jobs in the history, and longer each night."""
    row = conn.execute(
        """
        SELECT sum(f.seconds - (f.details->>'read_seconds')::float8)
               / nullif(sum((f.details->>'bytes')::float8), 0)
        FROM (
            SELECT f.seconds, f.details
            FROM (
                SELECT id, started_at FROM csvpg.runs
                WHERE job = %s ORDER BY started_at DESC LIMIT %s
            ) r
            CROSS JOIN LATERAL (
                SELECT f.seconds, f.details FROM csvpg.run_files f
                WHERE f.run_id = r.id AND f.status = 'loaded' AND f.details ? 'read_seconds'
                  AND f.details->>'careful' = 'false' AND (f.details->>'bytes')::bigint >= %s
                OFFSET 0  -- a run's files through the key, not a scan of every run's
            ) f
            ORDER BY r.started_at DESC
            LIMIT %s
        ) f
        """,
        (job, runs, at_least, files),
    ).fetchone()
    return None if row is None or row[0] is None else max(0.0, float(row[0]))


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
    end the history could not take is kept in a file until it can, see csvpg.engine.pending)."""
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


# -- reading the history --------------------------------------------------------------
#
# One row shape a kind, for ``csvpg runs``, the dashboard and ``csvpg serve`` alike: a
# column added to csvpg.runs is added here once. Text that may hold a secret (a DSN in an
# error, a webhook URL) is masked as it is read, also in rows written before csvpg
# masked it.


@dataclass(frozen=True)
class NotificationRow:
    """One webhook delivery of a run (``csvpg.notify.Delivery`` as the history keeps it)."""

    url: str | None
    status: str
    attempts: int = 0
    http_status: int | None = None
    error: str | None = None

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> NotificationRow:
        return cls(
            _masked(data.get("url")),
            str(data.get("status", "")),
            int(data.get("attempts") or 0),
            data.get("http_status"),
            _masked(data.get("error")),
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class RunRow:
    """One run, as ``csvpg.runs`` has it."""

    id: str
    job: str
    status: str
    started_at: datetime
    finished_at: datetime | None = None
    seconds: float | None = None
    files: int = 0
    files_failed: int = 0
    rows_read: int = 0
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    collapsed: int = 0
    rejected: int = 0
    database: str = ""
    spec_hash: str = ""
    error: str | None = None
    hint: str | None = None
    notifications: tuple[NotificationRow, ...] = ()
    #: A run queued for workers (csvpg.pg.queue): how many files it has; else None.
    queued_files: int | None = None
    #: The ``[schedule]`` tick it was made for, if a schedule made it.
    scheduled_for: datetime | None = None
    #: A replay run (``csvpg rejects RUN --replay``): the run whose rejects it replays.
    replay_of: str | None = None
    #: Of its rejects, how many are still open, and how many a replay loaded since.
    rejects_open: int = 0
    rejects_resolved: int = 0

    def to_dict(self) -> dict[str, Any]:
        """JSON-able, as ``GET /runs/{id}`` answers: every column, and ``run_id``."""
        data = {f.name: _jsonable(getattr(self, f.name)) for f in fields(self)}
        data["notifications"] = [n.to_dict() for n in self.notifications]
        return {**data, "run_id": self.id}

    def listed(self) -> dict[str, Any]:
        """The columns a list of runs shows (``GET /runs``)."""
        data = self.to_dict()
        return {name: data[name] for name in LISTED}


#: What ``GET /runs`` gives of each run.
LISTED = (
    "run_id",
    "job",
    "status",
    "started_at",
    "finished_at",
    "files",
    "files_failed",
    "rows_read",
    "inserted",
    "updated",
    "unchanged",
    "rejected",
    "rejects_open",
    "rejects_resolved",
    "replay_of",
    "seconds",
)


@dataclass(frozen=True)
class FileRow:
    """One file of a run, as ``csvpg.run_files`` has it."""

    file: str
    table: str | None
    status: str
    rows_read: int = 0
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    collapsed: int = 0
    rejected: int = 0
    seconds: float | None = None
    error: str | None = None
    hint: str | None = None
    details: dict[str, Any] = field(default_factory=dict, compare=False)
    #: What the load changed in its table or left out: added, widened, discarded,
    #: missing (see :class:`csvpg.pg.drift.Drift`); None when nothing.
    drift: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-able, as ``GET /runs/{id}`` lists a run's files (without ``details``)."""
        return _fields(self, but="details")


@dataclass(frozen=True)
class RejectRow:
    """One row set aside, as ``csvpg.rejects`` has it."""

    file: str
    line: int | None
    column: str | None
    value: str | None
    reason: str
    sqlstate: str | None = None
    #: The record as the file has it (or, for a row a transform made, its values).
    raw: str | None = None
    id: int | None = None
    #: Where ``raw``'s bytes are in the file, and how many.
    byte_offset: int | None = None
    byte_length: int | None = None
    #: The replay run that loaded it, and when; None while it is open.
    resolved_by: str | None = None
    resolved_at: datetime | None = None
    #: The last replay run it failed again in (its reason is that run's).
    replayed_by: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """As ``GET /runs/{id}/rejects`` answers (and the dashboard's rejects pane reads):
        every field but ``sqlstate``, which the reason already explains."""
        data = _fields(self, but="sqlstate")
        data["resolved_at"] = _jsonable(self.resolved_at)
        return data


@dataclass(frozen=True)
class JobTotals:
    """The runs of one job that ended one way, summed (``GET /metrics``)."""

    job: str
    status: str
    runs: int
    rows_read: int
    files: int
    files_failed: int
    seconds: float
    rejected: int = 0
    #: When the last of these runs ended (or began, if it has no end).
    last_at: datetime | None = None


_RUN_COLUMNS = (
    "id, job, status, started_at, finished_at, seconds, files, files_failed, rows_read,"
    " inserted, updated, unchanged, collapsed, rejected, database, spec_hash, error, hint,"
    " notifications, queued_files, scheduled_for, replay_of,"
    " (SELECT count(*) FILTER (WHERE j.resolved_by IS NULL) FROM csvpg.rejects j"
    "  WHERE j.run_id = csvpg.runs.id) AS rejects_open,"
    " (SELECT count(*) FILTER (WHERE j.resolved_by IS NOT NULL) FROM csvpg.rejects j"
    "  WHERE j.run_id = csvpg.runs.id) AS rejects_resolved"
)
_FILE_COLUMNS = (
    "file, table_name, status, rows_read, inserted, updated, unchanged, collapsed, rejected,"
    " seconds, error, hint, details, drift"
)


def _fields(row: Any, *, but: str) -> dict[str, Any]:
    return {f.name: getattr(row, f.name) for f in fields(row) if f.name != but}


def _masked(text: Any) -> Any:
    return mask_text(text) if isinstance(text, str) else text


def _jsonable(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


def _run_row(**row: Any) -> RunRow:
    notifications = tuple(NotificationRow.from_dict(n) for n in row.pop("notifications") or [])
    for name in ("database", "error", "hint"):
        row[name] = _masked(row[name])
    return RunRow(**row, notifications=notifications)


def _file_row(**row: Any) -> FileRow:
    row["table"] = row.pop("table_name")
    row["details"] = row["details"] or {}
    row["error"], row["hint"] = _masked(row["error"]), _masked(row["hint"])
    return FileRow(**row)


def _rows(
    conn: psycopg.Connection[Any],
    row: Callable[..., T],
    query: str,
    params: dict[str, Any] | tuple[Any, ...] = (),
) -> list[T]:
    """``query``'s rows, each made by ``row`` from its columns by name."""
    with conn.cursor(row_factory=kwargs_row(row)) as cur:
        return cur.execute(query.encode(), params).fetchall()


def has_history(conn: psycopg.Connection[Any]) -> bool:
    """Whether any run has written here yet (without creating csvpg's schema)."""
    row = conn.execute("SELECT to_regclass('csvpg.runs') IS NOT NULL").fetchone()
    return bool(row and row[0])


def runs(
    conn: psycopg.Connection[Any],
    *,
    job: str | None = None,
    status: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    rejects: bool | None = None,
    limit: int = 50,
) -> list[RunRow]:
    """The latest runs, newest first; of one job, one status, started in [since, until),
    with (or without) rejects, if given."""
    return _rows(
        conn,
        _run_row,
        f"SELECT {_RUN_COLUMNS} FROM csvpg.runs"
        " WHERE (%(job)s::text IS NULL OR job = %(job)s)"
        " AND (%(status)s::text IS NULL OR status = %(status)s)"
        " AND (%(since)s::timestamptz IS NULL OR started_at >= %(since)s)"
        " AND (%(until)s::timestamptz IS NULL OR started_at < %(until)s)"
        " AND (%(rejects)s::boolean IS NULL OR (rejected > 0) = %(rejects)s)"
        " ORDER BY started_at DESC, id LIMIT %(limit)s",
        {
            "job": job,
            "status": status,
            "since": since,
            "until": until,
            "rejects": rejects,
            "limit": limit,
        },
    )


def run(conn: psycopg.Connection[Any], run_id: str) -> RunRow | None:
    """One run by its id."""
    found = _rows(
        conn,
        _run_row,
        f"SELECT {_RUN_COLUMNS} FROM csvpg.runs WHERE id = %s",
        (run_id,),
    )
    return found[0] if found else None


def runs_named(conn: psycopg.Connection[Any], id_or_prefix: str) -> list[RunRow]:
    """The runs whose id is ``id_or_prefix`` or starts with it, newest first: a person
    types a few characters of an id."""
    prefix = id_or_prefix.replace("%", "").replace("_", r"\_") + "%"
    return _rows(
        conn,
        _run_row,
        f"SELECT {_RUN_COLUMNS} FROM csvpg.runs"
        " WHERE id = %s OR id LIKE %s ORDER BY started_at DESC, id",
        (id_or_prefix, prefix),
    )


def one_run(conn: psycopg.Connection[Any], id_or_prefix: str) -> RunRow:
    """The one run ``id_or_prefix`` names; none, or several, is an error saying so."""
    from csvpg.errors import CsvpgError

    found = runs_named(conn, id_or_prefix)
    if len(found) != 1:
        raise CsvpgError(
            f"no run {id_or_prefix!r}"
            if not found
            else f"{id_or_prefix!r} names {len(found)} runs",
            hint="csvpg runs lists the run ids; a unique prefix is enough",
        )
    return found[0]


def files(conn: psycopg.Connection[Any], run_id: str) -> list[FileRow]:
    """A run's files, by name."""
    return _rows(
        conn,
        _file_row,
        f"SELECT {_FILE_COLUMNS} FROM csvpg.run_files WHERE run_id = %s ORDER BY file",
        (run_id,),
    )


def rejects(
    conn: psycopg.Connection[Any],
    run_id: str,
    *,
    file: str | None = None,
    limit: int | None = None,
    offset: int = 0,
    only_open: bool = False,
) -> list[RejectRow]:
    """A run's rejects (of one file if given; only those no replay loaded yet with
    ``only_open``), by file and line; ``limit`` None: all."""
    return _rows(
        conn,
        RejectRow,
        "SELECT file, line, column_name AS column, value, reason, sqlstate, raw, id,"
        " byte_offset, byte_length, resolved_by, resolved_at, replayed_by"
        " FROM csvpg.rejects WHERE run_id = %(run)s"
        " AND (%(file)s::text IS NULL OR file = %(file)s)"
        " AND (NOT %(open)s OR resolved_by IS NULL)"
        " ORDER BY file, line NULLS LAST, id LIMIT %(limit)s OFFSET %(offset)s",
        {"run": run_id, "file": file, "limit": limit, "offset": offset, "open": only_open},
    )


def open_reject_files(conn: psycopg.Connection[Any], run_id: str) -> list[str]:
    """The files of a run that still have rejects no replay loaded, by name."""
    rows = conn.execute(
        "SELECT DISTINCT file FROM csvpg.rejects WHERE run_id = %s AND resolved_by IS NULL"
        " ORDER BY file",
        (run_id,),
    ).fetchall()
    return [file for (file,) in rows]


def totals(conn: psycopg.Connection[Any]) -> list[JobTotals]:
    """Every job's runs summed by how they ended."""
    return _rows(
        conn,
        JobTotals,
        "SELECT job, status, count(*) AS runs, coalesce(sum(rows_read), 0) AS rows_read,"
        " coalesce(sum(files), 0) AS files, coalesce(sum(files_failed), 0) AS files_failed,"
        " coalesce(sum(seconds), 0) AS seconds, coalesce(sum(rejected), 0) AS rejected,"
        " max(coalesce(finished_at, started_at)) AS last_at FROM csvpg.runs"
        " GROUP BY job, status ORDER BY job, status",
    )
