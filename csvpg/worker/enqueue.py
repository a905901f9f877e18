"""Queue a run (:func:`enqueue_run`), end it once its files are done
(:func:`finish_when_done`), and cancel it (:func:`cancel_run`).

The job travels as its file's text, before ``${VAR}`` substitution: secrets stay out of
the queue's tables, and each worker takes them from its own environment. Its data files
must be reachable from every worker (a shared folder, HTTP, SFTP, S3 …).

The target database of a queued run is the job's ``[database] dsn``; a job without one
loads into the queue database itself.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pluggy
import psycopg
from procrastinate import App, exceptions
from procrastinate.jobs import Job as QueueTask

from csvpg.engine.plan import Plan
from csvpg.engine.run import Engine
from csvpg.errors import CsvpgError, DatabaseError, SpecError
from csvpg.pg import history, queue
from csvpg.pg.connect import connect, mask_dsn
from csvpg.pg.schema import ensure_schema
from csvpg.plugins import get_plugin_manager
from csvpg.spec import Job
from csvpg.summary import FileSummary
from csvpg.worker.app import DEFAULT_QUEUE, FINISH_RUN, LOAD_FILE, defer, opened, prepare_queue

log = logging.getLogger(__name__)

#: Why a file whose task was cancelled before it started did not load.
NOT_STARTED = "not started: the run was cancelled"


def queue_dsn(job: Job, dsn: str | None) -> str:
    """``--dsn``, else the job's ``[database] dsn``, else the embedded server."""
    if dsn:
        return dsn
    if job.database.dsn:
        return str(job.database.dsn)
    from csvpg import embedded

    return embedded.start()


def task_engine(
    job: Job,
    dsn: str,
    run_id: str | None,
    pm: pluggy.PluginManager | None = None,
    force: bool = False,
    callbacks: Sequence[str] = (),
) -> Engine:
    """An engine of the queued run ``run_id`` (None: a new run): the job's database,
    or the queue's (``dsn``)."""
    target = None if job.database.dsn else dsn
    return Engine(
        job, pm or get_plugin_manager(), target, force=force, run_id=run_id, callbacks=callbacks
    )


@dataclass(frozen=True)
class Carried:
    """What a run's tasks carry besides the job: ``text``, the job as written (default:
    its file's); ``callbacks``, the run's own webhooks (``--callback-url``);
    ``env_allow``, for a job sent over HTTP, the only ``${VAR}`` a worker may fill in."""

    text: str | None = None
    callbacks: tuple[str, ...] = ()
    env_allow: tuple[str, ...] | None = None


#: The arguments of a run that every one of its tasks has (the file's task adds more).
RUN_ARGS = ("run_id", "job_path", "job_text", "callbacks", "env_allow")


def job_args(run_id: str, job: Job, carried: Carried = Carried()) -> dict[str, Any]:
    """What every task of the run carries: the run and the job file as written."""
    if job.path is None and carried.text is None:
        raise SpecError(
            f"job {job.name!r} has no file: a queued run carries its job file to the workers",
            hint="write the job to a TOML file and queue that (csvpg run job.toml --queue)",
        )
    path = job.path or Path.cwd() / f"{job.name}.toml"  # relative paths: from here
    return {
        "run_id": run_id,
        "job_path": str(path),
        "job_text": carried.text if carried.text is not None else path.read_text("utf-8"),
        "callbacks": list(carried.callbacks),
        "env_allow": None if carried.env_allow is None else list(carried.env_allow),
    }


def run_args(args: dict[str, Any]) -> dict[str, Any]:
    """The run's own arguments out of one of its tasks' (older tasks lack some)."""
    return {k: args[k] for k in RUN_ARGS if k in args}


def enqueue_run(
    job: Job,
    dsn: str | None = None,
    *,
    queue_name: str = DEFAULT_QUEUE,
    force: bool = False,
    scheduled_for: datetime | None = None,
    pm: pluggy.PluginManager | None = None,
    run_id: str | None = None,
    carried: Carried = Carried(),
) -> str:
    """Queue a run of ``job`` (a job read from its file): one task a file, and a
    finishing task once they are done; returns the run's id at once. ``dsn`` is the
    queue database (default: the job's, else the embedded server). The run is in
    ``csvpg.runs`` as ``queued`` until a worker takes its first file. A broken job (or
    source) raises its CsvpgError and queues nothing, its webhooks told and its run
    failed in the history. ``csvpg serve`` calls this, with the ``run_id`` it chose."""
    where = queue_dsn(job, dsn)
    engine = task_engine(job, where, run_id, pm, force, carried.callbacks)
    args = job_args(engine.run_id, job, carried)
    try:
        plan = engine.plan()
    except CsvpgError as exc:
        engine.refused(exc)
        raise
    plan.source.close()
    prepare_queue(where)
    with connect(engine.dsn, connect_timeout=10) as conn:
        ensure_schema(conn)  # the target's manifest, which every file's load reads
    _record_queued(engine, plan, scheduled_for)
    files = [{**args, "url": fp.ref.url, "force": force} for fp in plan.files]
    try:
        with opened(where) as app:
            if not _defer_files(app, engine, files, queue_name):
                finish_when_done(app, engine.history_dsn, args, queue_name)
    except (psycopg.Error, exceptions.ConnectorException) as exc:
        # The run's row is there already: it ends failed rather than stay 'queued'.
        error = DatabaseError(
            f"cannot queue the files of run {engine.run_id} at {mask_dsn(where)}: {exc}",
            hint="check that the queue database is reachable, then queue the job again",
        )
        engine.refused(error)
        raise error from exc
    log.info(
        "queued run %s of job %s: %d files on queue %s",
        engine.run_id,
        job.name,
        len(files),
        queue_name,
    )
    return engine.run_id


