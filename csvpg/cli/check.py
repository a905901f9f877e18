"""``csvpg check``: validate a job and show what a run would do, writing nothing."""

from __future__ import annotations

from typing import Any, TextIO

from csvpg.api import RunHandle, prepare
from csvpg.engine.fileload import FileLoad
from csvpg.engine.plan import Plan, open_file
from csvpg.errors import CsvpgError, DatabaseError
from csvpg.pg import split
from csvpg.pg.connect import connect, mask_dsn
from csvpg.spec import load_job


def check(job_path: str, *, dsn: str | None, out: TextIO, offline: bool = False) -> int:
    """A pre-flight: the spec, the files, and (unless ``offline``) the database. An
    unreachable database is a failure, as it would be for the run."""
    job = load_job(job_path)
    run = prepare(job, dsn=dsn)
    plan = run.plan()
    try:
        if offline:
            # Not run.dsn: that would start the embedded server.
            given = dsn or job.database.dsn or "the embedded PostgreSQL"
            return _check(run, plan, out, offline=mask_dsn(given))
        return _check(run, plan, out)
    finally:
        plan.source.close()


def _check(run: RunHandle, plan: Plan, out: TextIO, offline: str | None = None) -> int:
    """``offline``: the target, as said; the database is not opened."""
    job = run.job

    def say(text: str = "") -> None:
        print(text, file=out)

    conn: Any = None
    if offline:
        say(
            f"job {job.name}: valid; {len(plan.files)} file(s) → {offline} "
            "(offline: the database is not checked)"
        )
    else:
        target = run.dsn
        say(f"job {job.name}: valid; {len(plan.files)} file(s) → {mask_dsn(target)}")
        try:
            conn = connect(target, connect_timeout=10)
        except DatabaseError as exc:
            raise DatabaseError(
                exc.message,
                hint="csvpg check is a pre-flight and needs the database the run would "
                "use; --offline checks the spec and the files alone",
            ) from exc
    for ref, reason in plan.skipped:
        say(f"  skip {ref.url}: {reason}")
    ctx = run.context() if conn is not None else None
    problems = 0
    try:
        for fp in plan.files:
            say()
            say(f"{fp.ref.url} → {fp.schema}.{fp.table} ({fp.mode})")
            try:
                opened = open_file(plan, fp)
                try:
                    details = opened.reader.details
                    say("  format: " + ", ".join(f"{k}={v!r}" for k, v in details.items()))
                    path = "rows (a transform needs values)" if opened.row_path else "bytes (COPY)"
                    say(f"  path: {path}")
                    renamed = {c.index: c.name for c in opened.relation.columns}
                    for col in opened.relation.file_columns:
                        target_name = renamed.get(col.index)
                        arrow = f"→ {target_name}" if target_name else "(not loaded)"
                        say(f"  column {col.index + 1}: {col.header!r} {arrow}")
                    if conn is not None and ctx is not None:
                        with conn.transaction(force_rollback=True):
                            load = FileLoad(ctx, plan, fp).load_input(conn, opened)
                            exists = bool(load.relation.columns) and _exists(conn, fp)
                            for stmt in fp.sink.ddl(load, exists):
                                say(f"  DDL: {stmt.as_string(conn)}")
                            if exists:
                                say("  table exists; no DDL")
                            if (why := _split(job.run.split_mb, fp, load, exists)) is not None:
                                say(f"  split: {why}")
                finally:
                    opened.close()
            except CsvpgError as exc:
                problems += 1
                say(f"  PROBLEM: {exc.message}")
                if exc.hint:
                    say(f"  hint: {exc.hint}")
    finally:
        if conn is not None:
            conn.close()
    say()
    if problems:
        say(f"{problems} problem(s) found")
    else:
        say("plan ok" + (" (offline: tables and DDL not checked)" if offline else ""))
    return 0 if not problems else 1


def _split(split_mb: int, fp: Any, load: Any, exists: bool) -> str | None:
    """For a file of at least ``split_mb``: whether (and how) it may split."""
    size = fp.ref.size
    if not split_mb or size is None or size < split_mb << 20 or not load.relation.columns:
        return None
    why = split.why_not(load, fp.sink, exists)
    if why is not None:
        return f"no: {why}"
    how = "staged" if split.stages(load, fp.sink) else "a new table, moved into place"
    return f"over the run's idle connections ({how})"


def _exists(conn: Any, fp: Any) -> bool:
    from csvpg.pg.load import table_columns

    return table_columns(conn, fp.schema, fp.table) is not None
