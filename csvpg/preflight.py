"""The pre-flight of ``csvpg check`` and of the web app's "Check": validate a job and
show what a run would do (files, tables, columns, DDL), writing nothing."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TextIO

from csvpg.api import RunHandle, prepare
from csvpg.engine.context import RunContext
from csvpg.engine.fileload import FileLoad
from csvpg.engine.plan import FilePlan, OpenedFile, Plan, open_file
from csvpg.errors import CsvpgError, DatabaseError
from csvpg.pg import split
from csvpg.pg.connect import connect, mask_dsn
from csvpg.spec import load_job
from csvpg.summary import drift_lines


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


#: Prints one line of the report (an empty one without text).
Say = Callable[..., None]


def _check(run: RunHandle, plan: Plan, out: TextIO, offline: str | None = None) -> int:
    """``offline``: the target, as said; the database is not opened."""

    def say(text: str = "") -> None:
        print(text, file=out)

    conn = _open_target(run, plan, say, offline)
    for ref, reason in plan.skipped:
        say(f"  skip {ref.url}: {reason}")
    ctx = run.context() if conn is not None else None
    problems = 0
    try:
        for fp in plan.files:
            if not _check_file(plan, fp, conn, ctx, say, run.job.run.split_mb):
                problems += 1
    finally:
        if conn is not None:
            conn.close()
    say()
    if problems:
        say(f"{problems} problem(s) found")
    else:
        say("plan ok" + (" (offline: tables and DDL not checked)" if offline else ""))
    return 0 if not problems else 1


def _open_target(run: RunHandle, plan: Plan, say: Say, offline: str | None) -> Any:
    """The job's first line, and a connection to the target (None when ``offline``)."""
    job = run.job
    if offline:
        say(
            f"job {job.name}: valid; {len(plan.files)} file(s) → {offline} "
            "(offline: the database is not checked)"
        )
        return None
    target = run.dsn
    say(f"job {job.name}: valid; {len(plan.files)} file(s) → {mask_dsn(target)}")
    try:
        return connect(target, connect_timeout=10)
    except DatabaseError as exc:
        raise DatabaseError(
            exc.message,
            hint="csvpg check is a pre-flight and needs the database the run would "
            "use; --offline checks the spec and the files alone",
        ) from exc


def _check_file(
    plan: Plan, fp: FilePlan, conn: Any, ctx: RunContext | None, say: Say, split_mb: int
) -> bool:
    """One file's part of the report; False when it has a problem (said, with its hint)."""
    say()
    say(f"{fp.ref.url} → {fp.schema}.{fp.table} ({fp.mode})")
    try:
        opened = open_file(plan, fp)
        try:
            _show_reading(opened, say)
            if conn is not None and ctx is not None:
                _show_table(plan, fp, opened, conn, ctx, say, split_mb)
        finally:
            opened.close()
    except CsvpgError as exc:
        say(f"  PROBLEM: {exc.message}")
        if exc.hint:
            say(f"  hint: {exc.hint}")
        return False
    return True


def _show_reading(opened: OpenedFile, say: Say) -> None:
    """How the file reads: its format details, the path, and where each column goes."""
    details = opened.reader.details
    say("  format: " + ", ".join(f"{k}={v!r}" for k, v in details.items()))
    path = "rows (a transform needs values)" if opened.row_path else "bytes (COPY)"
    say(f"  path: {path}")
    renamed = {c.index: c.name for c in opened.relation.columns}
    for col in opened.relation.file_columns:
        target_name = renamed.get(col.index)
        arrow = f"→ {target_name}" if target_name else "(not loaded)"
        say(f"  column {col.index + 1}: {col.header!r} {arrow}")


def _show_table(
    plan: Plan,
    fp: FilePlan,
    opened: OpenedFile,
    conn: Any,
    ctx: RunContext,
    say: Say,
    split_mb: int,
) -> None:
    """What the load would do to the table (its DDL, in a transaction rolled back), and
    whether the file may split."""
    with conn.transaction(force_rollback=True):
        file_load = FileLoad(ctx.for_file(plan.source, fp))
        load = file_load.load_input(conn, opened)
        exists = bool(load.relation.columns) and _exists(conn, fp)
        for line in drift_lines(file_load.drift.to_dict()):
            say(f"  schema ({fp.drift}): {line}")
        ddl = [*file_load.drift_ddl, *fp.sink.ddl(load, exists)]
        for stmt in ddl:
            say(f"  DDL: {stmt.as_string(conn)}")
        if exists and not ddl:
            say("  table exists; no DDL")
        if (why := _split(split_mb, fp, load, exists)) is not None:
            say(f"  split: {why}")


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
