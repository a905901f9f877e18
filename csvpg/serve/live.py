"""A run started by ``csvpg serve`` and the request that starts one: the run's state from
engine events while it runs, for ``GET /runs/{run_id}``."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from csvpg import events as ev
from csvpg.api import RunHandle
from csvpg.hookspecs import hookimpl


class RunRequest(BaseModel):
    job: str | None = Field(None, description="the name of a job in the jobs directory")
    spec: dict[str, Any] | None = Field(None, description="an inline job spec (as TOML → JSON)")
    callback_url: str | None = Field(None, description="POST the summary here when it ends")
    force: bool = False
    dry_run: bool = False


@dataclass
class LiveRun:
    """A run started here: its state from engine events, until it ends."""

    run_id: str
    job: str
    handle: RunHandle
    status: str = "queued"
    started_at: str = field(default_factory=lambda: datetime.now().astimezone().isoformat())
    files: dict[str, dict[str, Any]] = field(default_factory=dict)
    summary: dict[str, Any] | None = None
    error: str | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    @hookimpl
    def track_event(self, event: ev.Event) -> None:
        with self.lock:
            if isinstance(event, ev.JobStarted):
                self.status = "running"
            elif isinstance(event, ev.BytesRead):
                self.files.setdefault(event.file, {"file": event.file})["bytes_read"] = (
                    event.bytes_read
                )
            elif (entry := _file_entry(event)) is not None:
                self.files[entry["file"]] = entry

    def to_dict(self) -> dict[str, Any]:
        with self.lock:
            if self.summary is not None:
                return {**self.summary, "live": False}
            return {
                "run_id": self.run_id,
                "job": self.job,
                "status": self.status,
                "started_at": self.started_at,
                "error": self.error,
                "live": True,
                "files": list(self.files.values()),
            }


def _file_entry(event: ev.Event) -> dict[str, Any] | None:
    """A file's entry in the live run after ``event``; None for an event about no file."""
    if isinstance(event, ev.FileStarted):
        return _entry(event, "loading", bytes_read=0)
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
