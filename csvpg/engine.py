"""Runs a plan: several files at once, each on its own connection and in one
transaction, with every step reported as an event. The engine never prints."""

from __future__ import annotations

import io
import logging
import os
import threading
import time
import uuid
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, BinaryIO

import pluggy
import psycopg
from psycopg import sql

from csvpg import events as ev
from csvpg.errors import CsvpgError, FormatError, SinkError, SpecError
from csvpg.interfaces import ColumnType, LoadInput, LoadResult, Staged
from csvpg.pg import history
from csvpg.pg.careful import Prober, TooManyRejects, careful_stage, is_row_error, too_many
from csvpg.pg.connect import connect, mask_dsn, sink_error
from csvpg.pg.load import STAGING_ROW, checked_type, table_columns
from csvpg.pg.rejects import Reject, over_limit, reject_limit, write_rejects
from csvpg.pg.schema import ensure_schema
from csvpg.plan import FilePlan, OpenedFile, Plan, make_plan, open_file
from csvpg.plugins import Registry, get_plugin_manager
from csvpg.spec import Job, load_job

log = logging.getLogger(__name__)

PROGRESS_STEP = 1 << 20  # BytesRead fires at most once per MiB


@dataclass
class FileSummary:
    file: str
    table: str | None
    status: str  # loaded | failed | skipped
    rows_read: int = 0
    inserted: int = 0
    updated: int = 0
    collapsed: int = 0
    rejected: int = 0
    seconds: float = 0.0
    error: str | None = None
    hint: str | None = None
    details: dict[str, Any] = field(default_factory=dict)


@dataclass
class RunSummary:
    run_id: str
    job: str
    database: str
    status: str
    files: list[FileSummary]
    seconds: float
    dry_run: bool = False

    def total(self, name: str) -> int:
        return sum(getattr(f, name) for f in self.files)

    @property
    def exit_code(self) -> int:
        return 1 if any(f.status == "failed" for f in self.files) else 0

    def to_dict(self) -> dict[str, Any]:
        counts = ("rows_read", "inserted", "updated", "collapsed", "rejected")
        return {
            "run_id": self.run_id,
            "job": self.job,
            "database": self.database,
            "status": self.status,
            "dry_run": self.dry_run,
            "seconds": round(self.seconds, 3),
            "totals": {
                "files": len(self.files),
                "files_loaded": sum(f.status == "loaded" for f in self.files),
                "files_failed": sum(f.status == "failed" for f in self.files),
                "files_skipped": sum(f.status == "skipped" for f in self.files),
                **{c: self.total(c) for c in counts},
            },
            "files": [{**asdict(f), "seconds": round(f.seconds, 3)} for f in self.files],
        }


class CountingStream(io.RawIOBase):
    """Wraps a source stream: counts bytes as they are read, so progress is pushed
    from the one read that happens anyway and nothing polls."""

    def __init__(self, inner: BinaryIO, on_progress: Any) -> None:
        self.inner = inner
        self.count = 0
        self._reported = 0
        self._on_progress = on_progress

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return bool(getattr(self.inner, "seekable", lambda: False)())

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        return self.inner.seek(offset, whence)

    def tell(self) -> int:
        return self.inner.tell()

    def readinto(self, buffer: Any) -> int:
        data = self.inner.read(len(buffer))
        n = len(data)
        buffer[:n] = data
        self._counted(n)
        return n

    def read(self, size: int = -1) -> bytes:
        data = self.inner.read(size)
        self._counted(len(data))
        return data

    def _counted(self, n: int) -> None:
        self.count += n
        due = n == 0 or self.count - self._reported >= PROGRESS_STEP
        if due and self.count != self._reported:
            self._reported = self.count
            self._on_progress(self.count)

    def close(self) -> None:
        try:
            self.inner.close()
        finally:
            super().close()


def resolve_dsn(job: Job, dsn: str | None) -> str:
    """``--dsn`` beats ``[database] dsn``; neither means the embedded server."""
    if dsn:
        return dsn
    if job.database.get("dsn"):
        return str(job.database["dsn"])
    from csvpg import embedded

    return embedded.start()


