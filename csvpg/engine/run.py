"""Runs a plan: several files at once, each on its own connection and in one
transaction (see :mod:`csvpg.engine.fileload`), with every step reported as an event. The
engine never prints."""

from __future__ import annotations

import itertools
import logging
import os
import threading
import time
import uuid
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pluggy
import psycopg

from csvpg import events as ev
from csvpg.engine import pending
from csvpg.engine.context import CancelToken, ConnectionBudget, Replay, RunContext, Sessions
from csvpg.engine.fileload import FileLoad
from csvpg.engine.plan import FilePlan, Plan, make_plan, replay_plan
from csvpg.errors import CsvpgError, DatabaseError
from csvpg.pg import history, manifest, split
from csvpg.pg.connect import connect, free_connections, mask_dsn
from csvpg.pg.load import existing_tables
from csvpg.pg.rejects import reject_limit
from csvpg.pg.schema import ensure_schema
from csvpg.plugins import Registry
from csvpg.retry import backoff, is_transient
from csvpg.spec import Job
from csvpg.summary import FileSummary, RunSummary

__all__ = ["Engine", "FileSummary", "RunSummary"]

log = logging.getLogger(__name__)


def resolve_dsn(job: Job, dsn: str | None) -> str:
    """``--dsn`` beats ``[database] dsn``; neither means the embedded server."""
    if dsn:
        return dsn
    if job.database.dsn:
        return job.database.dsn
    from csvpg import embedded

    return embedded.start()


