"""What ``csvpg worker`` does with each task: load one file of a queued run, end a run
whose files are done, send stalled jobs back to the queue, queue a scheduled run.

A file's task is safe to run twice: its outcome is in ``csvpg.run_files`` (a task that
finds it there loads nothing) and its data is in the manifest under the run's id (a task
that ran on while another took its place waits for that one's transaction, then finds
the file loaded by its run: csvpg.engine.fileload.AlreadyLoaded).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pluggy
from procrastinate import App, JobContext, RetryStrategy, exceptions

from csvpg.engine.fileload import FileLoad
from csvpg.engine.housekeeping import record, tidy
from csvpg.engine.run import Engine
from csvpg.errors import CsvpgError
from csvpg.pg import history, queue
from csvpg.pg.connect import APPLICATION, connect
from csvpg.spec import Job, job_from_text
from csvpg.summary import FileSummary
from csvpg.worker.app import FINISH_RUN, LOAD_FILE
from csvpg.worker.enqueue import NOT_STARTED, finish_when_done, run_args, task_engine

#: How often a loading file's task asks whether its run was cancelled.
ABORT_CHECK = 0.5
#: Tries of a file's task after its first (a failure outside the file's transaction).
RETRIES = 3

Say = Callable[..., None]


class Tasks:
    """The task bodies of one worker process: its queue database, plugins and log."""

    def __init__(self, app: App, dsn: str, pm: pluggy.PluginManager, say: Say) -> None:
        self.app = app
        self.dsn = dsn
        self.pm = pm
        self.say = say

    def register(self) -> None:
        retry = RetryStrategy(max_attempts=RETRIES, wait=1, exponential_wait=2)
        self.app.task(name=LOAD_FILE, pass_context=True, retry=retry)(self.load_file)
        self.app.task(name=FINISH_RUN, pass_context=True)(self.finish_run)

    def _job(self, job_path: str, job_text: str, env_allow: list[str] | None = None) -> Job:
        """The job as its run queued it; one sent over HTTP fills in only the ``${VAR}``
        its server allows (``csvpg serve --env-allow``)."""
        return job_from_text(job_text, Path(job_path), allow_env=env_allow)

    # -- one file ------------------------------------------------------------------

    def load_file(
        self,
        context: JobContext,
        *,
        run_id: str,
        job_path: str,
        job_text: str,
        url: str,
        force: bool = False,
        callbacks: list[str] | None = None,
        env_allow: list[str] | None = None,
    ) -> str:
        """Load ``url`` for the run (once), then queue the run's end if it was the last.
        A task that fails outside the file's own transaction (the history away longer
        than its retries, a bug) is tried again, :data:`RETRIES` times, then the file
        is recorded as failed and the run goes on to its end."""
        # Its sessions by its name: ended, should its worker stall (process.watch_stalled).
        named = APPLICATION.set(queue.application_of(context.job.id or 0))
        try:
            return self._load_task(context, run_id, job_path, job_text, url, force, env_allow)
        except exceptions.JobAborted:
            raise
        except Exception as exc:
            if context.job.attempts < RETRIES:
                self.say("will retry", run_id=run_id, file=url, error=f"{exc}".splitlines()[0])
                raise
            return self._gave_up(context, exc)
        finally:
            APPLICATION.reset(named)

    def _load_task(self, context: JobContext, *task: Any) -> str:
        """The file's task, its arguments in ``load_file``'s order."""
        run_id, job_path, job_text, url, force, env_allow = task
        job = self._job(job_path, job_text, env_allow)
        engine = task_engine(job, self.dsn, run_id, self.pm, force)
        self.say("took", run_id=run_id, job=job.name, file=url, task=context.job.id)
        with connect(engine.history_dsn, connect_timeout=10) as conn:
            done = queue.file_recorded(conn, run_id, url)
            run = queue.queued_run(conn, run_id)
        if done is not None:
            outcome = f"{done} already (this task ran before)" + self._tidy_due(engine, url)
        elif run is None or run.finished:
            outcome = "not loaded: the run has ended"
        elif run.status == "cancelling":
            outcome = self._record(engine, FileSummary(url, None, "cancelled", error=NOT_STARTED))
        else:
            with connect(engine.history_dsn, connect_timeout=10) as conn:
                queue.mark_running(conn, run_id)
            outcome = self._load(engine, url, context)
        self.say("finished", run_id=run_id, job=job.name, file=url, outcome=outcome)
        finish_when_done(
            self.app, engine.history_dsn, run_args(context.job.task_kwargs), context.job.queue
        )
        if engine.cancelled and context.should_abort():
            raise exceptions.JobAborted()
        return outcome

    def _gave_up(self, context: JobContext, exc: Exception) -> str:
        """The task's last try failed: its file is failed in the run, which goes on."""
        args = context.job.task_kwargs
        run_id, url = str(args["run_id"]), str(args["url"])
        try:
            job = self._job(str(args["job_path"]), str(args["job_text"]), args.get("env_allow"))  # type: ignore[arg-type]
            where = task_engine(job, self.dsn, run_id, self.pm).history_dsn
        except CsvpgError:
            where = self.dsn
        error = exc.message if isinstance(exc, CsvpgError) else f"{type(exc).__name__}: {exc}"
        failed = FileSummary(
            url,
            None,
            "failed",
            error=error,
            hint=f"its task failed {RETRIES + 1} times; see the worker's log, then run the job"
            " again",
        )
        with connect(where, connect_timeout=10) as conn, conn.transaction():
            if queue.file_recorded(conn, run_id, url) is None:
                history.file_done(conn, run_id, failed)
        self.say("gave up", run_id=run_id, file=url, error=error)
        finish_when_done(self.app, where, run_args(args), context.job.queue)
        return "failed"

    def _load(self, engine: Engine, url: str, context: JobContext) -> str:
        try:
            plan = engine.plan()
        except CsvpgError as exc:
            failed = FileSummary(url, None, "failed", error=exc.message, hint=exc.hint)
            return self._record(engine, failed)
        try:
            fp = next((f for f in plan.files if f.ref.url == url), None)
            if fp is None:
                gone = FileSummary(
                    url,
                    None,
                    "failed",
                    error=f"{url}: the source no longer lists this file",
                    hint="it was moved or removed after the run was queued; run the job again",
                )
                return self._record(engine, gone)
            engine.budget.start(1, 1)
            ctx = engine.context(has_manifest=True)
            load = FileLoad(ctx.for_file(plan.source, fp))
            with _aborts(context, engine):
                # Procrastinate runs one task of a job's file at a time (its lock); the
                # file's claim may still be held by a transaction of a worker cut off
                # (its task retried here) or of a plain csvpg run of the job: wait for
                # it, then load the file only if it did not.
                summary = load() or load(wait=True)
        finally:
            plan.source.close()
        return summary.status if summary else "held"

    def _tidy_due(self, engine: Engine, url: str) -> str:
        """A file its task loaded before (the worker died after the commit, before the
        file's ``after_load``): moved or deleted now, and recorded, once."""
        if engine.job.source.after_load == "keep":
            return ""
        with connect(engine.history_dsn, connect_timeout=10) as conn:
            if not queue.after_load_due(conn, engine.run_id, url):
                return ""
        plan = engine.plan()
        try:
            fp = next((f for f in plan.files if f.ref.url == url), None)
            if fp is None:  # moved or deleted already, before the worker died
                return ""
            ctx = engine.context(has_manifest=True).for_file(plan.source, fp)
            done = tidy(ctx, fp.ref)
            if done is None:
                return ""
            record(ctx, url, done)
        finally:
            plan.source.close()
        return f"; after_load {done['action']}" + (f" to {done['to']}" if "to" in done else "")

    def _record(self, engine: Engine, summary: FileSummary) -> str:
        with connect(engine.history_dsn, connect_timeout=10) as conn, conn.transaction():
            history.file_done(conn, engine.run_id, summary)
        return summary.status

    # -- the run's end ---------------------------------------------------------------

    def finish_run(
        self,
        context: JobContext,
        *,
        run_id: str,
        job_path: str,
        job_text: str,
        callbacks: list[str] | None = None,
        env_allow: list[str] | None = None,
    ) -> str:
        """The run's end, from its files' rows: status, totals, webhooks (the job's and
        the run's own), pruning."""
        job = self._job(job_path, job_text, env_allow)
        engine = task_engine(job, self.dsn, run_id, self.pm, callbacks=callbacks or ())
        with connect(engine.history_dsn, connect_timeout=10) as conn:
            run = queue.queued_run(conn, run_id)
            files = history.files(conn, run_id) if run else []
        if run is None or run.finished:
            return "ended already"
        if run.status == "cancelling":
            engine.cancel()
        results = [_summary(f) for f in files]
        seconds = (datetime.now(UTC) - run.started_at).total_seconds()
        summary = engine.finish(results, seconds)
        self.say("run ended", run_id=run_id, job=job.name, status=summary.status)
        return summary.status


def _summary(f: history.FileRow) -> FileSummary:
    return FileSummary(
        f.file,
        f.table,
        f.status,
        f.rows_read,
        f.inserted,
        f.updated,
        f.collapsed,
        f.rejected,
        f.seconds or 0.0,
        error=f.error,
        hint=f.hint,
        details=f.details,
        unchanged=f.unchanged,
    )


class _aborts:
    """While a file loads: a cancel of its run (Procrastinate's abort request) cancels
    the engine, whose statement in flight is cancelled on the server."""

    def __init__(self, context: JobContext, engine: Engine) -> None:
        self.context, self.engine = context, engine
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="csvpg-abort", daemon=True)

    def _watch(self) -> None:
        while not self._done.wait(ABORT_CHECK):
            if self.context.should_abort():
                self.engine.cancel()
                return

    def __enter__(self) -> None:
        self._thread.start()

    def __exit__(self, *exc: Any) -> None:
        self._done.set()
        self._thread.join()
