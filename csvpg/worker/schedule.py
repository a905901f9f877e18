"""``[schedule]`` jobs: each worker started with ``--jobs DIR`` registers a Procrastinate
periodic task per scheduled job there; on a tick, every such worker tries to queue the
tick's task, and the database takes one (Procrastinate's ``procrastinate_periodic_defers``
holds one row a task, job and tick). The task queues a run of the job unless one is still
going: at most one run of a job at a time (the tick's task has a queueing lock, and a
lock that makes two ticks of one job take turns).

The cron is read on the job's ``timezone`` (a sixth field is seconds, as croniter has it).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import attr
from croniter import croniter
from procrastinate import App
from procrastinate.periodic import PeriodicTask

from csvpg.errors import CsvpgError
from csvpg.pg import queue
from csvpg.pg.connect import connect
from csvpg.pg.schema import ensure_schema
from csvpg.spec import Job, load_job
from csvpg.worker.app import PRIORITY, SCHEDULED_RUN
from csvpg.worker.enqueue import enqueue_run, task_engine
from csvpg.worker.tasks import Say


@attr.dataclass(frozen=True)
class ZonedPeriodicTask(PeriodicTask):  # type: ignore[type-arg]
    """Procrastinate's periodic task, its cron read on a time zone's clock."""

    timezone: str = "UTC"

    @functools.cached_property
    def croniter(self) -> croniter:
        return croniter(self.cron, datetime.now(ZoneInfo(self.timezone)))


@dataclass(frozen=True)
class Scheduled:
    """A job file with a ``[schedule]``, and when it runs next."""

    job: Job
    cron: str
    timezone: str

    def next_run(self, after: datetime | None = None) -> datetime:
        nxt = self.job.schedule.next_run(after)
        assert nxt is not None  # a Scheduled job has a cron
        return nxt


def scheduled_jobs(folder: str | Path) -> list[Scheduled]:
    """The jobs of ``folder`` (``*.toml``) that have a cron, by name. A job file that
    does not read is an error naming it: a schedule is not dropped without a word."""
    found = []
    for path in sorted(Path(folder).glob("*.toml")):
        job = load_job(path)
        if job.schedule.cron:
            found.append(Scheduled(job, job.schedule.cron, job.schedule.timezone))
    names = [s.job.name for s in found]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise CsvpgError(
            f"jobs in {folder} share the name {twice[0]!r}: a schedule is kept by job name",
            hint="give each scheduled job its own [job] name",
        )
    return sorted(found, key=lambda s: s.job.name)


def register(app: App, folder: str | Path, dsn: str, queue_name: str, say: Say) -> list[Scheduled]:
    """A periodic task for each scheduled job of ``folder``, on ``queue_name``."""
    found = scheduled_jobs(folder)

    def scheduled_run(timestamp: int, job_path: str) -> str:
        return run_tick(dsn, queue_name, say, timestamp, job_path)

    task = app.task(name=SCHEDULED_RUN)(scheduled_run)
    for s in found:
        lock = f"csvpg.schedule:{s.job.name}"
        app.periodic_registry.periodic_tasks[(task.name, s.job.name)] = ZonedPeriodicTask(
            task=task,
            cron=s.cron,
            periodic_id=s.job.name,
            configure_kwargs={
                "queue": queue_name,
                "lock": lock,
                "queueing_lock": lock,
                "priority": PRIORITY,
                "task_kwargs": {"job_path": str(Path(str(s.job.path)).resolve())},
            },
            timezone=s.timezone,
        )
        say("scheduled", job=s.job.name, cron=s.cron, timezone=s.timezone, next=s.next_run())
    return found


def run_tick(dsn: str, queue_name: str, say: Say, timestamp: int, job_path: str) -> str:
    """One tick of a job: a run queued, unless one is still going."""
    job = load_job(job_path)  # as the file is now: an edited job runs as edited
    tick = datetime.fromtimestamp(timestamp, UTC)
    engine = task_engine(job, dsn, None)
    with connect(engine.history_dsn, connect_timeout=10) as conn:
        ensure_schema(conn)
        going = queue.unfinished_runs(conn, job.name)
    if going:
        say("tick skipped", job=job.name, tick=tick, reason=f"run {going[0]} is still going")
        return f"skipped: run {going[0]} is still going"
    try:
        run_id = enqueue_run(job, dsn, queue_name=queue_name, scheduled_for=tick)
    except CsvpgError as exc:  # in the history as a failed run, and here
        say("tick failed", job=job.name, tick=tick, error=exc.message)
        return f"failed: {exc.message}"
    say("tick queued", job=job.name, tick=tick, run_id=run_id)
    return run_id