class Engine:
    def __init__(
        self, job: Job, pm: pluggy.PluginManager, dsn: str | None = None, *, dry_run: bool = False
    ) -> None:
        self.job = job
        self.pm = pm
        self.registry = Registry(pm)
        self._dsn = dsn
        self.dry_run = dry_run
        self.run_id = uuid.uuid4().hex
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._limit = reject_limit(job.sink["max_rejects"])

    def emit(self, event: ev.Event) -> None:
        # One event at a time: reporters need not be thread-safe.
        with self._lock:
            self.pm.hook.track_event(event=event)

    @property
    def dsn(self) -> str:
        """Resolved on first use, after the plan is made: a broken job starts no server."""
        if self._dsn is None or self._dsn == "":
            self._dsn = resolve_dsn(self.job, self._dsn)
        return self._dsn

    def plan(self) -> Plan:
        return make_plan(self.job, self.registry)

    def run(self) -> RunSummary:
        started = time.perf_counter()
        plan = self.plan()
        # One clear error for an unreachable server, rather than one per file.
        with connect(self.dsn, connect_timeout=10) as conn:
            if not self.dry_run:
                ensure_schema(conn)
                history.run_started(
                    conn, self.run_id, self.job.name, self.job.digest, mask_dsn(self.dsn)
                )
        self.emit(ev.JobStarted(self.run_id, self.job.name, len(plan.files), mask_dsn(self.dsn)))
        results: list[FileSummary] = []
        for ref, reason in plan.skipped:
            self.emit(ev.FileSkipped(self.run_id, ref.url, reason))
            results.append(self._record(FileSummary(ref.url, None, "skipped", error=reason)))
        workers = self.job.run["workers"] or min(os.cpu_count() or 1, 4)
        workers = max(1, min(workers, len(plan.files) or 1))
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="csvpg-load") as pool:
            results += list(pool.map(lambda fp: self.load_file(plan, fp), plan.files))
        loaded = sum(r.status == "loaded" for r in results)
        failed = sum(r.status == "failed" for r in results)
        status = "failed" if failed and not loaded else "partial" if failed else "succeeded"
        summary = RunSummary(
            run_id=self.run_id,
            job=self.job.name,
            database=mask_dsn(self.dsn),
            status=status,
            files=results,
            seconds=time.perf_counter() - started,
            dry_run=self.dry_run,
        )
        if not self.dry_run:
            with connect(self.dsn) as conn:
                history.run_finished(conn, summary)
        self.emit(
            ev.JobFinished(
                run_id=self.run_id,
                job=self.job.name,
                status=status,
                files_loaded=loaded,
                files_failed=failed,
                rows_read=summary.total("rows_read"),
                inserted=summary.total("inserted"),
                updated=summary.total("updated"),
                collapsed=summary.total("collapsed"),
                rejected=summary.total("rejected"),
                seconds=summary.seconds,
            )
        )
        return summary

    def load_file(self, plan: Plan, fp: FilePlan) -> FileSummary:
        table = f"{fp.schema}.{fp.table}"
        url = fp.ref.url
        if self._stop.is_set():
            self.emit(
                ev.FileSkipped(self.run_id, url, "an earlier file failed and fail_fast is on")
            )
            return self._record(FileSummary(url, table, "skipped", error="not started: fail_fast"))
        started = time.perf_counter()
        self.emit(ev.FileStarted(self.run_id, url, table, fp.ref.size))

        def progress(n: int) -> None:
            self.emit(ev.BytesRead(self.run_id, url, n, fp.ref.size))

        try:
            with connect(self.dsn) as conn:
                stream = CountingStream(plan.source.open(fp.ref), progress)
                opened = open_file(plan, fp, stream)  # type: ignore[arg-type]
                try:
                    with conn.transaction(force_rollback=self.dry_run):
                        result, rejects, read, careful = self._load(conn, plan, fp, opened)
                        details = {
                            **opened.reader.details,
                            "mode": fp.mode,
                            "path": "rows" if opened.row_path else "bytes",
                            "careful": careful,
                        }
                        counts = (read, result.inserted, result.updated, result.collapsed)
                        seconds = time.perf_counter() - started
                        summary = FileSummary(
                            url, table, "loaded", *counts, len(rejects), seconds, details=details
                        )
                        if not self.dry_run:
                            if rejects:
                                write_rejects(conn, self.run_id, url, rejects)
                            # In the file's own transaction: history never disagrees with data.
                            history.file_done(conn, self.run_id, summary)
                except TooManyRejects as exc:
                    # The file's rows are rolled back; its rejects are kept to say why.
                    if not self.dry_run:
                        with conn.transaction():
                            write_rejects(conn, self.run_id, url, exc.rejects)
                    self._rejected(fp, exc.rejects)
                    raise too_many(
                        url, exc.rejects, exc.read, self.job.sink["max_rejects"]
                    ) from None
                finally:
                    opened.close()
        except psycopg.Error as exc:
            return self._failed(fp, sink_error(exc, file=url, table=table), started)
        except CsvpgError as exc:
            return self._failed(fp, exc, started)
        if rejects:
            self._rejected(fp, rejects)
        self.emit(ev.FileLoaded(self.run_id, url, table, *counts, len(rejects), seconds, details))
        return summary

    def _rejected(self, fp: FilePlan, rejects: list[Reject]) -> None:
        self.emit(
            ev.RowsRejected(
                self.run_id, fp.ref.url, len(rejects), [r.to_dict() for r in rejects[:20]]
            )
        )
        if self.job.sink["rejects_csv"] and not self.dry_run:
            write_rejects_csv(self.job, self.run_id, fp, rejects)

    def _failed(self, fp: FilePlan, exc: CsvpgError, started: float) -> FileSummary:
        seconds = time.perf_counter() - started
        table = f"{fp.schema}.{fp.table}"
        message = exc.message if fp.ref.url in exc.message else f"{fp.ref.url}: {exc.message}"
        self.emit(ev.FileFailed(self.run_id, fp.ref.url, table, message, exc.hint, seconds))
        if self.job.run["fail_fast"]:
            self._stop.set()
        return self._record(
            FileSummary(fp.ref.url, table, "failed", seconds=seconds, error=message, hint=exc.hint)
        )

    def _record(self, summary: FileSummary) -> FileSummary:
        """History for a file that did not load (its own transaction rolled back)."""
        if not self.dry_run:
            try:
                with connect(self.dsn) as conn, conn.transaction():
                    history.file_done(conn, self.run_id, summary)
            except (psycopg.Error, CsvpgError) as exc:
                log.warning("cannot record %s in the run history: %s", summary.file, exc)
        return summary

    def _load(
        self, conn: psycopg.Connection[Any], plan: Plan, fp: FilePlan, opened: OpenedFile
    ) -> tuple[LoadResult, list[Reject], int, bool]:
        """The fast path first; the careful path only when it failed on bad rows.
        Returns the counts, the rejects, the records read, and whether it was careful."""
        load = self.load_input(conn, fp, opened)
        if not load.relation.columns:
            self.emit(ev.Warned(self.run_id, f"{fp.ref.url} is empty: nothing to load", fp.ref.url))
            return LoadResult(rows=0, inserted=0), [], 0, False
        exists = table_columns(conn, fp.schema, fp.table) is not None
        for statement in fp.sink.ddl(load, exists):
            conn.execute(statement)
        try:
            with conn.transaction():
                result = fp.sink.load(conn, load)
            return result, [], result.rows, False
        except psycopg.Error as exc:
            if not (is_row_error(exc) and self._careful_possible(fp, opened)):
                raise
            why = sink_error(exc, file=fp.ref.url, table=fp.table).message
        except FormatError as exc:
            if not self._careful_possible(fp, opened):
                raise
            why = exc.message
        self.emit(
            ev.Warned(self.run_id, f"{why.split(' — ')[0]}; setting bad rows aside", fp.ref.url)
        )
        return (*self._careful(conn, plan, fp, load), True)

    def _careful_possible(self, fp: FilePlan, opened: OpenedFile) -> bool:
        return fp.sink.takes_staged and not opened.row_path and self._limit != (0, None)

    def _careful(
        self, conn: psycopg.Connection[Any], plan: Plan, fp: FilePlan, load: LoadInput
    ) -> tuple[LoadResult, list[Reject], int]:
        count = self._limit[0]
        stream = plan.source.open(fp.ref)
        try:
            records = fp.format.open(stream, fp.ref).iter_records()
            staged, rejects, read = careful_stage(
                conn, load, records, lambda n, _read: count is not None and n > count
            )
        finally:
            stream.close()
        bad = Prober(conn, load, staged).bad_rows(
            lambda n: count is not None and len(rejects) + n > count
        )
        rejects = sorted(rejects + bad, key=lambda r: r.line or 0)
        if over_limit(len(rejects), read, self._limit):
            raise TooManyRejects(rejects, read)
        if bad:
            conn.execute(
                sql.SQL("DELETE FROM {} WHERE {} = ANY(%s)").format(
                    staged.table, sql.Identifier(STAGING_ROW)
                ),
                ([r.line for r in bad],),
            )
            staged = Staged(staged.table, staged.names, staged.rows - len(bad))
        with conn.transaction():
            result = fp.sink.load_staged(conn, load, staged)
        return result, rejects, read

    def load_input(
        self, conn: psycopg.Connection[Any], fp: FilePlan, opened: OpenedFile
    ) -> LoadInput:
        """Check the file's columns against the table (or the types to create it with)."""
        relation = opened.relation
        names = [c.name for c in relation.columns]
        for key in fp.primary_key:
            if key not in names:
                raise SpecError(
                    f"primary key column {key!r} is not among {fp.ref.name}'s columns",
                    key="sink.primary_key",
                    file=fp.ref.url,
                    hint="columns: " + ", ".join(names),
                )
        existing = table_columns(conn, fp.schema, fp.table)
        if existing is None:
            if not fp.create and names:
                raise SinkError(
                    f"table {fp.schema}.{fp.table} does not exist",
                    file=fp.ref.url,
                    hint="create it, or set create = true in [sink]",
                )
            types = {}
            for n in names:
                given = fp.column_types.get(n, ColumnType())
                checked = checked_type(conn, given.type, f"columns.{n}")
                types[n] = replace(given, type=checked)
        else:
            missing = [n for n in names if n not in existing]
            if missing:
                raise SinkError(
                    f"table {fp.schema}.{fp.table} has no column {', '.join(map(repr, missing))} "
                    f"for {fp.ref.name}",
                    file=fp.ref.url,
                    hint="its columns are: "
                    + ", ".join(existing)
                    + "; rename or select columns with [[transform]], or alter the table",
                )
            # The table's own types; conversions ([columns] decimal, format …) still apply.
            types = {
                n: replace(fp.column_types.get(n, ColumnType()), type=existing[n]) for n in names
            }
        for name in sorted(fp.own_columns):
            if name not in names:
                self.emit(
                    ev.Warned(
                        self.run_id,
                        f"[columns] {name!r} is not a column of {fp.ref.name}",
                        fp.ref.url,
                    )
                )
        return LoadInput(
            ref=fp.ref,
            schema=fp.schema,
            table=fp.table,
            relation=relation,
            types=types,
            primary_key=fp.primary_key,
            create=fp.create,
            dialect=None if opened.row_path else opened.reader.dialect,
            chunks=opened.chunks(),
            batches=opened.batches(fp.transforms),
        )


