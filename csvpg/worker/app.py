"""The Procrastinate app of a queue database: its connector (search_path on the schema
``csvpg_queue``, where :func:`csvpg.pg.schema.ensure_queue_schema` installs
Procrastinate's tables) and the names of csvpg's tasks. A process that only queues
(``csvpg run --queue``, ``csvpg serve``) defers by these names; ``csvpg worker``
registers their bodies (:mod:`csvpg.worker.tasks`)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from procrastinate import App, PsycopgConnector

from csvpg.pg.connect import connect
from csvpg.pg.queue import SCHEMA
from csvpg.pg.schema import ensure_queue_schema

#: The queue ``csvpg run --queue`` and ``csvpg worker`` use when none is named.
DEFAULT_QUEUE = "csvpg"

#: One task a file, and the one that ends the run when its files are done.
LOAD_FILE = "csvpg.load_file"
FINISH_RUN = "csvpg.finish_run"
#: A ``[schedule]`` job's tick: queue a run of it (a periodic task).
SCHEDULED_RUN = "csvpg.scheduled_run"

#: Procrastinate takes higher priorities first: schedule ticks do not wait behind a
#: run's thousand files (which have priority 0).
PRIORITY = 10


def make_app(dsn: str, *, pool_size: int = 4) -> App:
    """An app on the queue database ``dsn``, not yet opened."""
    connector = PsycopgConnector(
        conninfo=dsn,
        kwargs={"options": f"-c search_path={SCHEMA}", "application_name": "csvpg-queue"},
        min_size=1,
        max_size=pool_size,
    )
    return App(connector=connector)


def prepare_queue(dsn: str) -> None:
    """csvpg's tables and Procrastinate's, brought up to date in the queue database."""
    with connect(dsn, connect_timeout=10) as conn:
        ensure_queue_schema(conn)


@contextmanager
def opened(dsn: str) -> Iterator[App]:
    """The app, open for deferring and reading jobs from this (synchronous) process."""
    app = make_app(dsn, pool_size=2)
    with app.open():
        yield app


def defer(app: App, task: str, queue: str, **options: Any) -> Any:
    """A job deferrer for one of csvpg's tasks by name (a worker has its body)."""
    return app.configure_task(task, queue=queue, **options)