class Engine:
    """One run of a job: the plan, the files in parallel, the history."""

    log = log

    def __init__(
        self,
        job: Job,
        pm: pluggy.PluginManager,
        dsn: str | None = None,
        *,
        dry_run: bool = False,
        force: bool = False,
        callbacks: Iterable[str] = (),
        run_id: str | None = None,
        replay: Replay | None = None,
    ) -> None:
        self.job = job
        self.pm = pm
        self.registry = Registry(pm)
        self._dsn = dsn
        self.dry_run = dry_run
        #: Load every file, even one the manifest says is unchanged.
        self.force = force
        #: Extra webhooks for this run only (``--callback-url``).
        self.callbacks = list(callbacks)
        #: A queued run's files load in several engines, each given the run's id.
        self.run_id = run_id or uuid.uuid4().hex
        self.limit = reject_limit(job.sink.max_rejects)
        #: A replay of fixed rejects: one file, every row that fails again kept as the
        #: reject it was (no limit), the manifest left alone.
        self.replay = replay
        if replay is not None:
            self.limit, self.force = (None, None), True
        #: cancel() and fail_fast: shared with every file's load.
        self.token = CancelToken()
        #: Connections the run may hold: one per file loading, plus a split file's extra.
        self.budget = ConnectionBudget(self.run_id)
        #: Webhook deliveries of a run that ended before its files (see _ended_early).
        self.early_notifications: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._started_row = False
        #: Sessions holding the run's lock while it lives: in the history database, and
        #: in the target one too when they differ (split files' scratch lives there).
        self._alive = history.Liveness(self.run_id)
        #: Connections kept from one file to the next (closed as the run ends).
        self.sessions = Sessions()

    def cancel(self) -> None:
        """Stop the run, from any thread (the dashboard's ``q``, a signal): a file in
        flight rolls back at once (its running statement is cancelled on the server, a
        wait for another worker's file too) and is recorded as cancelled; files not yet
        started are skipped. :meth:`run` then returns as usual."""
        self.token.cancel()

    @property
    def cancelled(self) -> bool:
        return self.token.cancelled.is_set()

    def context(self, *, has_manifest: bool) -> RunContext:
        """The run as its files see it: each file's load gets ``for_file`` of it."""
        return RunContext(
            run_id=self.run_id,
            job=self.job,
            dsn=self.dsn,
            history_dsn=self.history_dsn,
            limit=self.limit,
            emit=self.emit,
            has_manifest=has_manifest,
            dry_run=self.dry_run,
            force=self.force,
            cancel=self.token,
            budget=self.budget,
            log=log,
            replay=self.replay,
            sessions=self.sessions,
        )

    def emit(self, event: ev.Event) -> None:
        # One event at a time: reporters need not be thread-safe.
        with self._lock:
            self.pm.hook.track_event(event=event)

    @property
    def dsn(self) -> str:
        """Resolved on first use, after the plan is made: a broken job starts no server."""
        if not self._dsn:
            self._dsn = resolve_dsn(self.job, self._dsn)
        return self._dsn

    @property
    def history_dsn(self) -> str:
        """Where runs, their files and rejects go: [history] dsn, else the target."""
        return str(self.job.history.dsn or self.dsn)

    @property
    def separate_history(self) -> bool:
        return self.history_dsn != self.dsn

    def plan(self) -> Plan:
        if self.replay is not None:
            return replay_plan(self.job, self.registry, self.replay.file, self.replay.path)
        return make_plan(self.job, self.registry)

    def run(self) -> RunSummary:
        """Once: an engine is one run."""
        started = time.perf_counter()
        try:
            return self._run(started)
        except CsvpgError as exc:
            self._ended_early(exc, started)
            raise
        finally:
            self.sessions.close()
            if self.budget.made_scratch:
                self._drop_scratch()
            self._alive.close()  # releases the run's lock: it is over

    def refused(self, exc: CsvpgError) -> None:
        """A run that could not be queued (its job or source is broken): failed in the
        history, with the error and hint, and its webhooks told, as a run that ended
        before its files."""
        self._ended_early(exc, time.perf_counter())

    def _drop_scratch(self) -> None:
        """Scratch schemas of this run's split files that are still there (a file whose
        own cleanup could not reach the server): gone before the run ends."""
        try:
            with connect(self.dsn, connect_timeout=10) as conn:
                for name, run_id in split.scratch_schemas(conn).items():
                    if run_id == self.run_id:
                        split.drop(conn, name)
        except (psycopg.Error, CsvpgError) as exc:
            log.warning(
                "cannot drop the scratch of run %s (the next run will): %s", self.run_id, exc
            )

    def _ended_early(self, exc: CsvpgError, started: float) -> None:
        """A run that stopped before its files (no source, no database): its webhooks
        still hear of it, and the history has it as failed, with the error and hint."""
        summary = RunSummary(
            run_id=self.run_id,
            job=self.job.name,
            database=mask_dsn(self._dsn or ""),
            status="failed",
            files=[],
            seconds=time.perf_counter() - started,
            dry_run=self.dry_run,
        )
        if not self.dry_run:
            summary.notifications = self.early_notifications = self._notify(summary, error=exc)
            self._record_early(summary, exc)

    def _record_early(self, summary: RunSummary, exc: CsvpgError) -> None:
        """The failed run's row (written now if the run failed before it), in the history
        the run would have used, when that is reachable without starting a server."""
        dsn = self.history_dsn if self._dsn else self._known_history_dsn()
        if dsn is None:
            return
        values = history.end_values(summary, error=exc.message, hint=exc.hint)
        try:
            with connect(dsn, connect_timeout=10) as conn:
                if not self._started_row:
                    ensure_schema(conn)
                    history.run_started(
                        conn, self.run_id, self.job.name, self.job.digest, summary.database
                    )
                history.record_end(conn, self.run_id, values)
                if summary.notifications:
                    history.notified(conn, self.run_id, summary.notifications)
        except (psycopg.Error, CsvpgError) as again:
            if self._started_row:
                log.warning("cannot record the failed run %s: %s", self.run_id, again)
                pending.save(self.run_id, values)
            else:  # the history is where the run failed, or unreachable: it has nothing
                log.debug("cannot record the failed run %s: %s", self.run_id, again)

    def _known_history_dsn(self) -> str | None:
        """The history's DSN when the target's was never resolved (the run failed before
        it needed one): the job's, or the embedded server's if that one is running."""
        dsn = self.job.history.dsn or self.job.database.dsn
        if dsn:
            return str(dsn)
        from csvpg import embedded

        return embedded.url()

    def _run(self, started: float) -> RunSummary:
        plan = self.plan()
        try:
            return self._run_plan(plan, started)
        finally:
            plan.source.close()

    def _run_plan(self, plan: Plan, started: float) -> RunSummary:
        # One clear error for an unreachable server, rather than one per file.
        with self.sessions.connection(self.dsn, connect_timeout=10) as conn:
            try:
                if not self.dry_run:
                    ensure_schema(conn)
                    _reap_scratch(conn)
                has_manifest = manifest.exists(conn)
                free = free_connections(conn)
                unchanged, gone = self._unchanged(conn, plan.files) if has_manifest else ({}, set())
            except psycopg.Error as exc:
                raise _schema_error(self.dsn, exc) from exc
        write_per_byte = None if self.dry_run else self._history_started()
        self.emit(
            ev.JobStarted(
                self.run_id,
                self.job.name,
                len(plan.files),
                mask_dsn(self.dsn),
                dry_run=self.dry_run,
                bytes=_total_size(plan.files),
                write_per_byte=write_per_byte,
            )
        )
        results: list[FileSummary] = []
        for ref, reason in plan.skipped:
            self.emit(ev.FileSkipped(self.run_id, ref.url, reason))
            results.append(FileSummary(ref.url, None, "skipped", error=reason))
        ctx = self.context(has_manifest=has_manifest)
        loads = [FileLoad(ctx.for_file(plan.source, fp)) for fp in plan.files]
        for i in gone:  # its table was dropped: loaded again, even by a file loaded before
            loads[i].table_gone = True
        done = self._skip_unchanged(loads, unchanged)
        self.budget.start(self._connections(free), len(loads) - len(done))
        self.sessions.release()  # the run's own connection: a file's now
        results += self._load_all([load for load in loads if id(load) not in done], done, loads)
        return self.finish(results, time.perf_counter() - started)

    def _unchanged(
        self, conn: psycopg.Connection[Any], files: list[FilePlan]
    ) -> tuple[dict[int, manifest.Entry], set[int]]:
        """The files (by index) the listing shows unchanged since they loaded, their
        tables still there; and those unchanged whose table is gone. One manifest query
        and one catalog query for the whole listing. A file that changed, one another
        run loads now, one of this run (a queued run's task) is left to its own load,
        which claims it and looks again."""
        if self.force:
            return {}, set()
        keys = [(fp.ref.url, fp.target) for fp in files]
        entries = manifest.loaded(conn, self.job.name, keys)
        same = {
            i: entry
            for i, (fp, key) in enumerate(zip(files, keys, strict=True))
            if (entry := entries.get(key)) is not None
            and entry.run_id != self.run_id
            and fp.ref.size is not None
            and fp.ref.mtime is not None
            and (entry.size, entry.mtime) == (fp.ref.size, fp.ref.mtime)
        }
        there = existing_tables(
            conn, {(files[i].schema, files[i].table) for i in same if files[i].sink.writes_table}
        )
        gone = {
            i
            for i in same
            if files[i].sink.writes_table and (files[i].schema, files[i].table) not in there
        }
        return {i: entry for i, entry in same.items() if i not in gone}, gone

    def _skip_unchanged(
        self, loads: list[FileLoad], unchanged: dict[int, manifest.Entry]
    ) -> dict[int, FileSummary]:
        """The unchanged files skipped (and tidied, as after_load says), their history
        rows written in one batch: ``id(load)`` → its summary."""
        done = {id(loads[i]): loads[i].skip_unchanged(entry) for i, entry in unchanged.items()}
        if done and not self.dry_run:
            try:
                with self.sessions.connection(self.history_dsn) as conn, conn.transaction():
                    history.files_done(conn, self.run_id, list(done.values()))
            except (psycopg.Error, CsvpgError) as exc:
                log.warning("cannot record the skipped files in the run history: %s", exc)
        return done

    def _load_all(
        self, todo: list[FileLoad], done: dict[int, FileSummary], loads: list[FileLoad]
    ) -> list[FileSummary]:
        """``todo`` loaded in parallel; every file's summary in the listing's order."""
        workers = max(1, min(self.budget.connections, len(todo) or 1))
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="csvpg-load") as pool:
            first = list(pool.map(lambda load: load(), todo))
            # Files another worker held: once every other file is done, this run waits
            # for that worker; a file it did not load (it failed, or died) loads here.
            held = [load for load, summary in zip(todo, first, strict=True) if summary is None]
            later = iter(pool.map(lambda load: load(wait=True), held))
        loaded = {
            id(load): summary or next(later) for load, summary in zip(todo, first, strict=True)
        }
        return [done.get(id(load)) or loaded[id(load)] for load in loads]

    def _history_started(self) -> float | None:
        """The run's row in the history, held while the run lives; returns the job's
        write time per byte so far (:func:`history.write_per_byte`)."""
        with self.sessions.connection(self.history_dsn, connect_timeout=10) as conn:
            try:
                if self.separate_history:
                    ensure_schema(conn)
                pending.settle(conn)
                # Held while the run lives: a run whose lock is free was abandoned.
                # Taken before the row exists, so no reader ever finds it unheld.
                self._alive.hold(self.history_dsn, history=True)
                if self.separate_history:
                    self._alive.hold(self.dsn)
                history.run_started(
                    conn,
                    self.run_id,
                    self.job.name,
                    self.job.digest,
                    mask_dsn(self.dsn),
                    replay_of=self.replay.of_run if self.replay else None,
                )
                self._started_row = True
                return history.write_per_byte(conn, self.job.name)
            except psycopg.Error as exc:
                raise _schema_error(self.history_dsn, exc) from exc

    def _connections(self, free: int) -> int:
        """The run's connection budget: ``[run] workers``, or one per core (up to 4);
        never more than the server (and the role) allow."""
        wanted = self.job.run.workers
        if not wanted:
            return max(1, min(os.cpu_count() or 1, 4, free))
        if wanted > free:
            self.emit(
                ev.Warned(
                    self.run_id,
                    f"[run] workers = {wanted}, but the server allows {free} more "
                    f"connection{'s' if free != 1 else ''} for this user: using "
                    f"{max(1, free)}",
                )
            )
            return max(1, free)
        return int(wanted)

    def finish(self, results: list[FileSummary], seconds: float) -> RunSummary:
        """The run's end from its files' outcomes: its status, history, webhooks and
        JobFinished (a queued run's finisher calls it with the files its workers loaded)."""
        loaded = sum(r.status == "loaded" for r in results)
        failed = sum(r.status == "failed" for r in results)
        status = "failed" if failed and not loaded else "partial" if failed else "succeeded"
        if self.cancelled:
            status = "cancelled"
        summary = RunSummary(
            run_id=self.run_id,
            job=self.job.name,
            database=mask_dsn(self.dsn),
            status=status,
            files=results,
            seconds=seconds,
            dry_run=self.dry_run,
        )
        if not self.dry_run:
            # The files' kept connections close first, but one: a role's connection limit
            # counts them, and the end needs one (it waited out its retries at such a limit).
            self.sessions.close(keeping=self.history_dsn)
            self._record_end(summary)
        self.sessions.close()  # (a queued run's finisher ends here, not in run())
        self.emit(
            ev.JobFinished(
                run_id=self.run_id,
                job=self.job.name,
                status=status,
                files_loaded=loaded,
                files_failed=failed,
                files_skipped=sum(r.status == "skipped" for r in results),
                rows_read=summary.total("rows_read"),
                inserted=summary.total("inserted"),
                updated=summary.total("updated"),
                collapsed=summary.total("collapsed"),
                unchanged=summary.total("unchanged"),
                rejected=summary.total("rejected"),
                seconds=summary.seconds,
            )
        )
        return summary

    def _record_end(self, summary: RunSummary) -> None:
        """The run's end in its history, tried as often as a file's load; a history still
        away after that keeps it in a file for the next run (csvpg.engine.pending): the run
        never stays 'running' there."""
        summary.notifications = self._notify(summary)
        values = history.end_values(summary)
        retries, delay = self.job.run.max_retries, self.job.run.retry_delay
        for attempt in itertools.count():
            try:
                with self.sessions.connection(self.history_dsn, connect_timeout=10) as conn:
                    history.record_end(conn, self.run_id, values)
                    if summary.notifications:
                        history.notified(conn, self.run_id, summary.notifications)
                    if self.job.history.keep_days > 0:
                        history.prune(conn, self.job.name, self.job.history.keep_days)
                return
            except (psycopg.Error, CsvpgError) as exc:
                error = exc.message if isinstance(exc, CsvpgError) else str(exc).strip()
                if attempt >= retries or not is_transient(exc):
                    kept = pending.save(self.run_id, values)
                    later = f"; the next run writes it (kept in {kept})" if kept else ""
                    self.emit(
                        ev.Warned(
                            self.run_id,
                            f"cannot record the run's end in the history: {error}{later}",
                        )
                    )
                    return
                wait = backoff(attempt, delay)
                self.emit(
                    ev.Warned(
                        self.run_id,
                        f"cannot record the run's end in the history: {error}; "
                        f"retry {attempt + 1} of {retries} in {wait:.1f} s",
                    )
                )
                time.sleep(wait)

    def _notify(self, summary: RunSummary, error: CsvpgError | None = None) -> list[dict[str, Any]]:
        """POST the summary to every webhook; a failing one is recorded, never raised."""
        if not (self.job.notify or self.callbacks):
            return []
        from csvpg.notify import Webhook, deliver  # (HTTP's modules: only for a webhook)

        hooks = [Webhook(**entry) for entry in self.job.notify]
        hooks += [Webhook(url=url) for url in self.callbacks]
        if not hooks:
            return []
        data = summary.to_dict()
        if error is not None:
            data["error"], data["hint"] = error.message, error.hint
        deliveries = [deliver(hook, data).to_dict() for hook in hooks]
        for d in deliveries:
            if d["status"] == "failed":
                self.emit(
                    ev.Warned(
                        self.run_id,
                        f"webhook {d['url']} failed after {d['attempts']} tries: {d['error']}",
                    )
                )
        return deliveries


def _schema_error(dsn: str, exc: psycopg.Error) -> DatabaseError:
    return DatabaseError(
        f"cannot prepare csvpg's tables (schema csvpg) at {mask_dsn(dsn)}: "
        f"{exc.diag.message_primary or exc}",
        hint="the database user needs CREATE on the database, or an administrator "
        "can create the schema csvpg for it",
        sqlstate=exc.sqlstate,
    )


def _reap_scratch(conn: psycopg.Connection[Any]) -> None:
    """Drop the scratch schemas of split files whose run died (csvpg.pg.split). Every
    run holds its lock in the target database, whichever its history database is, and
    takes it before it makes any scratch: this run has none yet."""
    with conn.transaction():
        scratch = split.scratch_schemas(conn)
    for name, run_id in scratch.items():
        with conn.transaction():
            dead = not history.alive(conn, run_id)
        if dead:
            split.drop(conn, name)


def _total_size(files: list[FilePlan]) -> int | None:
    """The bytes of all ``files``, or None when a source did not say one's size."""
    sizes = [fp.ref.size for fp in files]
    return None if any(size is None for size in sizes) else sum(s or 0 for s in sizes)
