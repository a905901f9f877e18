"""The SQL of queued runs: csvpg's side (``csvpg.runs.queued_files``, ``csvpg.workers``)
and what csvpg reads of Procrastinate's tables in the schema ``csvpg_queue``.

A queued run is one row in ``csvpg.runs`` (status ``queued``, then ``running``, then its
end) and one Procrastinate job per file plus one that finishes the run. Its files' rows
in ``csvpg.run_files`` are written by whichever worker loads each file, in the file's own
transaction as for a local run; the run is done when it has ``queued_files`` of them.
Procrastinate's own tables are read here and nowhere else: which jobs a run still has,
and the live workers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any

import psycopg

from csvpg.errors import DatabaseError
from csvpg.pg.connect import connect

#: Procrastinate's tables and functions live here (its connections set search_path).
SCHEMA = "csvpg_queue"

MIGRATION = """
ALTER TABLE csvpg.runs ADD COLUMN queued_files integer;
ALTER TABLE csvpg.runs ADD COLUMN scheduled_for timestamptz;
CREATE TABLE csvpg.queue_schema (version text NOT NULL);
CREATE TABLE csvpg.workers (
    worker_id   bigint PRIMARY KEY,
    name        text NOT NULL,
    host        text NOT NULL,
    pid         integer NOT NULL,
    queues      text NOT NULL,
    started_at  timestamptz NOT NULL DEFAULT now()
)
"""

#: Seconds without a heartbeat that make a worker stalled, as shown: three heartbeats of
#: a worker started with the default ``--heartbeat 10``.
STALLED_AFTER = 30.0

#: What a run still 'queued' or 'running' has not finished (and what the finisher ends).
UNFINISHED = ("queued", "running", "cancelling")


def installed_version(conn: psycopg.Connection[Any]) -> str | None:
    """The Procrastinate version whose schema this database holds; None: none yet."""
    if conn.execute(f"SELECT to_regclass('{SCHEMA}.procrastinate_jobs')").fetchone() == (None,):
        return None
    row = conn.execute("SELECT max(version) FROM csvpg.queue_schema").fetchone()
    return str(row[0]) if row and row[0] else "unknown"


def record_version(conn: psycopg.Connection[Any], version: str) -> None:
    conn.execute("DELETE FROM csvpg.queue_schema")
    conn.execute("INSERT INTO csvpg.queue_schema VALUES (%s)", (version,))


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(p) for p in re.findall(r"\d+", text)[:3])


def refuse_version(installed: str, version: str) -> None:
    """A schema from another Procrastinate: fine unless a migration lies between."""
    from procrastinate.schema import SchemaManager

    folder = Path(SchemaManager.get_migrations_path())
    have = _version(installed) if installed != "unknown" else (0,)
    newer = sorted(
        p.name
        for p in folder.glob("*.sql")
        if have < _version(p.name.split("_")[0]) <= _version(version)
    )
    if not newer:
        return
    raise DatabaseError(
        f"the queue schema {SCHEMA} is Procrastinate {installed}'s; this csvpg uses "
        f"{version}, which needs {len(newer)} migration(s), first {newer[0]}",
        hint=f"stop every csvpg worker, apply them with psql (SET search_path TO {SCHEMA}) "
        f"from {folder}, then UPDATE csvpg.queue_schema SET version = '{version}'",
    )


# -- csvpg's rows of a queued run -------------------------------------------------------


def run_queued(
    conn: psycopg.Connection[Any],
    run_id: str,
    *,
    job: str,
    digest: str,
    database: str,
    files: int,
    scheduled_for: datetime | None = None,
) -> None:
    with conn.transaction():
        conn.execute(
            "INSERT INTO csvpg.runs (id, job, spec_hash, status, database, queued_files,"
            " scheduled_for) VALUES (%s, %s, %s, 'queued', %s, %s, %s)",
            (run_id, job, digest, database, files, scheduled_for),
        )


def file_recorded(conn: psycopg.Connection[Any], run_id: str, url: str) -> str | None:
    """How the run's file ended, if a worker recorded it (a retried task's check)."""
    row = conn.execute(
        "SELECT status FROM csvpg.run_files WHERE run_id = %s AND file = %s", (run_id, url)
    ).fetchone()
    return str(row[0]) if row else None


def mark_running(conn: psycopg.Connection[Any], run_id: str) -> None:
    """The run's first file is taken."""
    with conn.transaction():
        conn.execute(
            "UPDATE csvpg.runs SET status = 'running' WHERE id = %s AND status = 'queued'",
            (run_id,),
        )


