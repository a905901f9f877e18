"""Rejects you can act on: a run's rejects exported in the source file's own dialect
(``csvpg rejects RUN --export``), and the fixed file replayed into the same table with
the same job settings (``--replay``), as a run of its own that resolves them.

A replay is one file's load, in one transaction, recorded as a run whose
``replay_of`` is the run replayed: the rejects whose fixed rows load are resolved
(``resolved_by``, ``resolved_at``), those that fail again stay open with the new
reason. A reject already resolved is not loaded again, so replaying the same file twice
loads each row once.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import psycopg

from csvpg import rejectfile
from csvpg.api import RunHandle
from csvpg.engine.context import Replay
from csvpg.engine.run import resolve_dsn
from csvpg.errors import CsvpgError
from csvpg.pg import history
from csvpg.pg.connect import connect
from csvpg.pg.rejects import reject_owners
from csvpg.pg.schema import ensure_schema
from csvpg.spec import Job
from csvpg.summary import RunSummary


@dataclass(frozen=True)
class Source:
    """The run and file whose rejects are exported or replayed, as the history has them."""

    run: history.RunRow
    file: history.FileRow
    rejects: list[history.RejectRow]
    dialect: rejectfile.FileDialect

    @property
    def headers(self) -> list[str]:
        named = self.file.details.get("headers")
        if named:
            return [str(h) for h in named]
        width = max((len(self.fields(r)) for r in self.rejects), default=0)
        return [f"column_{i}" for i in range(1, width + 1)]

    def fields(self, r: history.RejectRow) -> list[str]:
        """A reject's fields: its record (from the file, or as a replay fixed it) in
        the file's dialect; a row a transform made (no line), or one kept before csvpg
        kept records as the file had them, has its values joined by commas."""
        joined = r.line is None or (r.byte_offset is None and r.replayed_by is None)
        return rejectfile.fields_of(r.raw, self.dialect, joined=joined)


def rejects_of(
    conn: psycopg.Connection[Any], run_id: str, file: str | None = None, *, only_open: bool = True
) -> Source:
    """The rejects of one file of ``run_id`` (a replay run stands for the run it
    replays). ``file``: its URL or name, needed when several files have rejects."""
    run = history.one_run(conn, run_id)
    if run.replay_of:
        run = history.one_run(conn, run.replay_of)
    every = history.rejects(conn, run.id, only_open=only_open)
    names = sorted({r.file for r in every})
    if file is not None:
        names = [n for n in names if file in (n, n.rsplit("/", 1)[-1])]
    if len(names) > 1 and not only_open:  # the one file with rejects still open, if one
        names = sorted({r.file for r in every if r.file in names and not r.resolved_by}) or names
    if len(names) != 1:
        raise CsvpgError(
            f"run {run.id[:8]} has no {'open ' if only_open else ''}rejects"
            + (f" of {file}" if file else "")
            if not names
            else f"run {run.id[:8]} has rejects of {len(names)} files: " + ", ".join(names),
            hint="name one with --file (csvpg runs RUN --rejects lists them)",
        )
    files = {f.file: f for f in history.files(conn, run.id)}
    row = files.get(names[0]) or history.FileRow(names[0], None, "failed")
    rejects = [r for r in every if r.file == names[0]]
    dialect = rejectfile.FileDialect.of(row.details, (r.raw for r in rejects))
    return Source(run, row, rejects, dialect)


def export(dsn: str, run_id: str, out: Path, file: str | None = None) -> Source:
    """Write the open rejects of a run's file to ``out``; returns what was written."""
    with connect(dsn) as conn:
        ensure_schema(conn)
        source = rejects_of(conn, run_id, file)
    rows = [rejectfile.Exported(r.id or 0, source.fields(r)) for r in source.rejects]
    text = rejectfile.export_text(source.headers, rows, source.dialect)
    written = rejectfile.write_export(out, text, source.dialect)
    if written != source.dialect.encoding:
        return replace(source, dialect=replace(source.dialect, encoding=written))
    return source


@dataclass
class Replayed:
    """What a replay did."""

    of_run: str
    file: str
    summary: RunSummary | None
    resolved: int = 0
    #: Rows that failed again: still rejects, with the new reason.
    again: int = 0
    #: Rows of rejects a replay had resolved already: not loaded again.
    skipped: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def run_id(self) -> str | None:
        return self.summary.run_id if self.summary else None


def replay(
    job: Job,
    run_id: str,
    fixed: Path,
    *,
    dsn: str | None = None,
    file: str | None = None,
    plugins: Iterable[object] = (),
) -> Replayed:
    """Load the fixed export ``fixed`` of ``run_id``'s rejects with ``job``'s settings."""
    history_dsn = str(job.history.dsn or resolve_dsn(job, dsn))
    with connect(history_dsn) as conn:
        ensure_schema(conn)
        source = rejects_of(conn, run_id, file, only_open=False)
        headers, rows = rejectfile.read_fixed(fixed, source.dialect)
        owners = reject_owners(conn, [r.reject_id for r in rows])
    result = Replayed(source.run.id, source.file.file, None)
    _check(job, source, fixed, rows, owners, result)
    todo = [r for r in rows if owners[r.reject_id][2] is None]
    result.skipped = len(rows) - len(todo)
    if not todo:
        result.notes.append("nothing to load: every row's reject is resolved already")
        return result
    text, lines = rejectfile.replay_text(headers, todo)
    options = source.dialect.writer_options()
    texts = {r.reject_id: rejectfile.record_text(r.fields, options) for r in todo}
    with tempfile.TemporaryDirectory(prefix="csvpg-replay-") as folder:
        path = Path(folder) / "fixed.csv"
        path.write_text(text, encoding="utf-8", newline="")
        plan = Replay(source.run.id, source.file.file, lines, texts, path)
        result.summary = RunHandle(job, dsn=dsn, plugins=plugins, replay=plan).run()
    with connect(history_dsn) as conn:
        done = reject_owners(conn, [r.reject_id for r in todo])
    result.resolved = sum(1 for r in todo if done[r.reject_id][2] == result.run_id)
    result.again = len(todo) - result.resolved
    return result


def _check(
    job: Job,
    source: Source,
    fixed: Path,
    rows: list[rejectfile.Fixed],
    owners: dict[int, tuple[str, str, str | None]],
    result: Replayed,
) -> None:
    """A replay loads only rows of this run's file's rejects, with the job that ran it,
    into a file that loaded (the rest of it is in the table)."""
    run = source.run
    if run.job != job.name:
        raise CsvpgError(
            f"run {run.id[:8]} is a run of job {run.job!r}, not {job.name!r}",
            hint=f"replay it with the job file of {run.job!r} (--job)",
        )
    if source.file.status != "loaded":
        raise CsvpgError(
            f"{source.file.file} did not load in run {run.id[:8]} ({source.file.status}): "
            "none of its rows is in the table",
            hint="fix the file itself and load it again with csvpg run --force",
        )
    for row in rows:
        owner = owners.get(row.reject_id)
        if owner is None or owner[:2] != (run.id, source.file.file):
            raise CsvpgError(
                f"{fixed}, line {row.line}: {rejectfile.token(row.reject_id)} is no reject "
                f"of {source.file.file} in run {run.id[:8]}",
                hint="replay the file csvpg rejects RUN --export wrote for this run and file",
            )
    if run.spec_hash and run.spec_hash != job.digest:
        result.notes.append(f"the job has changed since run {run.id[:8]}: replayed as it is now")
