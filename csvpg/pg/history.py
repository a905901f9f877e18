"""Run history: ``csvpg.runs`` (one row a run) and ``csvpg.run_files`` (one a file).

A loaded file's row is written in the file's own transaction, so the history can never
claim a load that did not happen, nor miss one that did.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import psycopg
from psycopg.types.json import Jsonb

if TYPE_CHECKING:
    from csvpg.engine import FileSummary, RunSummary


def hold(conn: psycopg.Connection[Any], run_id: str) -> None:
    """Take the run's session lock on ``conn`` (kept open while the run lives)."""
    conn.execute("SELECT pg_advisory_lock(hashtext('csvpg.run'), hashtext(%s))", (run_id,))


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
            " VALUES (%s, %s, %s, 'running', %s)",
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


def run_finished(conn: psycopg.Connection[Any], summary: RunSummary) -> None:
    with conn.transaction():
        conn.execute(
            """
            UPDATE csvpg.runs SET status = %s, finished_at = now(), files = %s,
                files_failed = %s, rows_read = %s, inserted = %s, updated = %s,
                collapsed = %s, rejected = %s, seconds = %s, unchanged = %s
            WHERE id = %s
            """,
            (
                summary.status,
                len(summary.files),
                sum(f.status == "failed" for f in summary.files),
                summary.total("rows_read"),
                summary.total("inserted"),
                summary.total("updated"),
                summary.total("collapsed"),
                summary.total("rejected"),
                summary.seconds,
                summary.total("unchanged"),
                summary.run_id,
            ),
        )