@dataclass(frozen=True)
class QueuedRun:
    id: str
    job: str
    status: str
    started_at: datetime
    queued_files: int
    recorded_files: int

    @property
    def files_done(self) -> bool:
        return self.recorded_files >= self.queued_files

    @property
    def finished(self) -> bool:
        return self.status not in UNFINISHED


def queued_run(conn: psycopg.Connection[Any], run_id: str) -> QueuedRun | None:
    row = conn.execute(
        "SELECT r.id, r.job, r.status, r.started_at, r.queued_files,"
        " (SELECT count(*) FROM csvpg.run_files f WHERE f.run_id = r.id)"
        " FROM csvpg.runs r WHERE r.id = %s AND r.queued_files IS NOT NULL",
        (run_id,),
    ).fetchone()
    return QueuedRun(*row) if row else None


def request_cancel(conn: psycopg.Connection[Any], run_id: str) -> bool:
    """The run is to end cancelled; False when it has ended already."""
    with conn.transaction():
        cur = conn.execute(
            "UPDATE csvpg.runs SET status = 'cancelling' WHERE id = %s"
            " AND queued_files IS NOT NULL AND status = ANY(%s)",
            (run_id, list(UNFINISHED)),
        )
        return cur.rowcount > 0


def unfinished_runs(conn: psycopg.Connection[Any], job: str) -> list[str]:
    """The job's queued runs still going: a schedule starts no second one."""
    rows = conn.execute(
        "SELECT id FROM csvpg.runs WHERE job = %s AND queued_files IS NOT NULL"
        " AND status = ANY(%s) ORDER BY started_at",
        (job, list(UNFINISHED)),
    ).fetchall()
    return [r[0] for r in rows]


# -- Procrastinate's jobs and workers ---------------------------------------------------


@dataclass(frozen=True)
class QueueJob:
    id: int
    status: str
    task: str
    queue: str
    args: dict[str, Any]


def run_jobs(conn: psycopg.Connection[Any], run_id: str) -> list[QueueJob]:
    """The run's Procrastinate jobs still to do or being done."""
    rows = conn.execute(
        f"SELECT id, status::text, task_name, queue_name, args FROM {SCHEMA}.procrastinate_jobs"
        " WHERE args->>'run_id' = %s AND status IN ('todo', 'doing') ORDER BY id",
        (run_id,),
    ).fetchall()
    return [QueueJob(*r) for r in rows]


def worker_started(
    conn: psycopg.Connection[Any], worker_id: int, *, name: str, host: str, pid: int, queues: str
) -> None:
    with conn.transaction():
        conn.execute(
            "INSERT INTO csvpg.workers (worker_id, name, host, pid, queues)"
            " VALUES (%s, %s, %s, %s, %s) ON CONFLICT (worker_id) DO NOTHING",
            (worker_id, name, host, pid, queues),
        )


@dataclass(frozen=True)
class WorkerRow:
    worker_id: int
    name: str
    host: str
    pid: int
    queues: str
    started_at: datetime
    last_heartbeat: datetime
    jobs: int
    #: What it is doing: each task in flight as ``task run=… file=…``.
    tasks: tuple[str, ...] = ()

    def state(self, now: datetime, stalled_after: float) -> str:
        """``alive``, or ``stalled`` once its heartbeat is ``stalled_after`` s old (its
        tasks then go back to the queue)."""
        return "stalled" if (now - self.last_heartbeat).total_seconds() > stalled_after else "alive"


