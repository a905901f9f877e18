"""What the dashboard knows of a run, folded from engine events.

Plain Python, no Textual: the widgets render a :class:`RunState`, and tests (and the
snapshot replays) build one from recorded events. Every time is the ``at`` the event was
received with (``time.monotonic()`` in a live run), so a replay renders the same screen
each time.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any

from csvpg import events as ev
from csvpg.reporters import WriteRate, describe, time_left

#: Seconds of throughput the sparkline shows.
THROUGHPUT_SECONDS = 60

DONE = ("loaded", "failed", "cancelled", "skipped")


@dataclass
class FileState:
    file: str
    table: str | None = None
    status: str = "loading"  # loading | loaded | failed | cancelled | skipped
    size: int | None = None
    bytes_read: int = 0
    started_at: float | None = None
    last_at: float | None = None
    rows_read: int = 0
    inserted: int = 0
    updated: int = 0
    collapsed: int = 0
    rejected: int = 0
    seconds: float | None = None
    message: str | None = None
    hint: str | None = None
    #: The first rejects, from RowsRejected; all of them are in csvpg.rejects.
    rejects: list[dict[str, Any]] = field(default_factory=list)
    #: "reading", "writing" (every byte read, PostgreSQL works on), "checking bad rows"
    phase: str = "reading"
    #: When its last byte was read: what follows is PostgreSQL's own time.
    read_done_at: float | None = None

    @property
    def name(self) -> str:
        return PurePosixPath(self.file).name or self.file

    @property
    def elapsed(self) -> float:
        if self.started_at is None or self.last_at is None:
            return 0.0
        return max(0.0, self.last_at - self.started_at)

    @property
    def rate(self) -> float | None:
        """Bytes per second so far."""
        return self.bytes_read / self.elapsed if self.elapsed > 0 else None

    @property
    def eta(self) -> float | None:
        rate = self.rate
        if not rate or not self.size or self.status != "loading":
            return None
        return max(0.0, self.size - self.bytes_read) / rate

    @property
    def rows_per_second(self) -> float | None:
        return self.rows_read / self.seconds if self.seconds else None

    def phase_seconds(self, now: float | None) -> float:
        """How long the file has been in its phase (or loading, while reading)."""
        since = self.started_at if self.phase == "reading" else self.read_done_at
        if since is None or now is None:
            return 0.0
        return max(0.0, now - since)


@dataclass
class RunState:
    run_id: str | None = None
    job: str | None = None
    database: str = ""
    files_total: int = 0
    #: The bytes of all the run's files, when the source said every size.
    bytes_total: int | None = None
    status: str = "starting"  # starting | running | cancelling | <JobFinished.status>
    started_at: float | None = None
    now: float | None = None
    files: dict[str, FileState] = field(default_factory=dict)
    #: Bytes read in each second since the job started (index: whole seconds).
    buckets: list[int] = field(default_factory=list)
    #: PostgreSQL's writing after a file's last byte, per byte (see ``eta``).
    write_rate: WriteRate = field(default_factory=WriteRate)
    finished: ev.JobFinished | None = None
    not_started: int = 0
    cancel_requested: bool = False
    #: Events folded in so far.
    events: int = 0

    # -- folding ---------------------------------------------------------------------

    def apply(self, event: ev.Event, at: float) -> list[tuple[str, str]]:
        """Fold one event in; returns the log lines it makes, as (level, text)."""
        self.now = at
        self.events += 1
        if isinstance(event, ev.JobStarted):
            self.run_id, self.job, self.database = event.run_id, event.job, event.database
            self.files_total, self.started_at = event.files, at
            self.bytes_total = event.bytes
            self.write_rate.before = event.write_per_byte
            self.status = "cancelling" if self.cancel_requested else "running"
        elif isinstance(event, ev.FileStarted):
            self.files[event.file] = FileState(
                event.file, event.table, size=event.size, started_at=at, last_at=at
            )
        elif isinstance(event, ev.BytesRead):
            self._bytes(event, at)
        elif isinstance(event, ev.FilePhase):
            f = self._file(event.file)
            f.phase, f.read_done_at = event.phase, at
        elif isinstance(event, ev.RowsRejected):
            f = self._file(event.file)
            f.rejected, f.rejects = event.count, list(event.first)
        elif isinstance(event, ev.FileLoaded):
            f = self._file(event.file)
            if f.status == "loading" and f.read_done_at is not None and f.phase == "writing":
                self.write_rate.loaded(f.size, at - f.read_done_at)
            f.status, f.table, f.last_at = "loaded", event.table, at
            f.rows_read, f.inserted, f.updated = event.rows_read, event.inserted, event.updated
            f.collapsed, f.rejected, f.seconds = event.collapsed, event.rejected, event.seconds
            if f.size:
                f.bytes_read = f.size
        elif isinstance(event, ev.FileFailed):
            f = self._file(event.file)
            f.status = "failed"
            f.message, f.hint, f.seconds, f.last_at = event.message, event.hint, event.seconds, at
        elif isinstance(event, ev.FileCancelled):
            f = self._file(event.file)
            f.status, f.seconds, f.last_at = "cancelled", event.seconds, at
        elif isinstance(event, ev.FileSkipped):
            if event.file not in self.files and (self.files or self.cancel_requested):
                self.not_started += 1  # plan skips come before any file starts
            f = self._file(event.file)
            f.status, f.message = "skipped", event.reason
        elif isinstance(event, ev.JobFinished):
            self.finished, self.status = event, event.status
        return self._log_lines(event)

    def _file(self, url: str) -> FileState:
        if url not in self.files:
            self.files[url] = FileState(url)
        return self.files[url]

    def _bytes(self, event: ev.BytesRead, at: float) -> None:
        f = self._file(event.file)
        delta = max(0, event.bytes_read - f.bytes_read)
        f.bytes_read, f.last_at = event.bytes_read, at
        if event.size is not None:
            f.size = event.size
        if f.size and f.bytes_read >= f.size and f.phase == "reading":
            f.phase, f.read_done_at = "writing", at
        if self.started_at is not None:
            second = int(max(0.0, at - self.started_at))
            if len(self.buckets) <= second:
                self.buckets.extend([0] * (second + 1 - len(self.buckets)))
            self.buckets[second] += delta

    def _log_lines(self, event: ev.Event) -> list[tuple[str, str]]:
        lines = describe(event)
        if isinstance(event, ev.FileLoaded | ev.BytesRead | ev.FileStarted):
            return []
        if isinstance(event, ev.RowsRejected):
            lines = lines[:1]
        failed = isinstance(event, ev.FileFailed)
        if isinstance(event, ev.JobFinished):
            failed = event.status != "succeeded"
        level = "error" if failed else "info"
        if isinstance(event, ev.Warned | ev.RowsRejected):
            level = "warning"
        return [(level, line.strip()) for line in lines]

    # -- what the screen shows -----------------------------------------------------------

    @property
    def in_flight(self) -> list[FileState]:
        return [f for f in self.files.values() if f.status == "loading"]

    @property
    def done(self) -> list[FileState]:
        return [f for f in self.files.values() if f.status in DONE]

    @property
    def started(self) -> int:
        return sum(f.started_at is not None for f in self.files.values())

    @property
    def queued(self) -> int:
        return max(0, self.files_total - self.started - self.not_started)

    @property
    def finished_files(self) -> int:
        """Files of the plan that ended (not those the plan left out)."""
        return self.started - len(self.in_flight) + self.not_started

    @property
    def bytes_read(self) -> int:
        return sum(f.bytes_read for f in self.files.values())

    @property
    def elapsed(self) -> float:
        if self.finished is not None:
            return self.finished.seconds
        if self.started_at is None or self.now is None:
            return 0.0
        return self.now - self.started_at

    @property
    def throughput(self) -> list[float]:
        """MiB read in each of the last seconds (zeros before the run), for the sparkline."""
        last = self.buckets[-THROUGHPUT_SECONDS:]
        return [0.0] * (THROUGHPUT_SECONDS - len(last)) + [b / (1 << 20) for b in last]

    @property
    def rate(self) -> float | None:
        """Bytes per second over the run so far, PostgreSQL's writing included."""
        return self.bytes_read / self.elapsed if self.elapsed > 0 else None

    @property
    def write_per_byte(self) -> float | None:
        """Seconds PostgreSQL went on working after a file was read, per byte of it:
        over the files loaded so far, else as the job's earlier runs took it."""
        return self.write_rate.per_byte

    @property
    def eta(self) -> float | None:
        """Seconds left for the whole run (:func:`~csvpg.reporters.time_left`): the bytes
        still to read at the rate so far, then PostgreSQL's writing of the files in
        flight. None until it can be said (no total, nothing read yet, or the run
        ended); without a write rate yet, the reading alone."""
        rate, total = self.rate, self.bytes_total
        if not rate or not total or self.finished is not None:
            return None
        writing = [
            (f.size, f.phase_seconds(self.now) if f.phase == "writing" else 0.0)
            for f in self.in_flight
            if f.size
        ]
        return time_left(max(0, total - self.bytes_read), rate, self.write_per_byte, writing)

    def total(self, name: str) -> int:
        return sum(getattr(f, name) for f in self.files.values())

    @property
    def running(self) -> bool:
        return self.finished is None
