"""A run started by ``csvpg serve`` and the request that starts one: the run's state from
engine events while it runs, for ``GET /runs/{run_id}``."""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic.json_schema import SkipJsonSchema

from csvpg import events as ev
from csvpg.api import RunHandle
from csvpg.hookspecs import hookimpl
from csvpg.serve.models import LiveState, Phase
from csvpg.spec import Job
from csvpg.worker.enqueue import cancel_run

_END = object()


class RunRequest(BaseModel):
    """Either ``job`` (the name of a job file) or ``spec`` (an inline job), not both."""

    model_config = ConfigDict(
        json_schema_extra={"oneOf": [{"required": ["job"]}, {"required": ["spec"]}]}
    )

    job: str | SkipJsonSchema[None] = Field(
        None, description="the name of a job in the jobs directory"
    )
    spec: dict[str, Any] | SkipJsonSchema[None] = Field(
        None, description="an inline job spec (as TOML → JSON); needs --allow-inline-specs"
    )
    callback_url: str | None = Field(
        None, pattern=r"^[Hh][Tt][Tt][Pp][Ss]?://[^/\s]", description="POST the summary here"
    )
    force: bool = False
    dry_run: bool = False

    @model_validator(mode="after")
    def _one_of(self) -> RunRequest:
        if (self.job is None) == (self.spec is None):
            raise ValueError("give either 'job' (a name) or 'spec' (an inline job)")
        return self


class QueuedHandle:
    """What the server holds of a queued run: as a local run's handle, its events (one
    consumer), cancel, and its end."""

    dry_run = False

    def __init__(self, run_id: str, dsn: str, job: Job | None, callbacks: list[str]) -> None:
        self.run_id = run_id
        self.dsn = dsn
        self.job = job
        self.callbacks = callbacks
        self.early_notifications: list[dict[str, Any]] = []
        self._cancelled = False
        self._events: queue.Queue[object] = queue.Queue()
        self._done = threading.Event()
        self.summary: dict[str, Any] | None = None

    def cancel(self) -> None:
        """The run's tasks stopped on every worker (:func:`csvpg.worker.cancel_run`); a
        CsvpgError when it has ended already."""
        cancel_run(self.run_id, self.dsn)
        self._cancelled = True

    @property
    def cancelled(self) -> bool:
        return self._cancelled

    @property
    def done(self) -> bool:
        return self._done.is_set()

    def put(self, event: ev.Event) -> None:
        self._events.put(event)

    def end(self, summary: dict[str, Any]) -> None:
        self.summary = summary
        self._events.put(_END)
        self._done.set()

    def result(self, timeout: float | None = None) -> dict[str, Any]:
        """The run as the history has it once it ended."""
        if not self._done.wait(timeout):
            raise TimeoutError(f"run {self.run_id} is still running")
        assert self.summary is not None
        return self.summary

    def events(self, timeout: float | None = None) -> Iterator[ev.Event]:
        while True:
            try:
                item = self._events.get(timeout=timeout)
            except queue.Empty:
                raise TimeoutError(f"no event from run {self.run_id} for {timeout} s") from None
            if item is _END:
                self._events.put(_END)
                return
            assert isinstance(item, ev.Event)
            yield item


