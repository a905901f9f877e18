"""``csvpg worker``: one process taking csvpg's tasks from the queue database.

It says what it takes and finishes on stdout (a line each, or a JSON object each with
``--log-format json``), with each file's outcome as ``csvpg run`` prints it. SIGTERM
(or Ctrl-C) stops it gracefully: it takes no new task and exits once the files it is
loading are done. A worker killed outright stops sending heartbeats; once they are
``3 × --heartbeat`` seconds old, another worker sends its tasks back to the queue (the
file's transaction rolled back with the dead connection, so the file loads once).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import sys
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

import psycopg
from procrastinate import App
from procrastinate import worker as procrastinate_worker

from csvpg.errors import CsvpgError
from csvpg.pg import queue
from csvpg.pg.connect import connect
from csvpg.plugins import get_plugin_manager
from csvpg.reporters import JsonLinesReporter, LineReporter
from csvpg.worker import schedule
from csvpg.worker.app import make_app, prepare_queue
from csvpg.worker.tasks import Tasks


class WorkerLog:
    """The worker's own lines: ``csvpg worker: took … run=… file=…``, or JSON objects."""

    def __init__(self, out: TextIO, log_format: str = "text") -> None:
        self.out = out
        self.json = log_format == "json"

    def __call__(self, what: str, **fields: Any) -> None:
        at = datetime.now(UTC).isoformat(timespec="milliseconds")
        if self.json:
            event = {"event": f"worker.{what.replace(' ', '_')}", "at": at, **fields}
            line = json.dumps(event, default=str)
        else:
            words = [what, *(f"{k}={_plain(v)}" for k, v in fields.items())]
            line = f"{at} worker: " + " ".join(words)
        print(line, file=self.out, flush=True)


def _plain(value: Any) -> str:
    if isinstance(value, datetime):
        return value.isoformat(timespec="seconds")
    return str(value)


@dataclass
class WorkerOptions:
    dsn: str
    queues: list[str]
    name: str = field(default_factory=lambda: f"{socket.gethostname()}-{os.getpid()}")
    concurrency: int = 1
    jobs: str | None = None
    log_format: str = "text"
    #: Seconds between heartbeats; a worker silent for three is taken for dead.
    heartbeat: float = 10.0

    @property
    def stalled_after(self) -> float:
        return 3 * self.heartbeat


def run_worker(options: WorkerOptions, out: TextIO = sys.stdout) -> int:
    """Take tasks until SIGTERM or Ctrl-C; returns the exit code."""
    say = WorkerLog(out, options.log_format)
    reporter = JsonLinesReporter(out) if options.log_format == "json" else LineReporter(out)
    app = build_app(options, [reporter], say)
    if options.jobs:
        found = schedule.register(app, Path(options.jobs), options.dsn, options.queues[0], say)
        if not found:
            say("no scheduled job", jobs=options.jobs)
    asyncio.run(_serve(app, options, say))
    return 0


def build_app(options: WorkerOptions, plugins: list[object], say: WorkerLog) -> App:
    """The queue brought up to date, and an app with csvpg's task bodies (their events
    to ``plugins``) and the stalled-jobs check."""
    prepare_queue(options.dsn)
    app = make_app(options.dsn, pool_size=options.concurrency + 4)
    Tasks(app, options.dsn, get_plugin_manager(plugins), say).register()
    return app


async def watch_stalled(app: App, options: WorkerOptions, say: Any) -> None:
    """Every heartbeat, beside the worker's tasks (not in a task slot of its own: when
    every worker's slots wait on a lock that a cut-off worker's open COPY holds, the
    check must still run), the jobs of workers whose heartbeat stopped go back to the
    queue, their sessions ended first. One worker at a time does it (an advisory lock),
    so no second one ends the sessions of a task already retried and taken again."""
    home = options.queues[0]
    while True:
        await asyncio.sleep(max(1.0, options.heartbeat))
        try:
            await _retry_stalled(app, options, home, say)
        except (psycopg.Error, CsvpgError, OSError) as exc:  # the database away: next tick
            say("stalled-jobs check failed", reason=str(exc).splitlines()[0])


