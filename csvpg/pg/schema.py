"""csvpg's own tables in the schema ``csvpg``, created and migrated automatically.

Each migration runs once, in order, recorded in ``csvpg.schema_version``; an advisory
lock keeps parallel runs (one machine or many) from racing each other.
"""

from __future__ import annotations

from typing import Any

import psycopg

from csvpg.pg.manifest import MIGRATION as MANIFEST
from csvpg.pg.queue import MIGRATION as QUEUE

MIGRATIONS: list[str] = [
    # 1: rejects and run history
    """
    CREATE TABLE csvpg.runs (
        id          text PRIMARY KEY,
        job         text NOT NULL,
        spec_hash   text NOT NULL,
        status      text NOT NULL,
        database    text NOT NULL,
        started_at  timestamptz NOT NULL DEFAULT now(),
        finished_at timestamptz,
        files       integer NOT NULL DEFAULT 0,
        files_failed integer NOT NULL DEFAULT 0,
        rows_read   bigint NOT NULL DEFAULT 0,
        inserted    bigint NOT NULL DEFAULT 0,
        updated     bigint NOT NULL DEFAULT 0,
        collapsed   bigint NOT NULL DEFAULT 0,
        rejected    bigint NOT NULL DEFAULT 0,
        seconds     double precision
    );
    CREATE INDEX runs_job_started ON csvpg.runs (job, started_at DESC);
    CREATE TABLE csvpg.rejects (
        id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        run_id      text NOT NULL REFERENCES csvpg.runs (id) ON DELETE CASCADE,
        file        text NOT NULL,
        line        bigint,
        column_name text,
        value       text,
        reason      text NOT NULL,
        sqlstate    text,
        raw         text,
        created_at  timestamptz NOT NULL DEFAULT now()
    );
    CREATE INDEX rejects_run_file ON csvpg.rejects (run_id, file);
    CREATE TABLE csvpg.run_files (
        run_id      text NOT NULL REFERENCES csvpg.runs (id) ON DELETE CASCADE,
        file        text NOT NULL,
        table_name  text,
        status      text NOT NULL,
        rows_read   bigint NOT NULL DEFAULT 0,
        inserted    bigint NOT NULL DEFAULT 0,
        updated     bigint NOT NULL DEFAULT 0,
        collapsed   bigint NOT NULL DEFAULT 0,
        rejected    bigint NOT NULL DEFAULT 0,
        seconds     double precision,
        error       text,
        hint        text,
        details     jsonb,
        PRIMARY KEY (run_id, file)
    )
    """,
    # 2: the manifest of loaded files
    MANIFEST,
    # 3: upserts count rows they found already as the file has them
    """
    ALTER TABLE csvpg.runs ADD COLUMN unchanged bigint NOT NULL DEFAULT 0;
    ALTER TABLE csvpg.run_files ADD COLUMN unchanged bigint NOT NULL DEFAULT 0
    """,
    # 4: webhook deliveries of each run
    """
    ALTER TABLE csvpg.runs ADD COLUMN notifications jsonb
    """,
    # 5: why a run failed, and what to do (a run that ended before its files too)
    """
    ALTER TABLE csvpg.runs ADD COLUMN error text;
    ALTER TABLE csvpg.runs ADD COLUMN hint text
    """,
    # 6: runs queued for workers (csvpg.pg.queue): how many files each expects, the
    # schedule tick it was made for, and the workers that take them
    QUEUE,
    # 7: rejects you can act on: where the record's bytes are in the file; the replay
    # run (csvpg rejects RUN --replay) that loaded it, and when; the last replay it
    # failed again in; and the run a replay run replays
    """
    ALTER TABLE csvpg.rejects ADD COLUMN byte_offset bigint;
    ALTER TABLE csvpg.rejects ADD COLUMN byte_length bigint;
    ALTER TABLE csvpg.rejects ADD COLUMN resolved_by text;
    ALTER TABLE csvpg.rejects ADD COLUMN resolved_at timestamptz;
    ALTER TABLE csvpg.rejects ADD COLUMN replayed_by text;
    ALTER TABLE csvpg.runs ADD COLUMN replay_of text
    """,
    # 8: what a file's load changed in its table or left out ([sink] schema): columns
    # added, types widened, columns discarded or missing
    """
    ALTER TABLE csvpg.run_files ADD COLUMN drift jsonb
    """,
]


def ensure_schema(conn: psycopg.Connection[Any]) -> int:
    """Bring ``csvpg.*`` up to date; returns the schema version."""
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(hashtext('csvpg.schema'))")
        # Asked only when missing: a user without CREATE on the database (or on a schema
        # csvpg an administrator made and migrated for it) is refused even "IF NOT EXISTS".
        made = conn.execute(
            "SELECT to_regnamespace('csvpg') IS NOT NULL,"
            " to_regclass('csvpg.schema_version') IS NOT NULL"
        ).fetchone()
        has_schema, has_versions = made if made else (False, False)
        if not has_schema:
            conn.execute("CREATE SCHEMA csvpg")
        if not has_versions:
            conn.execute("CREATE TABLE csvpg.schema_version (version integer NOT NULL)")
        row = conn.execute("SELECT max(version) FROM csvpg.schema_version").fetchone()
        version = (row[0] if row else None) or 0
        for number, migration in enumerate(MIGRATIONS, start=1):
            if number <= version:
                continue
            for statement in filter(str.strip, migration.split(";")):
                conn.execute(statement.encode())
            conn.execute("INSERT INTO csvpg.schema_version VALUES (%s)", (number,))
            version = number
    return version


def ensure_queue_schema(conn: psycopg.Connection[Any]) -> None:
    """Procrastinate's tables and functions in the schema ``csvpg_queue`` (see
    :mod:`csvpg.pg.queue`), installed once, after csvpg's own; a database holding them
    from an older Procrastinate is refused with what to do."""
    from procrastinate import __version__ as version
    from procrastinate.schema import SchemaManager

    from csvpg.pg import queue

    ensure_schema(conn)
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(hashtext('csvpg.schema'))")
        installed = queue.installed_version(conn)
        if installed is None:
            conn.execute(f"CREATE SCHEMA IF NOT EXISTS {queue.SCHEMA}")
            conn.execute(f"SET LOCAL search_path TO {queue.SCHEMA}")
            conn.execute(SchemaManager.get_schema().encode())
            queue.record_version(conn, version)
        elif installed != version:
            queue.refuse_version(installed, version)
