"""``csvpg runs``: the run history in PostgreSQL, as text a person reads."""

from __future__ import annotations

from typing import Any, TextIO

from csvpg.engine import pending
from csvpg.pg import history
from csvpg.pg.connect import connect
from csvpg.pg.rejects import place
from csvpg.pg.schema import ensure_schema


def _table_lines(rows: list[list[str]]) -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return [
        "  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip() for row in rows
    ]


def _why(run: history.RunRow, out: TextIO) -> None:
    """A run's error (and hint), on lines of their own under the run."""
    if run.error:
        print(f"  error: {run.error}", file=out)
    if run.hint:
        print(f"  hint: {run.hint}", file=out)


def list_runs(dsn: str, out: TextIO, *, job: str | None = None, limit: int = 20) -> int:
    with connect(dsn) as conn:
        ensure_schema(conn)
        pending.settle(conn)
        runs = history.runs(conn, job=job, limit=limit)
    if not runs:
        print("no runs yet" + (f" of job {job!r}" if job else ""), file=out)
        return 0
    rows = [["RUN", "JOB", "STATUS", "STARTED", "SECONDS", "FILES", "ROWS", "REJECTED"]]
    for r in runs:
        files = f"{r.files}" + (f" ({r.files_failed} failed)" if r.files_failed else "")
        rows.append(
            [
                r.id,
                r.job,
                r.status,
                r.started_at.strftime("%Y-%m-%d %H:%M:%S"),
                f"{r.seconds:.2f}" if r.seconds is not None else "",
                files,
                str(r.rows_read),
                str(r.rejected),
            ]
        )
    lines = _table_lines(rows)
    print(lines[0], file=out)
    for line, r in zip(lines[1:], runs, strict=True):
        print(line, file=out)
        _why(r, out)
    return 0


def show_run(dsn: str, run_id: str, out: TextIO, *, rejects: bool = False) -> int:
    with connect(dsn) as conn:
        ensure_schema(conn)
        pending.settle(conn)
        r = history.one_run(conn, run_id)
        files = history.files(conn, r.id)
        bad = history.rejects(conn, r.id) if rejects else []
    print(f"run {r.id} of job {r.job}: {r.status}", file=out)
    _why(r, out)
    if r.queued_files is not None and r.status in ("queued", "running", "cancelling"):
        then = " (cancelling)" if r.status == "cancelling" else f"; csvpg runs {r.id[:8]} --cancel"
        count = f"{len(files)} of {r.queued_files} files done"
        print(f"  queued for csvpg worker: {count}{then}", file=out)
    print(f"  started {r.started_at:%Y-%m-%d %H:%M:%S %Z}, {r.seconds or 0:.2f} s", file=out)
    print(
        f"  {r.rows_read} rows read: {r.inserted} inserted, {r.updated} updated, "
        f"{r.unchanged} unchanged, {r.collapsed} collapsed, {r.rejected} rejected",
        file=out,
    )
    for n in r.notifications:
        print(f"  webhook {n.url}: {n.status} after {n.attempts} tries", file=out)
    for f in files:
        counts = (
            f"{f.rows_read} read, {f.inserted} inserted, {f.updated} updated, "
            f"{f.unchanged} unchanged, {f.rejected} rejected"
        )
        print(f"  {f.status:8} {f.file} → {f.table or '-'}: {counts}", file=out)
        if f.error:
            print(f"           {f.error}", file=out)
        if (done := f.details.get("after_load")) and f.status == "loaded":
            print(f"           {_after_load(done)}", file=out)
    if rejects:
        plural = "" if len(bad) == 1 else "s"
        print(f"  {len(bad)} reject{plural}:" if bad else "  no rejects", file=out)
        for b in bad:
            where = place(b.line, b.column)
            value = f" ({b.value!r})" if b.value is not None else ""
            print(f"    {b.file}, {where}: {b.reason}{value}", file=out)
    return 0


def _after_load(done: dict[str, Any]) -> str:
    """What ``[source] after_load`` did with a loaded file."""
    if done.get("action") == "moved":
        return f"then moved to {done.get('to')}"
    if done.get("action") == "deleted":
        return "then deleted"
    return f"then kept: {done.get('error')}"
