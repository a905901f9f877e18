"""csvpg as a library, in three lines::

    import csvpg
    summary = csvpg.load("exports/*.csv", table="orders", mode="upsert", primary_key=["id"])
    handle = csvpg.start(csvpg.Job.from_toml("jobs/abc.toml"))  # .events() .cancel() .result()

The CLI, ``csvpg check``, ``csvpg serve`` and the dashboard are built on this module:
none of them makes an engine of its own.
"""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, TypedDict, Unpack

import pluggy

from csvpg import events as ev
from csvpg.engine.context import Replay, RunContext
from csvpg.engine.plan import Plan
from csvpg.engine.run import Engine
from csvpg.hookspecs import hookimpl
from csvpg.plugins import get_plugin_manager
from csvpg.spec import Job, job_from_dict, load_job
from csvpg.summary import RunSummary

__all__ = ["RunHandle", "RunOptions", "load", "prepare", "run", "start"]

#: Marks the end of a run in its event queue.
_END = object()


class _Events:
    """A plugin that queues the run's events for :meth:`RunHandle.events`."""

    def __init__(self, run_id: str) -> None:
        self.run_id = run_id
        self.queue: queue.Queue[object] = queue.Queue()

    @hookimpl
    def track_event(self, event: ev.Event) -> None:
        if event.run_id == self.run_id:
            self.queue.put(event)


class RunHandle:
    """One run of a job: prepared, then run in this thread (:meth:`run`) or in its own
    (:meth:`start`); cancelled from anywhere (:meth:`cancel`); its events as they come
    (:meth:`events`) and its summary (:meth:`result`)."""

    def __init__(
        self,
        job: Job,
        *,
        dsn: str | None = None,
        plugins: Iterable[object] = (),
        pm: pluggy.PluginManager | None = None,
        dry_run: bool = False,
        force: bool = False,
        callbacks: Iterable[str] = (),
        replay: Replay | None = None,
    ) -> None:
        if pm is None:
            pm = get_plugin_manager(plugins)
        else:
            for plugin in plugins:
                pm.register(plugin)
        self.job = job
        self.pm = pm
        self._engine = Engine(
            job, pm, dsn, dry_run=dry_run, force=force, callbacks=callbacks, replay=replay
        )
        self.run_id = self._engine.run_id
        self._events = _Events(self.run_id)
        pm.register(self._events)
        self._done = threading.Event()
        self._summary: RunSummary | None = None
        self._error: BaseException | None = None
        self._thread: threading.Thread | None = None

    # -- running ---------------------------------------------------------------------

    def run(self) -> RunSummary:
        """Run the job in this thread and return its summary; a run that cannot start
        (no files, no database) raises its :class:`~csvpg.errors.CsvpgError`."""
        try:
            self._summary = self._engine.run()
            return self._summary
        except BaseException as exc:
            self._error = exc
            raise
        finally:
            self.pm.unregister(self._events)
            self._events.queue.put(_END)
            self._done.set()

    def start(self) -> RunHandle:
        """Run the job in a thread of its own; returns at once."""
        if self._thread is not None:
            raise RuntimeError("this run was started already")

        def work() -> None:
            # Its error is kept for result(): a caller may never ask.
            with contextlib.suppress(BaseException):
                self.run()

        # A daemon: a second Ctrl-C ends the process without waiting for the run.
        self._thread = threading.Thread(target=work, name=f"csvpg-run-{self.run_id[:8]}")
        self._thread.daemon = True
        self._thread.start()
        return self

    def cancel(self) -> None:
        """Files in flight roll back at once, the rest are skipped; the run ends
        ``cancelled``. From any thread, at any time."""
        self._engine.cancel()

    @property
    def cancelled(self) -> bool:
        return self._engine.cancelled

    @property
    def dry_run(self) -> bool:
        return self._engine.dry_run

    @property
    def callbacks(self) -> list[str]:
        """The webhooks of this run only (``--callback-url``), besides ``[[notify]]``."""
        return self._engine.callbacks

    @property
    def early_notifications(self) -> list[dict[str, Any]]:
        """The webhook deliveries of a run that could not start (its error is raised)."""
        return self._engine.early_notifications

    # -- results ---------------------------------------------------------------------

    @property
    def done(self) -> bool:
        return self._done.is_set()

    def result(self, timeout: float | None = None) -> RunSummary:
        """The run's summary once it ended; its error if it could not start.
        ``TimeoutError`` when ``timeout`` seconds pass first."""
        if not self._done.wait(timeout):
            raise TimeoutError(f"run {self.run_id} is still running")
        if self._error is not None:
            raise self._error
        assert self._summary is not None
        return self._summary

    def events(self, timeout: float | None = None) -> Iterator[ev.Event]:
        """Every event of the run as it happens, until the run ends (``timeout``: the
        longest wait for the next one, then ``TimeoutError``). Read them from one
        consumer: each event is handed out once."""
        while True:
            try:
                item = self._events.queue.get(timeout=timeout)
            except queue.Empty:
                raise TimeoutError(f"no event from run {self.run_id} for {timeout} s") from None
            if item is _END:
                self._events.queue.put(_END)  # a later call ends at once too
                return
            assert isinstance(item, ev.Event)
            yield item

    # -- looking before running (csvpg check) ---------------------------------------

    def plan(self) -> Plan:
        """The job's plan: plugins checked, files listed, nothing opened or written."""
        return self._engine.plan()

    @property
    def dsn(self) -> str:
        """The target database (resolved: the embedded server is started if needed)."""
        return self._engine.dsn

    @property
    def history_dsn(self) -> str:
        """Where the run's history goes: ``[history] dsn``, else the target."""
        return self._engine.history_dsn

    def context(self) -> RunContext:
        """The run as its files would see it: ``context().for_file(source, fp)`` is what
        a file's load gets (``csvpg check`` shows the DDL with it)."""
        return self._engine.context(has_manifest=False)


