"""``csvpg runs``: the run history in PostgreSQL, as text a person reads."""

from __future__ import annotations

from typing import Any, TextIO

from psycopg.rows import dict_row

from csvpg import pending
from csvpg.errors import CsvpgError
from csvpg.notify import masked
from csvpg.pg.connect import connect
from csvpg.pg.history import reap
from csvpg.pg.rejects import place
from csvpg.pg.schema import ensure_schema


def _table_lines(rows: list[list[str]]) -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return [
        "  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip() for row in rows
    ]


def list_runs(dsn: str, out: TextIO, *, job: str | None = None, limit: int = 20) -> int:
    with connect(dsn) as conn, conn.cursor(row_factory=dict_row) as cur:
        ensure_schema(conn)
        pending.replay(conn)
        reap(conn)
        runs = cur.execute(
            "SELECT id, job, status, started_at, seconds, files, files_failed, rows_read,"
            " inserted, updated, unchanged, rejected, error, hint FROM csvpg.runs"
            " WHERE %(job)s::text IS NULL OR job = %(job)s"
            " ORDER BY started_at DESC LIMIT %(limit)s",
            {"job": job, "limit": limit},
        ).fetchall()
    if not runs:
        print("no runs yet" + (f" of job {job!r}" if job else ""), file=out)
        return 0
    rows = [["RUN", "JOB", "STATUS", "STARTED", "SECONDS", "FILES", "ROWS", "REJECTED"]]
    for r in runs:
        files = f"{r['files']}" + (f" ({r['files_failed']} failed)" if r["files_failed"] else "")
        rows.append(
            [
                r["id"],
                r["job"],
                r["status"],
                r["started_at"].strftime("%Y-%m-%d %H:%M:%S"),
                f"{r['seconds']:.2f}" if r["seconds"] is not None else "",
                files,
                str(r["rows_read"]),
                str(r["rejected"]),
            ]
        )
    # A run's error (and hint) goes on lines of its own, under the run.
    lines = _table_lines(rows)
    print(lines[0], file=out)
    for line, r in zip(lines[1:], runs, strict=True):
        print(line, file=out)
        if r["error"]:
            print(f"  error: {r['error']}", file=out)
        if r["hint"]:
            print(f"  hint: {r['hint']}", file=out)
    return 0


def show_run(dsn: str, run_id: str, out: TextIO, *, rejects: bool = False) -> int:
    with connect(dsn) as conn, conn.cursor(row_factory=dict_row) as cur:
        ensure_schema(conn)
        run = cur.execute(
            "SELECT * FROM csvpg.runs WHERE id = %s OR id LIKE %s ORDER BY started_at DESC",
            (run_id, run_id.replace("%", "") + "%"),
        ).fetchall()
        if len(run) != 1:
            raise CsvpgError(
                f"no run {run_id!r}" if not run else f"{run_id!r} names {len(run)} runs",
                hint="csvpg runs lists the run ids; a unique prefix is enough",
            )
        r = run[0]
        files = cur.execute(
            "SELECT * FROM csvpg.run_files WHERE run_id = %s ORDER BY file", (r["id"],)
        ).fetchall()
        bad: list[dict[str, Any]] = []
        if rejects:
            bad = cur.execute(
                "SELECT file, line, column_name, value, reason FROM csvpg.rejects"
                " WHERE run_id = %s ORDER BY file, line",
                (r["id"],),
            ).fetchall()
    print(f"run {r['id']} of job {r['job']}: {r['status']}", file=out)
    if r.get("error"):
        print(f"  error: {r['error']}", file=out)
    if r.get("hint"):
        print(f"  hint: {r['hint']}", file=out)
    print(f"  started {r['started_at']:%Y-%m-%d %H:%M:%S %Z}, {r['seconds'] or 0:.2f} s", file=out)
    print(
        f"  {r['rows_read']} rows read: {r['inserted']} inserted, {r['updated']} updated, "
        f"{r['unchanged']} unchanged, {r['collapsed']} collapsed, {r['rejected']} rejected",
        file=out,
    )
    for n in masked(r.get("notifications")):
        print(f"  webhook {n['url']}: {n['status']} after {n['attempts']} tries", file=out)
    for f in files:
        counts = (
            f"{f['rows_read']} read, {f['inserted']} inserted, {f['updated']} updated, "
            f"{f['unchanged']} unchanged, {f['rejected']} rejected"
        )
        print(f"  {f['status']:8} {f['file']} → {f['table_name'] or '-'}: {counts}", file=out)
        if f["error"]:
            print(f"           {f['error']}", file=out)
    if rejects:
        plural = "" if len(bad) == 1 else "s"
        print(f"  {len(bad)} reject{plural}:" if bad else "  no rejects", file=out)
        for b in bad:
            where = place(b["line"], b["column_name"])
            value = f" ({b['value']!r})" if b["value"] is not None else ""
            print(f"    {b['file']}, {where}: {b['reason']}{value}", file=out)
    return 0