async def _retry_stalled(app: App, options: WorkerOptions, home: str, say: Any) -> None:
    lock = await asyncio.to_thread(queue.StalledCheck.take, options.dsn, home)
    if lock is None:
        return  # another worker checks now
    try:
        stalled = list(
            await app.job_manager.get_stalled_jobs(
                queue=home, seconds_since_heartbeat=options.stalled_after
            )
        )
        for job in stalled:
            if job.id is not None:
                ended = await asyncio.to_thread(_end_sessions, options.dsn, job.id)
                if ended:
                    say("ended sessions", task=job.id, sessions=ended)
            try:
                await app.job_manager.retry_job(job)
            except Exception as exc:  # it finished meanwhile
                say("not retried", task=job.id, reason=str(exc).splitlines()[0])
                continue
            say("retried stalled", task=job.id, worker=job.worker_id, args=_brief(job.task_kwargs))
    finally:
        await asyncio.to_thread(lock.close)


def _end_sessions(dsn: str, task_id: int) -> int:
    """The stalled task's sessions ended, before it is retried elsewhere."""
    try:
        with connect(dsn, connect_timeout=10) as conn:
            return queue.end_sessions(conn, task_id)
    except (psycopg.Error, CsvpgError):
        return 0


def _brief(args: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in args.items() if k in ("run_id", "url", "job_path")}


def procrastinate_worker_of(app: App, options: WorkerOptions) -> procrastinate_worker.Worker:
    return procrastinate_worker.Worker(
        app,
        queues=options.queues,
        name=options.name,
        concurrency=options.concurrency,
        install_signal_handlers=False,
        update_heartbeat_interval=options.heartbeat,
        stalled_worker_timeout=options.stalled_after,
        abort_job_polling_interval=1.0,
        fetch_job_polling_interval=1.0,
        delete_jobs="successful",
    )


async def _serve(app: App, options: WorkerOptions, say: WorkerLog) -> None:
    async with app.open_async():
        worker = procrastinate_worker_of(app, options)
        loop = asyncio.get_running_loop()
        caught: list[int] = []

        def stop(signum: int) -> None:
            if caught:
                say("stopping now", signal=signal.Signals(signum).name)
                os._exit(128 + signum)  # loading files roll back; their tasks are retried
            caught.append(signum)
            say("stopping", signal=signal.Signals(signum).name, waiting_for="files in flight")
            worker.stop()  # type: ignore[no-untyped-call]

        for s in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(s, stop, s)
        await run_registered(worker, options, say)


async def run_registered(
    worker: procrastinate_worker.Worker, options: WorkerOptions, say: WorkerLog
) -> None:
    """The worker, until it is stopped, with csvpg's row of it (``csvpg workers``) and
    the stalled-jobs check (:func:`watch_stalled`)."""
    registered = asyncio.create_task(_registered(worker, options, say))
    watching = asyncio.create_task(watch_stalled(worker.app, options, say))
    await worker.run()  # type: ignore[no-untyped-call]
    registered.cancel()
    watching.cancel()
    say("stopped", name=options.name)


async def _registered(
    worker: procrastinate_worker.Worker, options: WorkerOptions, say: WorkerLog
) -> None:
    """Once Procrastinate has the worker's id: csvpg's row of it (``csvpg workers``)."""
    while worker.worker_id is None:
        await asyncio.sleep(0.05)
    worker_id = worker.worker_id

    def write() -> None:
        with connect(options.dsn, connect_timeout=10) as conn:
            queue.worker_started(
                conn,
                worker_id,
                name=options.name,
                host=socket.gethostname(),
                pid=os.getpid(),
                queues=",".join(options.queues),
            )

    await asyncio.to_thread(write)
    say("started", name=options.name, worker_id=worker_id, queues=",".join(options.queues))
