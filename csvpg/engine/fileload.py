"""One file's load: claim it, skip it when unchanged, load it in one transaction (the
fast path, then the careful one when rows are bad), record it, and retry what is
worth retrying. :class:`csvpg.engine.run.Engine` runs many of these at once."""

from __future__ import annotations

import contextlib
import copy
import csv
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from csvpg import events as ev
from csvpg.engine import clientconvert, drift
from csvpg.engine.context import CANCELLED, Cancelled, FileContext
from csvpg.engine.housekeeping import archived, record, tidy
from csvpg.engine.plan import FilePlan, OpenedFile, open_stream
from csvpg.engine.streams import CountingStream
from csvpg.errors import (
    CsvpgError,
    DatabaseError,
    FormatError,
    SinkError,
    SourceError,
)
from csvpg.interfaces import ColumnType, LoadInput, LoadResult, Relation, Staged
from csvpg.naming import safe_identifier
from csvpg.pg import history, manifest, split
from csvpg.pg.careful import (
    Prober,
    TooManyRejects,
    careful_stage,
    is_row_error,
    stage_rows,
    too_many,
)
from csvpg.pg.connect import connect, load_savepoint, sink_error
from csvpg.pg.drift import Drift, drop_staging, same_type
from csvpg.pg.drift import apply as apply_drift
from csvpg.pg.load import (
    STAGING_ROW,
    MayHoldRelativeDates,
    checked_type,
    guard_relative_dates,
    lowers_ascii,
    schema_exists,
    table_columns,
)
from csvpg.pg.rejects import Reject, over_limit, resolve_replayed, write_rejects
from csvpg.pg.resume import SKIPS_FROM, Declined, ResumedCopy, resumable
from csvpg.pg.split import SplitFailed, SplitLoad
from csvpg.rejectfile import spreadsheet_safe
from csvpg.retry import is_transient, pause
from csvpg.summary import FileSummary


class Held(Exception):
    """Another worker holds the file (see :meth:`FileLoad._claim`): it is tried again,
    waiting for that worker, once the run's other files are done."""


class Widened(Exception):
    """A load failed on a value the table now takes (a type widened): the file is read
    and loaded again, in the same transaction."""


class ConvertedFailed(Exception):
    """The client path's conversions could not promise the server's result, or COPY
    refused what they made: the file loads again with its conversions in SQL, which
    finds any bad rows and says where they are."""

    def __init__(self, why: str) -> None:
        super().__init__(why)
        self.why = why


class AlreadyLoaded(Exception):
    """This run loaded the file already: a queued file's task that ran again (its worker
    died after the commit) finds it in the manifest and loads nothing."""


class Skip(Exception):
    """The file is not loaded this time, for a reason worth saying."""

    def __init__(self, reason: str, *, same_content: bool = False, loaded: bool = False) -> None:
        super().__init__(reason)
        #: Read and found as loaded before: the manifest learns its new size and mtime.
        self.same_content = same_content
        #: The manifest says the file is in (unchanged): ``after_load`` may still be due.
        self.loaded = loaded or same_content


@dataclass
class Loaded:
    result: LoadResult
    rejects: list[Reject]
    read: int
    careful: bool
    sha256: str | None
    #: The target table was there before this load (else an unchanged file still loads).
    existed: bool = True


def as_error(exc: BaseException, url: str, table: str) -> CsvpgError | None:
    """A failure as a csvpg error naming the file; ``None`` for a bug (keep its traceback)."""
    if isinstance(exc, CsvpgError):
        return exc
    if isinstance(exc, psycopg.Error):
        return sink_error(exc, file=url, table=table)
    module = type(exc).__module__.split(".")[0]
    if isinstance(exc, OSError) or module in ("aiohttp", "asyncssh"):
        return SourceError(
            f"{url}: reading failed: {exc or type(exc).__name__}",
            file=url,
            hint="check that the source is reachable; csvpg retries dropped connections",
        )
    return None


def unchanged_since(before: manifest.Entry) -> str:
    """Why a file whose size and mtime are those it loaded with is skipped."""
    return f"unchanged since run {(before.run_id or '')[:8]}"


def _with_url(message: str, url: str) -> str:
    return message if url in message else f"{url}: {message}"


def _check_read_some(opened: OpenedFile, result: LoadResult, url: str) -> None:
    """0 rows read from bytes holding more than line ends is a misreading (a quote that
    ran away, say), never a success: the file is read again record by record."""
    if result.rows == 0 and getattr(opened.reader, "saw_data", False):
        raise FormatError(f"{url}: COPY read 0 rows from a file with data lines", file=url)