def file_lock(job: str, url: str) -> str:
    """One task of a job's file at a time, and one waiting (Procrastinate's lock and
    queueing lock): a second run of the job queued meanwhile does not queue that file
    again, and two of its tasks never load it side by side."""
    return f"csvpg.file:{job}:{url}"


def _defer_files(app: App, engine: Engine, files: list[dict[str, Any]], queue_name: str) -> int:
    """The file tasks queued (at once when none is waiting already); a file another run
    of the job has queued and not started is recorded as skipped. How many were queued."""
    tasks = [
        QueueTask(
            queue=queue_name,
            lock=file_lock(engine.job.name, f["url"]),
            queueing_lock=file_lock(engine.job.name, f["url"]),
            task_name=LOAD_FILE,
            task_kwargs=f,
        )
        for f in files
    ]
    try:
        app.job_manager.batch_defer_jobs(tasks)
        return len(tasks)
    except exceptions.AlreadyEnqueued:
        pass  # one by one, then: the batch was refused whole
    queued = 0
    for task in tasks:
        try:
            app.job_manager.defer_job(task)
            queued += 1
        except exceptions.AlreadyEnqueued:
            url = task.task_kwargs["url"]
            with connect(engine.history_dsn, connect_timeout=10) as conn:
                other = queue.waiting_run(conn, str(task.queueing_lock))
            why = f"already queued by run {other or 'another'} of this job, which loads it"
            _record(engine, FileSummary(str(url), None, "skipped", error=why))
    return queued


def _record(engine: Engine, summary: FileSummary) -> None:
    with connect(engine.history_dsn, connect_timeout=10) as conn, conn.transaction():
        history.file_done(conn, engine.run_id, summary)


def _record_queued(engine: Engine, plan: Plan, scheduled_for: datetime | None) -> None:
    """The run's row (``queued``, with its number of files) and its skipped files."""
    job = engine.job
    with connect(engine.history_dsn, connect_timeout=10) as conn:
        ensure_schema(conn)
        queue.run_queued(
            conn,
            engine.run_id,
            job=job.name,
            digest=job.digest,
            database=mask_dsn(engine.dsn),
            files=len(plan.files) + len(plan.skipped),
            scheduled_for=scheduled_for,
        )
        for ref, reason in plan.skipped:
            skipped = FileSummary(ref.url, None, "skipped", error=reason)
            with conn.transaction():
                history.file_done(conn, engine.run_id, skipped)


def finish_when_done(app: App, history_dsn: str, args: dict[str, Any], queue_name: str) -> bool:
    """Queue the run's finishing task when every file has its row in the history
    (called after each file, and by a cancel); at most one waits (its queueing lock),
    and it does nothing for a run that has ended. Whether the run's files are done."""
    with connect(history_dsn, connect_timeout=10) as conn:
        run = queue.queued_run(conn, args["run_id"])
    if run is None or run.finished or not run.files_done:
        return False
    lock = f"csvpg.finish:{args['run_id']}"
    # Another file's task may have queued it a moment ago.
    with contextlib.suppress(exceptions.AlreadyEnqueued):
        defer(app, FINISH_RUN, queue_name, queueing_lock=lock, lock=lock).defer(**args)
    return True


def cancel_run(run_id: str, dsn: str) -> int:
    """Cancel a queued run (its history and queue in ``dsn``): files not started never
    will, files loading roll back within seconds, then the run ends ``cancelled``.
    Returns how many of its tasks were stopped."""
    with connect(dsn, connect_timeout=10) as conn:
        run = history.one_run(conn, run_id)
        if not queue.request_cancel(conn, run.id):
            raise CsvpgError(
                f"run {run.id} is {run.status}: only a queued run that has not ended is "
                "cancelled here",
                hint="a run started without --queue stops with Ctrl-C (or SIGTERM) in its terminal",
            )
        jobs = queue.run_jobs(conn, run.id)
    stopped = 0
    with opened(dsn) as app:
        for job in jobs:
            if not app.job_manager.cancel_job_by_id(job.id, abort=True):
                continue
            stopped += 1
            if job.task == LOAD_FILE and job.status == "todo":
                _not_started(dsn, run.id, job.args["url"])
        if jobs:  # the run's own arguments, as each of its tasks has them
            finish_when_done(app, dsn, run_args(jobs[0].args), jobs[0].queue)
    return stopped


def _not_started(dsn: str, run_id: str, url: str) -> None:
    with connect(dsn, connect_timeout=10) as conn, conn.transaction():
        if queue.file_recorded(conn, run_id, url) is None:
            history.file_done(conn, run_id, FileSummary(url, None, "cancelled", error=NOT_STARTED))