def run(
    job: Job | str | Path,
    *,
    dsn: str | None = None,
    plugins: Iterable[object] = (),
    pm: pluggy.PluginManager | None = None,
    dry_run: bool = False,
) -> RunSummary:
    """Run a job in-process and return its summary. ``plugins`` are registered for this
    run only (a test's recorder, the CLI's reporters)."""
    if not isinstance(job, Job):
        job = load_job(job)
    if pm is None:
        pm = get_plugin_manager(plugins)
    else:
        for plugin in plugins:
            pm.register(plugin)
    return Engine(job, pm, dsn, dry_run=dry_run).run()


def write_rejects_csv(job: Job, run_id: str, fp: FilePlan, rejects: list[Reject]) -> Path:
    """``rejects/<job>-<run>-<file>.csv`` beside the job: the rejects of one file."""
    import csv

    from csvpg.naming import safe_identifier

    folder = job.base_dir / "rejects"
    folder.mkdir(exist_ok=True)
    # The remote name never becomes a path as it is.
    path = (
        folder
        / f"{safe_identifier(job.name, 1)}-{run_id[:8]}-{safe_identifier(fp.ref.name, 1)}.csv"
    )
    with path.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(["line", "column", "value", "reason", "raw"])
        for r in rejects:
            writer.writerow([r.line, r.column or "", r.value or "", r.reason, r.raw or ""])
    return path