class FileLoad:
    """One file's load, given its :class:`~csvpg.engine.context.FileContext`."""

    def __init__(self, ctx: FileContext) -> None:
        self.ctx = ctx
        #: The file's route (``ctx.file``).
        self.fp = ctx.file
        self.url = ctx.file.ref.url
        self.table = ctx.file.target
        self.started = time.perf_counter()
        #: The bytes read and how long reading them took (see ``history.write_per_byte``).
        self.read: dict[str, float] = {}
        #: The file's manifest row: job, file and target table.
        self.key = {"job": ctx.job_name, "url": self.url, "table": self.table}
        #: Why a split load of this file failed: it loads again on one connection.
        self.split_failed: str | None = None
        #: Why the client path's conversions failed: the file loads with them in SQL.
        self.convert_failed: str | None = None
        #: Wait for another worker's claim on the file rather than step aside.
        self.wait = False
        #: The manifest's row when another worker held the file: a different one after
        #: the wait means that worker loaded it.
        self.held_over: manifest.Entry | None = None
        # Set anew by each attempt (_attempt, _load):
        #: What closes after the file's connection: a split's extra connections, scratch.
        self.after = contextlib.ExitStack()
        #: A split's extra connections.
        self.extra: list[psycopg.Connection[Any]] = []
        #: How a large file split, or why it did not (the file's ``details.split``).
        self.split_note: dict[str, Any] | None = None
        #: What the load changed in the table or left out (``[sink] schema``), over
        #: every pass of the attempt, and the DDL the current pass runs before COPY.
        self.drift = Drift()
        self.drift_ddl: list[sql.Composed] = []
        #: A type widened after a failed COPY: the passes after it load on one connection.
        self.widened = False
        #: This pass converts the file's values on the client (:mod:`.clientconvert`).
        self.converting = False
        #: The run's listing found the file unchanged but its table gone (dropped): it
        #: loads again, whatever the table is when its turn comes.
        self.table_gone = False
        #: The target's columns as :meth:`_columns` last found them (in a 1-tuple).
        self.columns: tuple[dict[str, str] | None] | None = None
        #: The "setting bad rows aside" warning was given (once per file).
        self.said_aside = False

    def __call__(self, *, wait: bool = False) -> FileSummary | None:
        """The file's outcome; None when another worker holds it: call again with
        ``wait=True`` once the run's other files are done."""
        held = False
        try:
            summary = self._load_file(waiting=wait)
            held = summary is None
            return summary
        finally:
            if not held:
                self.ctx.budget.file_finished()

    def _load_file(self, *, waiting: bool) -> FileSummary | None:
        ctx, url = self.ctx, self.url
        if ctx.cancel.cancelled.is_set():
            return self._skipped("not started: the run was cancelled")
        if ctx.cancel.stopping.is_set():
            return self._skipped("not started: an earlier file failed and fail_fast is on")
        if not waiting:
            ctx.emit(ev.FileStarted(ctx.run_id, url, self.table, self.fp.ref.size))
        self.wait = waiting
        retries, delay = ctx.settings.max_retries, ctx.settings.retry_delay
        attempt = 0
        while True:
            try:
                return self._tidied(self._attempt())
            except Held:
                return None
            except AlreadyLoaded:
                return FileSummary(url, self.table, "loaded", error="loaded already by this run")
            except Skip as skip:
                return self._skip(skip)
            except Cancelled:
                return self._cancelled()
            except (ConvertedFailed, SplitFailed) as exc:
                if isinstance(exc, ConvertedFailed) or self.converting:
                    # The client path's conversions failed (a split's chunk too): SQL's.
                    self.convert_failed = exc.why
                    ctx.log.debug("%s: converting it in SQL: %s", url, exc.why)
                    continue
                self.split_failed = exc.why
                ctx.emit(
                    ev.Warned(
                        ctx.run_id, f"{url}: {exc.why}; loading it again on one connection", url
                    )
                )
                continue
            except Exception as exc:
                if ctx.cancel.cancelled.is_set():  # a statement cancel() interrupted
                    return self._cancelled()
                error = as_error(exc, url, self.table)
                if error is None:
                    raise
                if attempt < retries and is_transient(exc):
                    wait, why = pause(exc, attempt, delay)
                    ctx.emit(
                        ev.Warned(
                            ctx.run_id,
                            f"{_with_url(error.message, url)}; retry {attempt + 1} of {retries} "
                            f"in {wait:.1f} s{why}",
                            url,
                        )
                    )
                    time.sleep(wait)
                    attempt += 1
                    continue
                return self._failed(error)

    def _skip(self, skip: Skip, *, write_history: bool = True) -> FileSummary:
        """A file not loaded this time; one loaded before is still tidied (after_load)."""
        if skip.same_content and not self.ctx.dry_run:
            self._refresh_manifest()
        done = tidy(self.ctx, self.fp.ref) if skip.loaded else None
        if done is not None and done["action"] != "kept":
            return self._skipped(archived(done), {"after_load": done}, write_history=write_history)
        return self._skipped(str(skip), write_history=write_history)

    def skip_unchanged(self, before: manifest.Entry) -> FileSummary:
        """The file as the run's listing found it: unchanged since ``before`` (the
        manifest, read once for every file of the run, and its table there). Skipped
        without a connection of its own: the caller writes the history rows of all
        such files at once."""
        return self._skip(Skip(unchanged_since(before), loaded=True), write_history=False)

    def _tidied(self, summary: FileSummary) -> FileSummary:
        """A loaded (committed) file deleted or moved as ``[source] after_load`` says,
        and that written to its history row."""
        done = tidy(self.ctx, self.fp.ref)
        if done is not None:
            summary.details["after_load"] = done
            record(self.ctx, self.url, done)
        return summary

    # -- one attempt ---------------------------------------------------------------

    def _attempt(self) -> FileSummary:
        ctx, url = self.ctx, self.url
        # Closed after the file's connection: a split file's extra connections and scratch.
        self.after = contextlib.ExitStack()
        self.drift, self.widened = Drift(), False
        with self.after, ctx.sessions.connection(ctx.dsn) as conn, ctx.cancel.in_flight(conn, url):
            try:
                summary, loaded = self._in_transaction(conn)
            except TooManyRejects as exc:
                # The file's rows are rolled back; its rejects are kept to say why.
                exc.rejects = self._with_originals(exc.rejects)
                if not ctx.dry_run:
                    with ctx.sessions.connection(ctx.history_dsn) as hconn, hconn.transaction():
                        self._keep_rejects(hconn, exc.rejects)
                self._rejected(exc.rejects)
                raise too_many(url, exc.rejects, exc.read, ctx.max_rejects) from None
        if ctx.separate_history and not ctx.dry_run:
            # A history in another database cannot share the file's transaction: it is
            # written just after; the manifest (with the data) is what decides reloads.
            with ctx.sessions.connection(ctx.history_dsn) as hconn, hconn.transaction():
                self._history(hconn, summary, loaded)
        self._announce(summary, loaded)
        return summary

    def _in_transaction(self, conn: psycopg.Connection[Any]) -> tuple[FileSummary, Loaded]:
        """Claim, load and record the file in one transaction (rolled back by a dry run)."""
        ctx = self.ctx
        with conn.transaction(force_rollback=ctx.dry_run):
            before = self._claim(conn)
            opened, loaded = self._open_and_load(conn)
            loaded = replace(loaded, rejects=self._with_originals(loaded.rejects))
            self._skip_if_same(before, loaded)
            summary = self._summary(opened, loaded)
            ctx.cancel.raise_if_cancelled(self.url)
            if not ctx.dry_run:
                self._commit_records(conn, summary, loaded)
        return summary, loaded

    def _open_and_load(self, conn: psycopg.Connection[Any]) -> tuple[OpenedFile, Loaded]:
        """The file opened (its bytes counted for progress events), loaded and closed."""
        ctx, fp, url = self.ctx, self.fp, self.url

        def progress(n: int) -> None:
            ctx.emit(ev.BytesRead(ctx.run_id, url, n, fp.ref.size))
            ctx.cancel.raise_if_cancelled(url)

        while True:
            stream = CountingStream(ctx.source.open(fp.ref), progress)
            opened = open_stream(fp, stream)  # type: ignore[arg-type]
            if not self.widened:
                for warning in opened.reader.details.get("warnings", []):  # a preamble, say
                    ctx.emit(ev.Warned(ctx.run_id, f"{url}: {warning}", url))
            try:
                loaded = self._load(conn, opened, stream)
            except Widened:
                self.widened = True  # the table takes the file now: read it again
                continue
            finally:
                opened.close()
            if stream.eof_at is not None:  # for the time left of the job's next runs
                self.read = {"bytes": stream.count, "read_seconds": stream.eof_at - self.started}
            return opened, loaded

    def _with_originals(self, rejects: list[Reject]) -> list[Reject]:
        """Rejects found by line (PostgreSQL refused a value, a row was ragged) with
        their record as the file has it: its text, offset and length, from the file read
        again (only when some reject lacks them). A file that cannot be read again keeps
        the values re-joined, and says so in the log."""
        lines = {r.line for r in rejects if r.line is not None and r.offset is None}
        if not lines:
            return rejects
        fp = self.fp
        try:
            stream = self.ctx.source.open(fp.ref)
            try:
                found = fp.format.open(stream, fp.ref).originals(lines)
            finally:
                stream.close()
        except (CsvpgError, OSError) as exc:
            self.ctx.log.warning("cannot read %s again for its rejects' lines: %s", self.url, exc)
            return rejects
        return [
            replace(r, raw=o.text, offset=o.offset, length=o.length)
            if r.offset is None and r.line is not None and (o := found.get(r.line))
            else r
            for r in rejects
        ]

    def _skip_if_same(self, before: manifest.Entry | None, loaded: Loaded) -> None:
        """A file read in full whose sha256 is the one it loaded with is skipped (unless
        ``--force``), when its table is still there."""
        if (
            not (self.ctx.force or self.table_gone)
            and before is not None
            and before.status == "loaded"
            and loaded.sha256 is not None
            and before.sha256 == loaded.sha256
            and loaded.existed
        ):
            raise Skip(
                f"unchanged (same sha256 as run {(before.run_id or '')[:8]})",
                same_content=True,
            )

    def _announce(self, summary: FileSummary, loaded: Loaded) -> None:
        """The events of a loaded file: its rejects, its transforms' warnings, FileLoaded."""
        ctx, url = self.ctx, self.url
        if loaded.rejects:
            self._rejected(loaded.rejects)
        for report in summary.details.get("transforms", {}).values():
            for warning in report.get("warnings", []):
                ctx.emit(ev.Warned(ctx.run_id, f"{url}: {warning}", url))
        ctx.emit(
            ev.FileLoaded(
                ctx.run_id,
                url,
                self.table,
                summary.rows_read,
                summary.inserted,
                summary.updated,
                summary.collapsed,
                summary.rejected,
                summary.seconds,
                summary.details,
                summary.unchanged,
            )
        )

    def _claim(self, conn: psycopg.Connection[Any]) -> manifest.Entry | None:
        """Claim the file for this transaction and say how it was loaded before; a file
        unchanged since it loaded is skipped. A file another worker holds waits for the
        run's other files (:class:`Held`), then for that worker: loaded by it, it is
        skipped; not (that worker failed, or died), this run loads it."""
        ctx, ref, fp = self.ctx, self.fp.ref, self.fp
        claim = manifest.claim_file(
            conn,
            ctx.job_name,
            self.url,
            self.table,
            wait=self.wait,
            read_manifest=ctx.has_manifest,
            target=(fp.schema, fp.table) if fp.sink.writes_table else None,
        )
        # The target's columns as the claim found them: the load looks no more.
        self.columns = (claim.columns,) if fp.sink.writes_table else None
        if not claim.claimed:
            self.held_over = claim.previous
            raise Held()
        before = claim.previous
        if before is not None and before.status == "loaded" and before.run_id == ctx.run_id:
            raise AlreadyLoaded()
        held_over = self.held_over
        if self.wait and before is not None and before.status == "loaded" and before != held_over:
            raise Skip(f"loaded by another worker (run {(before.run_id or '')[:8]})")
        if (
            not (ctx.force or self.table_gone)
            and before is not None
            and before.status == "loaded"
            and ref.size is not None
            and ref.mtime is not None
            and (before.size, before.mtime) == (ref.size, ref.mtime)
            and self._target_exists(conn)
        ):
            raise Skip(unchanged_since(before), loaded=True)
        return before

    def _target_exists(self, conn: psycopg.Connection[Any]) -> bool:
        """A table dropped since the file loaded must be loaded again."""
        fp = self.fp
        return not fp.sink.writes_table or self._columns(conn) is not None

    def _summary(self, opened: OpenedFile, loaded: Loaded) -> FileSummary:
        details = {
            **opened.reader.details,
            "mode": self.fp.mode,
            "path": "rows" if opened.row_path else "bytes",
            "careful": loaded.careful,
            "sha256": loaded.sha256,
            **self.read,
            **loaded.result.details,
        }
        if loaded.rejects:  # an export of the rejects (csvpg rejects RUN --export) heads so
            details["headers"] = list(opened.reader.headers)
        if self.split_note and "split" not in details:
            details["split"] = self.split_note
        if self.converting:
            details["conversions"] = {"on": "client"}
        elif self.convert_failed:
            details["conversions"] = {"on": "server", "why": self.convert_failed}
        if self.drift:
            details["drift"] = self.drift.to_dict()
        reports = {t.type: rep for t in self.fp.transforms if (rep := t.report())}
        if reports:
            details["transforms"] = reports
        r = loaded.result
        return FileSummary(
            self.url,
            self.table,
            "loaded",
            loaded.read,
            r.inserted,
            r.updated,
            r.collapsed,
            len(loaded.rejects),
            time.perf_counter() - self.started,
            details=details,
            unchanged=r.unchanged,
        )

    def _commit_records(
        self, conn: psycopg.Connection[Any], summary: FileSummary, loaded: Loaded
    ) -> None:
        """Rejects, history and manifest, in the file's own transaction: they can never
        disagree with the data."""
        ctx, ref = self.ctx, self.fp.ref
        if not ctx.separate_history and (loaded.rejects or ctx.replay is not None):
            self._keep_rejects(conn, loaded.rejects)  # a COPY: not pipelined
        with conn.pipeline():  # sent together: one wait for the server, not two
            if not ctx.separate_history:
                history.file_done(conn, ctx.run_id, summary)
            if ctx.replay is None:  # a replay does not read the source file: no manifest
                manifest.record(
                    conn,
                    **self.key,
                    size=ref.size,
                    mtime=ref.mtime,
                    sha256=loaded.sha256,
                    rows=summary.rows_read,
                    status="loaded",
                    run_id=ctx.run_id,
                    seconds=summary.seconds,
                )

    def _history(self, conn: psycopg.Connection[Any], summary: FileSummary, loaded: Loaded) -> None:
        if loaded.rejects or self.ctx.replay is not None:
            self._keep_rejects(conn, loaded.rejects)
        history.file_done(conn, self.ctx.run_id, summary)

    def _keep_rejects(self, conn: psycopg.Connection[Any], rejects: list[Reject]) -> None:
        """The file's rejects into ``csvpg.rejects``; a replay's resolve the rejects it
        replays instead (see :func:`resolve_replayed`)."""
        ctx, replay = self.ctx, self.ctx.replay
        if replay is None:
            write_rejects(conn, ctx.run_id, self.url, rejects)
            return
        resolve_replayed(
            conn, ctx.run_id, replay.of_run, replay.file, replay.lines, replay.texts, rejects
        )

    # -- outcomes other than loaded ------------------------------------------------

    def _skipped(
        self, reason: str, details: dict[str, Any] | None = None, *, write_history: bool = True
    ) -> FileSummary:
        self.ctx.emit(ev.FileSkipped(self.ctx.run_id, self.url, reason))
        summary = FileSummary(self.url, self.table, "skipped", error=reason, details=details or {})
        return self._record(summary) if write_history else summary

    def _failed(self, exc: CsvpgError) -> FileSummary:
        ctx = self.ctx
        seconds = time.perf_counter() - self.started
        message = _with_url(exc.message, self.url)
        ctx.emit(ev.FileFailed(ctx.run_id, self.url, self.table, message, exc.hint, seconds))
        if ctx.settings.fail_fast:
            ctx.cancel.stopping.set()
        summary = FileSummary(
            self.url, self.table, "failed", seconds=seconds, error=message, hint=exc.hint
        )
        return self._record(summary, failed=True)

    def _cancelled(self) -> FileSummary:
        """The file rolled back because the run was cancelled: a FileCancelled event and
        status ``cancelled`` in the history."""
        ctx = self.ctx
        seconds = time.perf_counter() - self.started
        message = f"{self.url}: {CANCELLED}"
        ctx.emit(ev.FileCancelled(ctx.run_id, self.url, self.table, seconds))
        summary = FileSummary(self.url, self.table, "cancelled", seconds=seconds, error=message)
        return self._record(summary)

    def _record(self, summary: FileSummary, *, failed: bool = False) -> FileSummary:
        """History (and for a failure, the manifest) of a file that did not load."""
        ctx = self.ctx
        if ctx.dry_run:
            return summary
        try:
            with ctx.sessions.connection(ctx.history_dsn) as conn, conn.transaction():
                history.file_done(conn, ctx.run_id, summary)
            with ctx.sessions.connection(ctx.dsn) as conn, conn.transaction():
                if failed and ctx.has_manifest and manifest.claim(conn, ctx.job_name, self.url):
                    before = manifest.previous(conn, ctx.job_name, self.url, self.table)
                    if before is None or before.status != "loaded":
                        manifest.record(
                            conn,
                            **self.key,
                            size=self.fp.ref.size,
                            mtime=self.fp.ref.mtime,
                            sha256=None,
                            rows=0,
                            status="failed",
                            run_id=ctx.run_id,
                            seconds=summary.seconds,
                        )
        except (psycopg.Error, CsvpgError) as exc:
            ctx.log.warning("cannot record %s in the run history: %s", summary.file, exc)
        return summary

    def _refresh_manifest(self) -> None:
        ctx, ref = self.ctx, self.fp.ref
        try:
            with ctx.sessions.connection(ctx.dsn) as conn, conn.transaction():
                manifest.refresh(
                    conn,
                    **self.key,
                    size=ref.size,
                    mtime=ref.mtime,
                )
        except (psycopg.Error, CsvpgError) as exc:
            ctx.log.warning("cannot update the manifest for %s: %s", self.url, exc)

    def _rejected(self, rejects: list[Reject]) -> None:
        ctx = self.ctx
        if rejects:  # the careful and row paths know their rejects only at the end
            self._bad_row_found(min(rejects, key=lambda r: r.line or 0))
        first = [r.to_dict() for r in rejects[:20]]
        ctx.emit(ev.RowsRejected(ctx.run_id, self.url, len(rejects), first))
        if ctx.rejects_csv and not ctx.dry_run:
            write_rejects_csv(ctx.base_dir, ctx.job_name, ctx.run_id, self.fp, rejects)

    # -- the load itself -----------------------------------------------------------

    def _load(
        self, conn: psycopg.Connection[Any], opened: OpenedFile, stream: CountingStream
    ) -> Loaded:
        """The fast path first; the careful path only when it failed on bad rows."""
        fp = self.fp
        self.extra = []
        self.split_note = None
        existed = not fp.sink.writes_table or self._columns(conn) is not None
        if not existed:
            # Files that create the same table take turns: the second waits for the first
            # to commit, then finds the table there.
            self._take_turns(conn, "csvpg.create")
        load = self._settled_input(conn, opened)
        load = self._client_converted(conn, load)
        if fp.sink.writes_table and not split.stages(load, fp.sink):
            load = guard_relative_dates(load)  # COPY itself would take "yesterday" as a date
        if not load.relation.columns:
            self.ctx.emit(
                ev.Warned(self.ctx.run_id, f"{self.url} is empty: nothing to load", self.url)
            )
            return Loaded(LoadResult(rows=0, inserted=0), [], 0, False, stream.sha256, existed)
        splitter = None
        if fp.sink.writes_table:
            exists = self._columns(conn) is not None
            splitter = self._splitter(load, exists)
            if splitter is None or splitter.staged:
                for statement in fp.sink.ddl(load, exists):
                    conn.execute(statement)
        if opened.row_path and fp.sink.takes_staged:
            return replace(self._rows(conn, load, stream, opened.malformed), existed=existed)
        try:
            return replace(self._fast(conn, load, opened, stream, splitter), existed=existed)
        except (psycopg.Error, Declined) as exc:
            self._unconverted(exc)
            if isinstance(exc, psycopg.Error):
                self._widen(conn, load, exc)
                self._copy_failed(opened, exc)
            else:  # what the skipping COPY could not tell, the batches can
                self.ctx.log.debug("%s: loading it again COPY by COPY: %s", self.url, exc)
                self._setting_aside()
            # Bad rows: the file again, COPY by COPY, each bad row costing its batch.
            resumed = self._resume(conn, load) if splitter is None else None
            if resumed is not None:
                return replace(resumed, existed=existed)
        except FormatError as exc:
            self._unconverted(exc)
            # A relative date word may be a false alarm (a word in a text column): only
            # the careful path can tell, even when max_rejects = 0.
            if not (self._careful_possible() or isinstance(exc, MayHoldRelativeDates)):
                raise
            self._widen(conn, load, exc)
            self._setting_aside()
        return replace(self._careful(conn, load), existed=existed)

    def _fast(
        self,
        conn: psycopg.Connection[Any],
        load: LoadInput,
        opened: OpenedFile,
        stream: CountingStream,
        splitter: SplitLoad | None,
    ) -> Loaded:
        """The file in one COPY (or one per chunk of a split): the sink's own, or on
        PostgreSQL 17+ one that skips bad values (:meth:`_skipping`)."""
        skips = splitter is None and not self.converting
        if skips and (skipped := self._skipping(conn, load, opened)):
            return replace(skipped, sha256=stream.sha256)
        with load_savepoint(conn):
            if splitter is not None:
                result = splitter.run(conn, self.extra)
            else:
                result = self.fp.sink.load(conn, load)
        if self._over_limit(len(result.rejects), result.rows):
            raise TooManyRejects(result.rejects, result.rows)
        _check_read_some(opened, result, self.url)
        return Loaded(result, list(result.rejects), result.rows, False, stream.sha256)

    def _client_converted(self, conn: psycopg.Connection[Any], load: LoadInput) -> LoadInput:
        """The load with its [columns] conversions done on the client, when it can be
        (:mod:`.clientconvert`); else as it is, converted in SQL."""
        fp = self.fp
        self.converting = False
        if self.convert_failed or self.widened or not fp.sink.writes_table:
            return load
        if not (fp.sink.copies_file or fp.sink.stages_in_table_types):
            return load  # a sink of its own: it sees the file as the format read it
        how = clientconvert.plan(
            load,
            session_zone=conn.info.parameter_status("TimeZone"),
            size=fp.ref.size,
            lowers_ascii=lambda: lowers_ascii(conn),
        )
        if how is None or not clientconvert.available():
            return load
        self.converting = True
        return clientconvert.converted(load, how)

    def _unconverted(self, exc: Exception) -> None:
        """The client path's COPY failed on a value, or its conversions stopped: the
        file loads again with them in SQL (:class:`ConvertedFailed`)."""
        if not self.converting:
            return
        if isinstance(exc, psycopg.Error) and not is_row_error(exc):
            return  # a lost connection, say: the same on either path
        raise ConvertedFailed(str(exc).strip().splitlines()[0]) from exc

    def _take_turns(self, conn: psycopg.Connection[Any], what: str) -> None:
        """Wait for the other transactions that do ``what`` to this table to end; the
        table's columns are looked at again after (the one before may have changed it)."""
        conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s), hashtext(%s))", (what, self.table))
        self.columns = None

    def _settled_input(self, conn: psycopg.Connection[Any], opened: OpenedFile) -> LoadInput:
        """The file's load input, and the drift DDL it needs run. Files that change the
        same table take turns: once it is this file's turn, its columns are settled
        again against the table as the file before it left it."""
        before = copy.deepcopy(self.drift) if self.drift else Drift()  # (most are empty)
        load = self.load_input(conn, opened)
        if self.drift_ddl:
            self._take_turns(conn, "csvpg.drift")
            self.drift = before
            load = self.load_input(conn, opened)
        for statement in self.drift_ddl:
            apply_drift(conn, statement, file=self.url, table=self.table)
            self.columns = None
        return load

    def _widen(self, conn: psycopg.Connection[Any], load: LoadInput, exc: Exception) -> None:
        """``schema = "evolve"``, a load that failed on a value (``exc``: a data exception,
        or a relative date word that sends the file down the careful path): when the
        whole file asks for a wider type (or another for a column this load added), the
        table gets it and the load starts again (:class:`Widened`); else the bad values
        are rejects."""
        fp = self.fp
        if fp.drift != "evolve" or not fp.sink.writes_table:
            return
        if isinstance(exc, psycopg.Error) and not (exc.sqlstate or "").startswith("22"):
            return  # not a value that does not fit its type (a duplicate key, say)
        if not drift.may_widen(fp, load.relation, load.types, self.drift):
            return
        ctx = self.ctx
        self._take_turns(conn, "csvpg.drift")
        now = table_columns(conn, fp.schema, fp.table) or {}
        if any(
            not same_type(now.get(c.name, ""), load.types[c.name].type)
            for c in load.relation.columns
        ):
            drop_staging(conn)
            raise Widened()  # another file's load changed the table: settle again
        ctx.emit(ev.FilePhase(ctx.run_id, self.url, "reading it all for wider types"))
        statement = drift.after_failure(conn, fp, ctx.source, load.relation, load.types, self.drift)
        if statement is None:
            return
        apply_drift(conn, statement, file=self.url, table=self.table)
        drop_staging(conn)
        ctx.emit(
            ev.Warned(ctx.run_id, f"{self.url}: a value outgrew its column; widened", self.url)
        )
        raise Widened()

    def _copy_failed(self, opened: OpenedFile, exc: psycopg.Error) -> None:
        """The fast COPY failed: on a bad row, the careful path is next (when max_rejects
        allows); any other error fails the file."""
        # COPY counts lines from the first data line: the reader says how many
        # physical lines (skipped ones, the header) come before it.
        offset = int(getattr(opened.reader, "line_offset", 0))
        if is_row_error(exc) and not self._careful_possible():
            raise sink_error(exc, file=self.url, table=self.table, line_offset=offset) from exc
        if not is_row_error(exc):
            raise exc
        self._setting_aside()

    def _skipping(
        self, conn: psycopg.Connection[Any], load: LoadInput, opened: OpenedFile
    ) -> Loaded | None:
        """On PostgreSQL 17+, the fast COPY itself skips a row whose value its type
        refuses (``ON_ERROR ignore``); the file is read again, up to the last such row,
        only when there was one, for the rejects' records. ``None``: this file loads by
        the sink's own COPY (a server before 17, a sink that stages, no bad rows to set
        aside). Raises what a failed COPY raises, or :class:`Declined`."""
        if conn.info.server_version < SKIPS_FROM or not self._resumes(load):
            return None
        copier = self._copier(conn, load, opened)
        if copier is None:
            return None
        assert load.chunks is not None
        with load_savepoint(conn):
            with conn.cursor() as cur:
                self.fp.sink.before_copy(cur, load)
            skipped = copier.copy_whole(load.chunks)
            if skipped:
                self._setting_aside()
                with self._read_again(hashed=False) as (reread, _):
                    chunks = reread.chunks(again=True)  # (checked by the COPY's reading)
                    if chunks is None:
                        raise Declined("the file read again hands on no bytes")
                    copier.set_aside_skipped(chunks, skipped)
            loaded, rejects, read = copier.loaded, copier.rejects, copier.read
            if self._over_limit(len(rejects), read):
                raise TooManyRejects(rejects, read)
        result = LoadResult(rows=read, inserted=loaded)
        _check_read_some(opened, result, self.url)
        return Loaded(result, rejects, read, bool(rejects), None)

    @contextlib.contextmanager
    def _read_again(self, *, hashed: bool = True) -> Iterator[tuple[OpenedFile, CountingStream]]:
        """The file opened anew, for a second reading after its first COPY. Not progress
        (these bytes were counted once): only a cancel check per MiB. ``hashed``: its
        checksum is made again (a reading that loads the file; not one for rejects)."""
        fp, cancel, url = self.fp, self.ctx.cancel, self.url
        stream = CountingStream(
            self.ctx.source.open(fp.ref), lambda _: cancel.raise_if_cancelled(url), hashed=hashed
        )
        opened = open_stream(fp, stream)  # type: ignore[arg-type]
        try:
            yield opened, stream
        finally:
            opened.close()

    def _copier(
        self, conn: psycopg.Connection[Any], load: LoadInput, opened: OpenedFile
    ) -> ResumedCopy | None:
        """The file's COPY by COPY load (:mod:`csvpg.pg.resume`), for the bytes ``opened``
        hands on; None when they are not the file's own in a known encoding."""
        codec = getattr(opened.reader, "codec", None)
        if not isinstance(codec, str) or load.chunks is None:
            return None
        return ResumedCopy(
            conn,
            load,
            line_offset=int(getattr(opened.reader, "line_offset", 0)),
            codec=codec,
            stop=self._too_many,
            data_offset=getattr(opened.reader, "data_offset", None),
            found=self._bad_row_found,
        )

    def _resume(self, conn: psycopg.Connection[Any], load: LoadInput) -> Loaded | None:
        """After the fast COPY failed on a bad row: the file read again and loaded COPY by
        COPY (:meth:`_resumed`); None when the careful path must set the rows aside."""
        if not self._resumes(load):
            return None
        with self._read_again() as (opened, stream):
            resumed = self._resumed(conn, replace(load, chunks=opened.chunks()), opened, stream)
        saw_data = getattr(opened.reader, "saw_data", False)
        return None if resumed is None or (resumed.read == 0 and saw_data) else resumed

    def _resumes(self, load: LoadInput) -> bool:
        """Bad rows of this file can be set aside COPY by COPY (:mod:`csvpg.pg.resume`)."""
        fp = self.fp  # evolve widens a column on a failed COPY instead (see _widen)
        return (
            fp.sink.copies_file
            and fp.drift != "evolve"
            and self._careful_possible()
            and resumable(load)
        )

    def _setting_aside(self) -> None:
        """Bad rows: the phase shows at once, the warning once the first of them is
        found (:meth:`_bad_row_found`), so that it names its physical line; the failed
        COPY's error counts records, which quoted line ends make fewer than lines."""
        self.ctx.emit(ev.FilePhase(self.ctx.run_id, self.url, "checking bad rows"))

    def _bad_row_found(self, reject: Reject) -> None:
        if self.said_aside:
            return
        self.said_aside = True
        where = f"{self.url}, line {reject.line}" if reject.line else self.url
        if reject.column:
            where += f", column {reject.column}"
        message = f"{where}: {reject.reason}; setting bad rows aside"
        self.ctx.emit(ev.Warned(self.ctx.run_id, message, self.url))

    def _splitter(self, load: LoadInput, exists: bool) -> SplitLoad | None:
        """A large file loads over connections the run has spare, when its mode allows
        (see :mod:`csvpg.pg.split`); ``None`` loads it on the file's connection alone."""
        ctx, fp, size = self.ctx, self.fp, self.fp.ref.size
        threshold = ctx.settings.split_mb << 20
        if not (threshold and size is not None and size >= threshold):
            return None
        why = split.why_not(load, fp.sink, exists)
        if why is None and ctx.budget.connections == 1:
            why = "the run has one connection ([run] workers)"
        if why is None and self.split_failed:
            why = f"split, it failed: {self.split_failed}"
        if why is None and self.widened:
            why = "a type widened after its first COPY failed"
        borrowed = 0 if why else ctx.budget.borrow(ctx.budget.connections - 1)
        if not borrowed:
            self.split_note = {"connections": 1, "why": why or "no connection was idle"}
            return None
        self.after.callback(ctx.budget.give_back, borrowed)
        scratch = ctx.budget.scratch_schema()
        self.after.callback(self._drop_scratch, scratch)
        try:
            for _ in range(borrowed):
                self.extra.append(self.after.enter_context(connect(ctx.dsn)))
                self.after.enter_context(ctx.cancel.in_flight(self.extra[-1], self.url))
        except DatabaseError as exc:  # the server's max_connections, say: load unsplit
            self.split_note = {"connections": 1, "why": f"no more connections: {exc.message}"}
            return None
        loader = split.SplitLoad(load, fp.sink, scratch, borrowed + 1, size)
        if not loader.prepare(self.extra[0]):
            self.split_note = {"connections": 1, "why": "the user may not create a schema"}
            return None
        return loader

    def _drop_scratch(self, scratch: str) -> None:
        try:
            with connect(self.ctx.dsn) as conn:
                split.drop(conn, scratch)
        except (psycopg.Error, CsvpgError) as exc:
            self.ctx.log.warning("cannot drop %s (the next run will): %s", scratch, exc)

    def _careful_possible(self) -> bool:
        return self.fp.sink.takes_staged and self.ctx.limit != (0, None)

    def _over_limit(self, rejected: int, read: int) -> bool:
        """More rejects than max_rejects allows (see :func:`over_limit`); a replay has no
        limit: its rows that fail again stay the rejects they were, even all of them."""
        return self.ctx.replay is None and over_limit(rejected, read, self.ctx.limit)

    def _too_many(self, rejects: int, read: int = 0) -> bool:
        """Past max_rejects already (a count): stop looking for more. ``read`` makes it
        the ``stop(rejected, read)`` the staging functions take."""
        count = self.ctx.limit[0]
        return count is not None and rejects > count

    def _resumed(
        self,
        conn: psycopg.Connection[Any],
        load: LoadInput,
        opened: OpenedFile,
        stream: CountingStream,
    ) -> Loaded | None:
        """The byte path COPY by COPY, bad rows set aside as it goes (:mod:`csvpg.pg.resume`);
        ``None`` when they need the careful path after all."""
        copier = self._copier(conn, load, opened)
        if copier is None or load.chunks is None:
            return None
        try:
            with conn.transaction():
                with conn.cursor() as cur:
                    self.fp.sink.before_copy(cur, load)
                loaded, rejects, read = copier.run(load.chunks)
                if over_limit(len(rejects), read, self.ctx.limit):
                    raise TooManyRejects(rejects, read)
        except (Declined, FormatError) as exc:
            self.ctx.log.debug("%s: the careful path sets the bad rows aside: %s", self.url, exc)
            return None
        result = LoadResult(rows=read, inserted=loaded)
        return Loaded(result, rejects, read, bool(rejects), stream.sha256)

    def _careful(self, conn: psycopg.Connection[Any], load: LoadInput) -> Loaded:
        """The byte path's bad rows: the file read again, record by record."""
        fp, cancel, url = self.fp, self.ctx.cancel, self.url
        # Not progress (these bytes were counted once): only a cancel check per MiB.
        stream = CountingStream(
            self.ctx.source.open(fp.ref), lambda _: cancel.raise_if_cancelled(url)
        )
        try:
            records = fp.format.open(stream, fp.ref).iter_records()  # type: ignore[arg-type]
            staged, rejects, read = careful_stage(conn, load, records, self._too_many)
        finally:
            stream.close()
        return self._set_aside(conn, load, Prober(conn, load, staged), rejects, read, stream)

    def _rows(
        self,
        conn: psycopg.Connection[Any],
        load: LoadInput,
        stream: CountingStream,
        malformed: deque[Reject],
    ) -> Loaded:
        """The row path into a table: its rows are staged first, so the rows PostgreSQL
        refuses are set aside without reading the file (and transforming it) again;
        rows the reader set aside (``malformed``) are rejects too."""
        staged, rejects, read = stage_rows(conn, load, self._too_many, malformed)
        try:
            with conn.transaction():
                result = self.fp.sink.load_staged(conn, load, staged)
        except psycopg.Error as exc:
            if not is_row_error(exc):
                raise
            self._widen(conn, load, exc)
            self._setting_aside()
            prober = Prober(conn, load, staged, lines=True)
            return self._set_aside(conn, load, prober, rejects, read, stream)
        if self._over_limit(len(rejects), read):
            raise TooManyRejects(rejects, read)
        return Loaded(result, rejects + list(result.rejects), read, bool(rejects), stream.sha256)

    def _set_aside(
        self,
        conn: psycopg.Connection[Any],
        load: LoadInput,
        prober: Prober,
        rejects: list[Reject],
        read: int,
        stream: CountingStream,
    ) -> Loaded:
        """Find the staged rows PostgreSQL refuses, drop them, load the rest."""
        staged = prober.staged
        bad = prober.bad_rows(lambda n: self._too_many(len(rejects) + n))
        # By line; rows a transform made (no line) after them, in the order found.
        rejects = sorted(rejects + bad, key=lambda r: (r.line is None, r.line or 0))
        if self._over_limit(len(rejects), read):
            raise TooManyRejects(rejects, read)
        if bad:
            conn.execute(
                sql.SQL("DELETE FROM {} WHERE {} = ANY(%s)").format(
                    staged.table, sql.Identifier(STAGING_ROW)
                ),
                (prober.keys,),
            )
            staged = Staged(staged.table, staged.names, staged.rows - len(bad))
        with conn.transaction():
            result = self.fp.sink.load_staged(conn, load, staged)
        return Loaded(result, rejects + list(result.rejects), read, True, stream.sha256)

    def _columns(self, conn: psycopg.Connection[Any]) -> dict[str, str] | None:
        """The target table's columns (None: no such table), asked once per look: the
        load's steps between two looks change nothing a concurrent load could."""
        if self.columns is None:
            self.columns = (table_columns(conn, self.fp.schema, self.fp.table),)
        return self.columns[0]

    def load_input(self, conn: psycopg.Connection[Any], opened: OpenedFile) -> LoadInput:
        """Check the file's columns against the table (or the types to create it with)."""
        fp = self.fp
        relation = opened.relation
        fp.check_primary_key(relation)
        existing = self._columns(conn) if fp.sink.writes_table else None
        self.drift_ddl = []
        if existing is None:
            types = _column_types(conn, fp, opened)
        else:
            settled = drift.settle(
                conn,
                fp,
                self.ctx.source,
                relation,
                fp.planned_types(opened),
                existing,
                self.drift,
                opened.reader.types,
            )
            relation, types, self.drift_ddl = settled.relation, settled.types, settled.ddl
            self.drift.merge(settled.drift)
        self._warn_unknown_columns(opened.relation)
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
            batches=opened.batches(fp.transforms, set_aside=fp.sink.takes_staged),
            dry_run=self.ctx.dry_run,
            base_dir=self.ctx.base_dir,
            run_id=self.ctx.run_id,
            schema_exists=existing is not None or schema_exists(conn, fp.schema),
        )

    def _warn_unknown_columns(self, relation: Relation) -> None:
        """A name in the file's own ``[[override]]`` ``[columns]`` that it lacks is likely
        a typo: worth a warning (the job-wide ``[columns]`` serves many files)."""
        fp = self.fp
        for name in fp.unknown_columns(relation):
            self.ctx.emit(
                ev.Warned(
                    self.ctx.run_id,
                    f"[columns] {name!r} is not a column of {fp.ref.name}",
                    fp.ref.url,
                )
            )