def workers(conn: psycopg.Connection[Any]) -> list[WorkerRow]:
    """The workers Procrastinate has (their heartbeats), with what csvpg knows of them;
    csvpg's rows of workers Procrastinate has forgotten are dropped."""
    with conn.transaction():
        conn.execute(
            "DELETE FROM csvpg.workers w WHERE NOT EXISTS (SELECT 1 FROM"
            f" {SCHEMA}.procrastinate_workers p WHERE p.id = w.worker_id)"
        )
        rows = conn.execute(
            "SELECT p.id, coalesce(w.name, ''), coalesce(w.host, ''), coalesce(w.pid, 0),"
            " coalesce(w.queues, ''), coalesce(w.started_at, p.last_heartbeat),"
            " p.last_heartbeat, (SELECT count(*) FROM"
            f" {SCHEMA}.procrastinate_jobs j WHERE j.worker_id = p.id AND j.status = 'doing')"
            f" FROM {SCHEMA}.procrastinate_workers p"
            " LEFT JOIN csvpg.workers w ON w.worker_id = p.id ORDER BY p.id"
        ).fetchall()
        doing = conn.execute(
            "SELECT worker_id, task_name, args->>'run_id', args->>'url'"
            f" FROM {SCHEMA}.procrastinate_jobs WHERE status = 'doing' ORDER BY id"
        ).fetchall()
    tasks: dict[int, list[str]] = {}
    for worker_id, task, run_id, url in doing:
        what = " ".join([task, *(f"{k}={v}" for k, v in (("run", run_id), ("file", url)) if v)])
        tasks.setdefault(worker_id, []).append(what)
    found = [WorkerRow(*r) for r in rows]
    return [replace(w, tasks=tuple(tasks.get(w.worker_id, ()))) for w in found]


def files_in_flight(conn: psycopg.Connection[Any], run_id: str, task: str) -> list[str]:
    """The files of the run a worker is loading now (their tasks are 'doing')."""
    rows = conn.execute(
        f"SELECT args->>'url' FROM {SCHEMA}.procrastinate_jobs WHERE args->>'run_id' = %s"
        " AND task_name = %s AND status = 'doing' ORDER BY id",
        (run_id, task),
    ).fetchall()
    return [r[0] for r in rows]


def waiting_run(conn: psycopg.Connection[Any], queueing_lock: str) -> str | None:
    """The run whose task waits under ``queueing_lock`` (a file another run queued)."""
    row = conn.execute(
        f"SELECT args->>'run_id' FROM {SCHEMA}.procrastinate_jobs"
        " WHERE queueing_lock = %s AND status = 'todo'",
        (queueing_lock,),
    ).fetchone()
    return str(row[0]) if row and row[0] else None


def after_load_due(conn: psycopg.Connection[Any], run_id: str, url: str) -> bool:
    """The run's file is loaded and its ``after_load`` not recorded (not done yet)."""
    row = conn.execute(
        "SELECT 1 FROM csvpg.run_files WHERE run_id = %s AND file = %s AND status = 'loaded'"
        " AND (details IS NULL OR NOT details ? 'after_load')",
        (run_id, url),
    ).fetchone()
    return row is not None


def application_of(task_id: int) -> str:
    """The ``application_name`` of the sessions of a queued file's task."""
    return f"csvpg task {task_id}"


def end_sessions(conn: psycopg.Connection[Any], task_id: int) -> int:
    """End the sessions of a stalled worker's task on this server (a machine cut off
    leaves its transaction open until TCP gives up, holding its file): they roll back
    now. How many were ended; 0 when this role may not end them (the retried task then
    waits for them)."""
    try:
        rows = conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE application_name = %s AND pid <> pg_backend_pid()",
            (application_of(task_id),),
        ).fetchall()
    except psycopg.errors.InsufficientPrivilege:
        return 0
    return sum(1 for (ended,) in rows if ended)


class StalledCheck:
    """The right to look for stalled jobs now: a session-level advisory lock held on a
    connection of its own, one worker at a time (:func:`take`; ``close`` gives it up)."""

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self.conn = conn

    @classmethod
    def take(cls, dsn: str, queue_name: str) -> StalledCheck | None:
        """The lock, or None while another worker holds it."""
        conn = connect(dsn, autocommit=True, connect_timeout=10)
        row = conn.execute(
            "SELECT pg_try_advisory_lock(hashtext('csvpg.stalled'), hashtext(%s))",
            (queue_name,),
        ).fetchone()
        if row is not None and row[0]:
            return cls(conn)
        conn.close()
        return None

    def close(self) -> None:
        self.conn.close()  # the lock goes with the session
