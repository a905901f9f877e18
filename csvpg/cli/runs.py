"""``csvpg runs``: the run history in PostgreSQL, as text a person reads."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, TextIO

from csvpg.engine import pending
from csvpg.errors import CsvpgError
from csvpg.pg import history
from csvpg.pg.connect import connect
from csvpg.pg.rejects import place
from csvpg.pg.schema import ensure_schema
from csvpg.replay import export, replay
from csvpg.spec import Job, load_job
from csvpg.summary import drift_lines


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
    rows[0] += ["OPEN", "RESOLVED"]  # of the rejects: replays resolve them
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
                str(r.rejects_open),
                str(r.rejects_resolved),
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
    replays = f" (a replay of run {r.replay_of})" if r.replay_of else ""
    print(f"run {r.id} of job {r.job}: {r.status}{replays}", file=out)
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
    if r.rejects_open or r.rejects_resolved:
        print(
            f"  rejects: {r.rejects_open} open, {r.rejects_resolved} resolved by a replay"
            + (f" (csvpg rejects {r.id[:8]} --export fix.csv)" if r.rejects_open else ""),
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
        for line in drift_lines(f.drift or {}):
            print(f"           schema: {line}", file=out)
        if (done := f.details.get("after_load")) and f.status == "loaded":
            print(f"           {_after_load(done)}", file=out)
    if rejects:
        plural = "" if len(bad) == 1 else "s"
        print(f"  {len(bad)} reject{plural}:" if bad else "  no rejects", file=out)
        for b in bad:
            where = place(b.line, b.column)
            value = f" ({b.value!r})" if b.value is not None else ""
            done = f" — resolved by replay {b.resolved_by[:8]}" if b.resolved_by else ""
            print(f"    {b.file}, {where}: {b.reason}{value}{done}", file=out)
    return 0


def _after_load(done: dict[str, Any]) -> str:
    """What ``[source] after_load`` did with a loaded file."""
    if done.get("action") == "moved":
        return f"then moved to {done.get('to')}"
    if done.get("action") == "deleted":
        return "then deleted"
    return f"then kept: {done.get('error')}"


def cmd_rejects(args: argparse.Namespace) -> int:
    """``csvpg rejects RUN``: its rejects listed, exported (``--export``) or replayed
    fixed (``--replay``)."""
    from csvpg.embedded import start

    job = _job_for(args) if args.replay or args.job else None
    if args.replay:
        assert job is not None
        return _replay(args, job, sys.stdout)
    dsn = args.dsn or (str(job.history.dsn or job.database.dsn or "") if job else "") or start()
    if args.export:
        out = Path(args.export)
        source = export(dsn, args.run_id, out, args.file)
        n = len(source.rejects)
        print(
            f"{n} open reject{'s' if n != 1 else ''} of {source.file.file} (run "
            f"{source.run.id[:8]}) written to {out}: fix them there, keep the first column, "
            f"then: csvpg rejects {source.run.id[:8]} --replay {out}",
        )
        return 0
    with connect(dsn) as conn:
        ensure_schema(conn)
        r = history.one_run(conn, args.run_id)
        rows = history.rejects(conn, r.replay_of or r.id)
    if args.file:
        rows = [b for b in rows if args.file in (b.file, b.file.rsplit("/", 1)[-1])]
    print(f"run {r.id}: {r.rejects_open} open, {r.rejects_resolved} resolved", file=sys.stdout)
    for b in rows:
        state = f"resolved by {b.resolved_by[:8]}" if b.resolved_by else "open"
        print(f"  R{b.id}  {state:20} {b.file}, {place(b.line, b.column)}: {b.reason}")
    return 0


def _job_for(args: argparse.Namespace) -> Job:
    """``--job``, else ``jobs/<the run's job>.toml`` (the run's job read from the
    history named by ``--dsn``, else the embedded server)."""
    if args.job:
        return load_job(args.job)
    from csvpg.embedded import start

    with connect(args.dsn or start()) as conn:
        ensure_schema(conn)
        name = history.one_run(conn, args.run_id).job
    path = Path("jobs") / f"{name}.toml"
    if not path.exists():
        raise CsvpgError(
            f"run {args.run_id} is of job {name!r}, and there is no {path}",
            hint="name the job file with --job",
        )
    return load_job(path)


def _replay(args: argparse.Namespace, job: Job, out: TextIO) -> int:
    done = replay(job, args.run_id, Path(args.replay), dsn=args.dsn, file=args.file)
    for note in done.notes:
        print(note, file=out)
    summary = done.summary
    if summary is not None:
        failed = [f for f in summary.files if f.status == "failed"]
        for f in failed:
            print(f"error: {f.error}", file=sys.stderr)
        print(
            f"replay run {summary.run_id} of run {done.of_run[:8]} ({done.file}): "
            f"{done.resolved} loaded and resolved, {done.again} rejected again, "
            f"{done.skipped} already resolved (not loaded again)",
            file=out,
        )
        if done.again:
            print(
                f"the rows rejected again have their new reason: csvpg rejects "
                f"{done.of_run[:8]}; fix them in a new export (--export) and replay that",
                file=out,
            )
        return summary.exit_code
    print(f"{done.skipped} rows skipped: already resolved", file=out)
    return 0