def _column_types(
    conn: psycopg.Connection[Any], fp: FilePlan, opened: OpenedFile
) -> dict[str, ColumnType]:
    """The plan's types (:meth:`FilePlan.planned_types`) as the database settles them:
    as they are for a sink that writes no table, checked for the table to create (an
    existing table's are :func:`csvpg.engine.drift.settle`'s)."""
    planned = fp.planned_types(opened)
    if not fp.sink.writes_table:
        return planned
    return _new_table_types(conn, fp, opened, planned)


def _new_table_types(
    conn: psycopg.Connection[Any],
    fp: FilePlan,
    opened: OpenedFile,
    planned: dict[str, ColumnType],
) -> dict[str, ColumnType]:
    """The types to create the missing table with (when ``create`` allows it), each one
    checked by PostgreSQL."""
    if not fp.create and opened.relation.columns:
        raise SinkError(
            f"table {fp.target} does not exist",
            file=fp.ref.url,
            hint="create it, or set create = true in [sink]",
        )
    return {
        name: replace(given, type=checked_type(conn, given.type, f"columns.{name}"))
        for name, given in planned.items()
    }


def write_rejects_csv(
    base_dir: Path, job_name: str, run_id: str, fp: FilePlan, rejects: list[Reject]
) -> Path:
    """``rejects/<job>-<run>-<file>.csv`` in the job's folder: the rejects of one file."""
    folder = base_dir / "rejects"
    folder.mkdir(exist_ok=True)
    # The remote name never becomes a path as it is.
    path = (
        folder
        / f"{safe_identifier(job_name, 1)}-{run_id[:8]}-{safe_identifier(fp.ref.name, 1)}.csv"
    )
    with path.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(["line", "column", "value", "reason", "raw"])
        for r in rejects:
            # A value like "=HYPERLINK(…)" is shown by a spreadsheet, never run.
            row = [r.line, r.column, r.value, r.reason, r.raw]
            writer.writerow([spreadsheet_safe(v) for v in row])
    return path