def _as_job(job: Job | str | Path) -> Job:
    return job if isinstance(job, Job) else load_job(job)


class RunOptions(TypedDict, total=False):
    """The options of :func:`prepare`, :func:`start` and :func:`run` (and
    :class:`RunHandle`): ``dsn`` beats the job's ``[database]``; ``plugins`` are
    registered for this run only (a reporter, a test's recorder), or ``pm`` is the
    plugin manager to use; ``dry_run`` loads each file and rolls it back; ``force``
    loads files the manifest says are unchanged; ``callbacks`` are webhooks for this run
    only."""

    dsn: str | None
    plugins: Iterable[object]
    pm: pluggy.PluginManager | None
    dry_run: bool
    force: bool
    callbacks: Iterable[str]


def prepare(job: Job | str | Path, **options: Unpack[RunOptions]) -> RunHandle:
    """A run of ``job`` (a :class:`~csvpg.spec.Job` or a job file's path), not started."""
    return RunHandle(_as_job(job), **options)


def start(job: Job | str | Path, **options: Unpack[RunOptions]) -> RunHandle:
    """Start a run of ``job`` in a thread of its own and return its handle."""
    return prepare(job, **options).start()


def run(job: Job | str | Path, **options: Unpack[RunOptions]) -> RunSummary:
    """Run ``job`` in this thread and return its summary."""
    return prepare(job, **options).run()


def load(
    source: str | Sequence[str],
    *,
    table: str = "{name}",
    mode: str = "append",
    primary_key: Sequence[str] = (),
    dsn: str | None = None,
    schema: str = "public",
    columns: Mapping[str, Any] | None = None,
    format: Mapping[str, Any] | None = None,
    transforms: Sequence[Mapping[str, Any]] = (),
    name: str = "load",
    plugins: Iterable[object] = (),
    **sink: Any,
) -> RunSummary:
    """Load files without a job file: ``source`` is a path, folder, glob or URL (or
    several); the other arguments are the job's keys (``sink`` takes the rest of
    ``[sink]``: ``create``, ``max_rejects`` …). Blocks until the run ends and returns
    its summary; check ``summary.status`` (or ``exit_code``) as the CLI does."""
    raw: dict[str, Any] = {
        "job": {"name": name},
        "source": {"urls": list(source)} if not isinstance(source, str) else {"url": source},
        "sink": {"mode": mode, "table": table, "primary_key": list(primary_key), **sink},
    }
    if dsn is not None or schema != "public":
        raw["database"] = {"schema": schema, **({"dsn": dsn} if dsn else {})}
    if columns:
        raw["columns"] = dict(columns)
    if format:
        raw["format"] = dict(format)
    if transforms:
        raw["transform"] = [dict(t) for t in transforms]
    return prepare(job_from_dict(raw), plugins=plugins).run()
