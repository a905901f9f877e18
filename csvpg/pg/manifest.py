"""``csvpg.manifest``: which file each job loaded, when, and with what content.

Its row for a file commits in the same transaction as the file's data, so a crash can
never record a load that did not happen, nor lose one that did. Workers that share a
job claim a file with a transaction-scoped advisory lock: a worker that dies releases
its claim as its transaction rolls back.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import psycopg

from csvpg.pg.load import TABLE_COLUMNS, columns_of

MIGRATION = """
CREATE TABLE csvpg.manifest (
    job         text NOT NULL,
    url         text NOT NULL,
    size        bigint,
    mtime       double precision,
    sha256      text,
    rows        bigint,
    status      text NOT NULL,
    run_id      text,
    table_name  text NOT NULL,
    seconds     double precision,
    loaded_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (job, url, table_name)
)
"""


def exists(conn: psycopg.Connection[Any]) -> bool:
    """``csvpg.manifest`` is there: files can be compared with their last load (a dry
    run creates no csvpg tables, so on a fresh database it finds none)."""
    row = conn.execute("SELECT to_regclass('csvpg.manifest') IS NOT NULL").fetchone()
    return bool(row and row[0])


@dataclass(frozen=True)
class Entry:
    size: int | None
    mtime: float | None
    sha256: str | None
    status: str
    run_id: str | None


def claim(conn: psycopg.Connection[Any], job: str, url: str, *, wait: bool = False) -> bool:
    """Take the file for this transaction; False when another worker holds it. ``wait``:
    until that worker's transaction ends (it committed the file, or rolled back)."""
    row = conn.execute(_WAIT if wait else _TRY, (job, url)).fetchone()
    return bool(row and row[0])


@dataclass(frozen=True)
class Claim:
    """What :func:`claim_file` found: whether the file is this transaction's, how it
    loaded before, and its target table's columns (None: no such table, or not asked)."""

    claimed: bool
    previous: Entry | None
    columns: dict[str, str] | None


def claim_file(
    conn: psycopg.Connection[Any],
    job: str,
    url: str,
    table: str,
    *,
    wait: bool = False,
    read_manifest: bool = True,
    target: tuple[str, str] | None = None,
) -> Claim:
    """:func:`claim`, :func:`previous` (``read_manifest``) and the columns of ``target``
    ((schema, table)) in one round trip: pipelined, the server still runs each after
    the one before, so the manifest is read once the claim is taken (a claim held by
    another worker: as it was before that worker ends)."""
    take = _WAIT if wait else _TRY
    with conn.pipeline():
        claimed = conn.execute(take, (job, url))
        before = conn.execute(_PREVIOUS, (job, url, table)) if read_manifest else None
        columns = conn.execute(TABLE_COLUMNS, target) if target else None
    row = claimed.fetchone()
    entry = before.fetchone() if before is not None else None
    return Claim(
        bool(row and row[0]),
        Entry(*entry) if entry else None,
        columns_of(columns.fetchall()) if columns is not None else None,
    )


_WAIT = "SELECT true FROM pg_advisory_xact_lock(hashtext(%s), hashtext(%s))"
_TRY = "SELECT pg_try_advisory_xact_lock(hashtext(%s), hashtext(%s))"
_PREVIOUS = (
    "SELECT size, mtime, sha256, status, run_id FROM csvpg.manifest"
    " WHERE job = %s AND url = %s AND table_name = %s"
)


def previous(conn: psycopg.Connection[Any], job: str, url: str, table: str) -> Entry | None:
    """How this job last loaded this file into this table (another table: a new load)."""
    row = conn.execute(_PREVIOUS, (job, url, table)).fetchone()
    return Entry(*row) if row else None


def loaded(
    conn: psycopg.Connection[Any], job: str, keys: list[tuple[str, str]]
) -> dict[tuple[str, str], Entry]:
    """The loaded rows of ``keys`` ((url, table) pairs of this job), in one query: a run
    of many files compares its whole listing at once (see :func:`previous` for one)."""
    if not keys:
        return {}
    rows = conn.execute(
        "SELECT m.url, m.table_name, m.size, m.mtime, m.sha256, m.status, m.run_id"
        " FROM csvpg.manifest m"
        " JOIN unnest(%s::text[], %s::text[]) AS k(url, table_name)"
        "   ON m.url = k.url AND m.table_name = k.table_name"
        " WHERE m.job = %s AND m.status = 'loaded'",
        ([url for url, _ in keys], [table for _, table in keys], job),
    ).fetchall()
    return {(url, table): Entry(*rest) for url, table, *rest in rows}


def record(
    conn: psycopg.Connection[Any],
    *,
    job: str,
    url: str,
    size: int | None,
    mtime: float | None,
    sha256: str | None,
    rows: int,
    status: str,
    run_id: str,
    table: str,
    seconds: float,
) -> None:
    conn.execute(
        """
        INSERT INTO csvpg.manifest AS m (job, url, size, mtime, sha256, rows, status, run_id,
            table_name, seconds)
        VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
        ON CONFLICT (job, url, table_name) DO UPDATE SET
            size = EXCLUDED.size, mtime = EXCLUDED.mtime,
            sha256 = coalesce(EXCLUDED.sha256, m.sha256), rows = EXCLUDED.rows,
            status = EXCLUDED.status, run_id = EXCLUDED.run_id,
            seconds = EXCLUDED.seconds, loaded_at = now()
        """,
        (job, url, size, mtime, sha256, rows, status, run_id, table, seconds),
    )


def refresh(
    conn: psycopg.Connection[Any],
    *,
    job: str,
    url: str,
    table: str,
    size: int | None,
    mtime: float | None,
) -> None:
    """A file read again and found with the same content (only touched, or copied over
    with the same bytes): its new size and mtime, so the next run skips it unread."""
    conn.execute(
        "UPDATE csvpg.manifest SET size = %s, mtime = %s"
        " WHERE job = %s AND url = %s AND table_name = %s AND status = 'loaded'",
        (size, mtime, job, url, table),
    )
