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
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import pluggy
import psycopg

from csvpg import events as ev
from csvpg.errors import CsvpgError, SinkError, SpecError
from csvpg.interfaces import LoadInput, LoadResult
from csvpg.pg.connect import connect, mask_dsn, sink_error
from csvpg.pg.load import checked_type, table_columns
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
        connect(self.dsn, connect_timeout=10).close()
        self.emit(ev.JobStarted(self.run_id, self.job.name, len(plan.files), mask_dsn(self.dsn)))
        results: list[FileSummary] = []
        for ref, reason in plan.skipped:
            self.emit(ev.FileSkipped(self.run_id, ref.url, reason))
            results.append(FileSummary(ref.url, None, "skipped", error=reason))
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
            return FileSummary(url, table, "skipped", error="not started: fail_fast")
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
                        result = self._load(conn, fp, opened)
                finally:
                    opened.close()
        except psycopg.Error as exc:
            return self._failed(fp, sink_error(exc, file=url, table=table), started)
        except CsvpgError as exc:
            return self._failed(fp, exc, started)
        seconds = time.perf_counter() - started
        details = {
            **opened.reader.details,
            "mode": fp.mode,
            "path": "rows" if opened.row_path else "bytes",
        }
        self.emit(
            ev.FileLoaded(
                self.run_id,
                url,
                table,
                result.rows,
                result.inserted,
                result.updated,
                result.collapsed,
                0,
                seconds,
                details,
            )
        )
        return FileSummary(
            url,
            table,
            "loaded",
            result.rows,
            result.inserted,
            result.updated,
            result.collapsed,
            0,
            seconds,
            details=details,
        )

    def _failed(self, fp: FilePlan, exc: CsvpgError, started: float) -> FileSummary:
        seconds = time.perf_counter() - started
        table = f"{fp.schema}.{fp.table}"
        message = exc.message if fp.ref.url in exc.message else f"{fp.ref.url}: {exc.message}"
        self.emit(ev.FileFailed(self.run_id, fp.ref.url, table, message, exc.hint, seconds))
        if self.job.run["fail_fast"]:
            self._stop.set()
        return FileSummary(
            fp.ref.url, table, "failed", seconds=seconds, error=message, hint=exc.hint
        )

    def _load(self, conn: psycopg.Connection[Any], fp: FilePlan, opened: OpenedFile) -> LoadResult:
        load = self.load_input(conn, fp, opened)
        if not load.relation.columns:
            self.emit(ev.Warned(self.run_id, f"{fp.ref.url} is empty: nothing to load", fp.ref.url))
            return LoadResult(rows=0, inserted=0)
        exists = table_columns(conn, fp.schema, fp.table) is not None
        for statement in fp.sink.ddl(load, exists):
            conn.execute(statement)
        return fp.sink.load(conn, load)

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
            types = {
                n: checked_type(conn, fp.column_types.get(n, "text"), f"columns.{n}") for n in names
            }
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
            types = {n: existing[n] for n in names}
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