@dataclass
class LiveRun:
    """A run started here: its state from engine events, until it ends."""

    run_id: str
    job: str
    handle: RunHandle | QueuedHandle
    status: str = "queued"
    started_at: str = field(default_factory=lambda: datetime.now().astimezone().isoformat())
    files: dict[str, dict[str, Any]] = field(default_factory=dict)
    summary: dict[str, Any] | None = None
    error: str | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)
    phase: Phase = "queued"
    files_total: int | None = None
    #: When the first file began (``time.monotonic``): the rates are over the time since.
    began: float | None = None
    rows_done: int = 0

    @hookimpl
    def track_event(self, event: ev.Event) -> None:
        with self.lock:
            if isinstance(event, ev.JobStarted):
                self.status, self.phase, self.files_total = "running", "planning", event.files
            elif isinstance(event, ev.JobFinished):
                self.phase = "ended"
            elif isinstance(event, ev.BytesRead):
                read = self.files.setdefault(event.file, {"file": event.file})
                read["bytes_read"] = event.bytes_read
                read["size"] = event.size if event.size is not None else read.get("size")
                read["percent"] = _percent(event.bytes_read, read["size"])
            elif (entry := _file_entry(event)) is not None:
                self._file_changed(event, entry)

    def _file_changed(self, event: ev.Event, entry: dict[str, Any]) -> None:
        if isinstance(event, ev.FileStarted):
            self.phase = "loading"
            self.began = self.began if self.began is not None else time.monotonic()
        if isinstance(event, ev.FileLoaded):
            self.rows_done += event.rows_read
            size = self.files.get(event.file, {}).get("size")
            entry.update(size=size, bytes_read=size, percent=100.0 if size else None)
        self.files[entry["file"]] = entry
        ended = sum(1 for f in self.files.values() if f.get("status") not in (None, "loading"))
        if self.files_total is not None and ended >= self.files_total:
            self.phase = "finishing"

    def snapshot(self) -> LiveState:
        """How far the run is: bytes of the files begun (of their known sizes), the rates
        since the first file began, and the time left at that rate."""
        with self.lock:
            entries = list(self.files.values())
            known = [f["size"] for f in entries if "size" in f]
            size = sum(known) if known and all(k is not None for k in known) else None
            read = sum(int(f.get("bytes_read") or 0) for f in entries)
            elapsed = time.monotonic() - self.began if self.began is not None else 0.0
            per_second = read / elapsed if elapsed > 0 and read else None
            left = None
            if per_second and size is not None and self.phase == "loading":
                left = round(max(0, size - read) / per_second, 1)
            return LiveState(
                phase=self.phase,
                size=size,
                bytes_read=read,
                percent=_percent(read, size),
                bytes_per_second=round(per_second, 1) if per_second else None,
                rows_per_second=round(self.rows_done / elapsed, 1) if elapsed > 0 else None,
                seconds_left=left,
                files_total=self.files_total,
                files_done=sum(1 for f in entries if f.get("status") not in (None, "loading")),
            )

    def to_dict(self) -> dict[str, Any]:
        if self.summary is not None:
            with self.lock:
                return {**self.summary, "live": False}
        progress = self.snapshot().model_dump()
        with self.lock:
            return {
                "run_id": self.run_id,
                "job": self.job,
                "status": self.status,
                "started_at": self.started_at,
                "error": self.error,
                "live": True,
                "files": list(self.files.values()),
                "progress": progress,
            }


def _percent(done: int, size: int | None) -> float | None:
    return round(100 * min(done, size) / size, 1) if size else None


def _file_entry(event: ev.Event) -> dict[str, Any] | None:
    """A file's entry in the live run after ``event``; None for an event about no file."""
    if isinstance(event, ev.FileStarted):
        return _entry(
            event, "loading", bytes_read=0, size=event.size, percent=_percent(0, event.size)
        )
    if isinstance(event, ev.FileLoaded):
        return _entry(
            event,
            "loaded",
            rows_read=event.rows_read,
            inserted=event.inserted,
            updated=event.updated,
            unchanged=event.unchanged,
            collapsed=event.collapsed,
            rejected=event.rejected,
            seconds=round(event.seconds, 3),
            drift=event.details.get("drift"),
        )
    if isinstance(event, ev.FileFailed):
        return _entry(event, "failed", error=event.message)
    if isinstance(event, ev.FileCancelled):
        return _entry(event, "cancelled", seconds=round(event.seconds, 3))
    if isinstance(event, ev.FileSkipped):  # skipped before it had a table
        return {"file": event.file, "status": "skipped", "reason": event.reason}
    return None


def _entry(
    event: ev.FileStarted | ev.FileLoaded | ev.FileFailed | ev.FileCancelled,
    status: str,
    **more: Any,
) -> dict[str, Any]:
    return {"file": event.file, "table": event.table, "status": status, **more}
