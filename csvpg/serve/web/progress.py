"""A run's progress for the live page: its events folded into per-file bytes, speed,
time left, phase and rejects. Each run started or watched here gets one
:class:`Progress`, fed by the run's own event queue (:meth:`RunHandle.events`), so it
sees every event from the first, however late the page is opened."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

from csvpg import events as ev
from csvpg.serve.live import LiveRun


@dataclass
class FileProgress:
    file: str
    table: str | None = None
    #: queued → reading → committing (every byte read, the transaction ends) → an end
    phase: str = "reading"
    size: int | None = None
    bytes_read: int = 0
    started: float = field(default_factory=time.monotonic)
    last: float = field(default_factory=time.monotonic)
    rows_read: int | None = None
    rejected: int = 0
    seconds: float | None = None
    message: str | None = None
    hint: str | None = None

    @property
    def percent(self) -> float | None:
        if self.phase in ("loaded", "skipped"):
            return 100.0
        if not self.size:
            return None
        return min(100.0, 100.0 * self.bytes_read / self.size)

    @property
    def bytes_per_second(self) -> float | None:
        elapsed = (self.seconds or 0) or (self.last - self.started)
        return self.bytes_read / elapsed if elapsed > 0 and self.bytes_read else None

    @property
    def rows_per_second(self) -> float | None:
        """Known once the file loaded: the engine counts rows as the load commits."""
        return self.rows_read / self.seconds if self.rows_read and self.seconds else None

    @property
    def seconds_left(self) -> float | None:
        rate = self.bytes_per_second
        if self.phase != "reading" or not rate or not self.size:
            return None
        return max(0.0, self.size - self.bytes_read) / rate


_ENDS = {
    ev.FileLoaded: "loaded",
    ev.FileFailed: "failed",
    ev.FileCancelled: "cancelled",
    ev.FileSkipped: "skipped",
}


class Progress:
    def __init__(self, live: LiveRun) -> None:
        self.live = live
        self.files: dict[str, FileProgress] = {}
        self.planned = 0
        self.ended = threading.Event()
        self.changed = threading.Condition()
        self.version = 0
        threading.Thread(target=self._follow, name="csvpg-web-progress", daemon=True).start()

    def _follow(self) -> None:
        try:
            for event in self.live.handle.events():
                with self.changed:
                    self._apply(event)
                    self.version += 1
                    self.changed.notify_all()
        finally:
            with self.changed:
                self.ended.set()
                self.version += 1
                self.changed.notify_all()

    def _apply(self, event: ev.Event) -> None:
        if isinstance(event, ev.JobStarted):
            self.planned = event.files
        elif isinstance(event, ev.FileStarted):
            self.files[event.file] = FileProgress(event.file, event.table, size=event.size)
        elif isinstance(event, ev.BytesRead):
            f = self._file(event.file)
            f.bytes_read, f.last = event.bytes_read, time.monotonic()
            f.size = event.size if event.size is not None else f.size
            if f.size and f.bytes_read >= f.size:
                f.phase = "committing"
        elif isinstance(event, ev.RowsRejected):
            self._file(event.file).rejected = event.count
        elif type(event) in _ENDS:
            self._end(event, _ENDS[type(event)])

    def _end(self, event: Any, phase: str) -> None:
        f = self._file(event.file)
        f.phase, f.last = phase, time.monotonic()
        f.seconds = getattr(event, "seconds", None)
        if isinstance(event, ev.FileLoaded):
            f.rows_read, f.rejected = event.rows_read, event.rejected
            f.bytes_read = f.size or f.bytes_read
        f.message = getattr(event, "message", None) or getattr(event, "reason", None)
        f.hint = getattr(event, "hint", None)

    def _file(self, url: str) -> FileProgress:
        if url not in self.files:
            self.files[url] = FileProgress(url)
        return self.files[url]

    def snapshot(self) -> dict[str, Any]:
        """What the live page shows now (copied: the run goes on meanwhile)."""
        with self.changed:
            files = [FileProgress(**vars(f)) for f in self.files.values()]
            return {
                "files": files,
                "queued": max(0, self.planned - len(files)),
                "status": self.live.status,
                "cancelling": self.live.handle.cancelled and not self.ended.is_set(),
                "ended": self.ended.is_set(),
                "version": self.version,
            }

    def wait(self, version: int, timeout: float) -> None:
        """Until something changed since ``version`` (or ``timeout`` seconds passed)."""
        with self.changed:
            self.changed.wait_for(lambda: self.version != version, timeout)


class Watchers:
    """One :class:`Progress` per run of the server's memory (runs it forgot, forgotten)."""

    def __init__(self) -> None:
        self._by_run: dict[str, Progress] = {}
        self._lock = threading.Lock()

    def of(self, live: LiveRun, known: dict[str, LiveRun]) -> Progress:
        with self._lock:
            for run_id in [r for r in self._by_run if r not in known]:
                del self._by_run[run_id]
            if live.run_id not in self._by_run:
                self._by_run[live.run_id] = Progress(live)
            return self._by_run[live.run_id]
