"""Reporters: plugins that turn engine events into output. The CLI registers one per run.

    LineReporter          a line per file as it ends, then the totals (the plain output)
    ProgressLineReporter  the same, plus a progress line every N seconds for long files:
                          for logs, CI and cron
    RichReporter          on a terminal: a bar per file in flight, an overall bar, and a
                          summary table at the end
    JsonLinesReporter     ``--log-format json``: one JSON object per event, for log shippers

:func:`for_stream` picks one. Rich, never Textual: the dashboard lives in ``csvpg.tui``.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterable
from datetime import datetime
from pathlib import PurePosixPath
from typing import Any, TextIO

from csvpg import events as ev
from csvpg.hookspecs import hookimpl
from csvpg.pg.rejects import place
from csvpg.summary import drift_lines

Clock = Callable[[], float]


def _short(url: str) -> str:
    return PurePosixPath(url).name or url


def _plural(n: int, word: str) -> str:
    return f"{n:,} {word}" if n == 1 else f"{n:,} {word}s"


def human_bytes(n: float) -> str:
    """``1536`` → ``1.5 KiB``; binary units, as the MiB that BytesRead counts in."""
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError("unreachable")


def human_duration(seconds: float) -> str:
    """``75`` → ``1 min 15 s``; for ETAs and elapsed times."""
    s = max(0, round(seconds))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s // 3600} h {s % 3600 // 60:02d} min"


def time_left(
    bytes_left: int,
    rate: float | None,
    write_per_byte: float | None,
    in_flight: Iterable[tuple[int, float]] = (),
) -> float | None:
    """Seconds a run has left: its bytes still to read at ``rate`` (bytes/s over the run
    so far), then what PostgreSQL still writes of the files in flight, each given as
    (its size, seconds it has written since its last byte was read), at
    ``write_per_byte``. Without ``write_per_byte`` only the reading is counted (say so);
    None when nothing can be said yet."""
    if bytes_left and not rate:
        return None
    reading = bytes_left / rate if bytes_left and rate else 0.0
    if write_per_byte is None:
        return reading if bytes_left else None
    writing = sum(max(0.0, write_per_byte * size - spent) for size, spent in in_flight)
    return reading + writing


def left_text(eta: float | None, reading: bool, writes_known: bool, in_flight: bool) -> str:
    """`` · about 40 s left`` (the write phase counted), `` · about 3 s of reading left``
    (no file of the job has shown its write time yet), or, every byte read,
    `` · read; PostgreSQL is writing`` with the time it should take when known."""
    if reading:
        if eta is None:
            return ""
        return f" · about {human_duration(eta)} {'left' if writes_known else 'of reading left'}"
    if not in_flight:
        return ""
    return " · read; PostgreSQL is writing" + (
        f", about {human_duration(eta)} left" if eta is not None and writes_known else ""
    )


#: The smallest file whose write phase counts towards a write rate (see ``WriteRate``).
WRITE_SAMPLE_BYTES = 4 << 20


class WriteRate:
    """Seconds PostgreSQL writes per byte after a file is read: the job's files loaded
    in this run once there are some, else what its earlier runs took (``JobStarted``)."""

    def __init__(self, before: float | None = None) -> None:
        self.before = before
        self._seconds = 0.0
        self._bytes = 0

    def loaded(self, size: int | None, writing: float | None) -> None:
        """A file of ``size`` bytes loaded ``writing`` seconds after its last byte; a
        small one says more of a commit's fixed cost than of a rate, and is left out."""
        if size and size >= WRITE_SAMPLE_BYTES and writing is not None:
            self._seconds += max(0.0, writing)
            self._bytes += size

    @property
    def per_byte(self) -> float | None:
        return self._seconds / self._bytes if self._bytes else self.before


#: The events that end a file (each file of a plan gets exactly one).
FILE_ENDS = (ev.FileLoaded, ev.FileFailed, ev.FileCancelled, ev.FileSkipped)


def describe(event: ev.Event, *, quiet: bool = False, dry_run: bool = False) -> list[str]:
    """The plain lines for one event (none for progress); LineReporter prints them, and
    the dashboard's log pane shows them. In a dry run every line says so."""
    lines = _lines(event, quiet=quiet)
    if dry_run:
        lines = [_would(line) for line in lines]
    return lines


def _would(line: str) -> str:
    """A line of a dry run: nothing was kept, so the line says what a run would do."""
    text = line.replace("  loaded  ", "  would load ", 1).replace(" files loaded", " files")
    text = text.replace(" file loaded", " file")
    return "dry run: " + (text[2:] if text.startswith("  ") else text)


def _lines(event: ev.Event, *, quiet: bool) -> list[str]:
    if isinstance(event, ev.JobStarted) and not quiet:
        return [f"job {event.job}: {_plural(event.files, 'file')} → {event.database}"]
    if isinstance(event, ev.FileLoaded) and not quiet:
        return [
            f"  loaded  {_short(event.file)} → {event.table}: "
            f"{_plural(event.rows_read, 'row')} ({_counts(event)}) in {event.seconds:.2f} s",
            *(f"          schema: {line}" for line in drift_lines(event.details.get("drift", {}))),
        ]
    if isinstance(event, ev.FileCancelled):
        return [f"  cancelled {_short(event.file)} → {event.table}: rolled back"]
    if isinstance(event, ev.FileFailed):
        lines = [f"  FAILED  {_short(event.file)} → {event.table}: {event.message}"]
        if event.hint:
            lines.append(f"          hint: {event.hint}")
        return lines
    if isinstance(event, ev.FileSkipped) and not quiet:
        # A file loaded by an earlier run and only moved or deleted now ([source] after_load).
        verb, archived, rest = event.reason.partition("archived: ")
        if archived and not verb:
            return [f"  archived {_short(event.file)}: {rest}"]
        return [f"  skipped {_short(event.file)}: {event.reason}"]
    if isinstance(event, ev.RowsRejected):
        lines = [f"  {_plural(event.count, 'row')} of {_short(event.file)} set aside:"]
        for r in event.first[:5]:
            lines.append(f"          {place(r['line'], r['column'])}: {r['reason']}")
        if event.count > 5:
            lines.append(
                f"          … {event.count - 5:,} more in csvpg.rejects (run {event.run_id})"
            )
        return lines
    if isinstance(event, ev.Warned):
        return [f"  warning: {event.message}"]
    if isinstance(event, ev.JobFinished):
        return _totals(event)
    return []


def _counts(event: ev.FileLoaded | ev.JobFinished) -> str:
    """``990 inserted, 3 updated, 7 rejected``: the counts a load has, formatted alike."""
    counts = f"{event.inserted:,} inserted, {event.updated:,} updated"
    if event.unchanged:  # upserts: rows already as the file has them
        counts += f", {event.unchanged:,} unchanged"
    if event.collapsed:
        counts += f", {event.collapsed:,} duplicate keys collapsed"
    if event.rejected:
        counts += f", {event.rejected:,} rejected"
    return counts


def _totals(event: ev.JobFinished) -> list[str]:
    files = _plural(event.files_loaded, "file") + " loaded"
    if not (event.files_loaded or event.files_failed or event.files_skipped):
        files = "0 files found ([source] allow_empty)"
    if event.files_failed:
        files += f", {event.files_failed:,} failed"
    if event.files_skipped:
        files += f", {event.files_skipped:,} skipped"
    lines = [
        f"{event.status}: {files}; {_plural(event.rows_read, 'row')} read, "
        f"{_counts(event)} in {event.seconds:.2f} s"
    ]
    see = f": csvpg runs {event.run_id} --rejects" if event.rejected else ""
    lines.append(f"  run {event.run_id}{see}")
    return lines


def stamp(created: float) -> str:
    """An event's time as a log line starts with it: local time, with its offset."""
    return datetime.fromtimestamp(created).astimezone().isoformat(timespec="seconds")


class LineReporter:
    """One line per file as it ends, then a totals line: for terminals, logs and cron.

    ``stamped`` (off a terminal, for logs a scheduler keeps) starts every line with the
    event's time, and a file's lines with ``[n/N]``: its number among the run's files."""

    def __init__(self, out: TextIO, *, quiet: bool = False, stamped: bool = False) -> None:
        self.out = out
        self.quiet = quiet
        self.stamped = stamped
        self.dry_run = False
        self._numbers: dict[str, int] = {}
        self._total = 0

    def _say(self, text: str, *, created: float | None = None, file: str | None = None) -> None:
        if self.stamped:
            number = self._number(file) if file is not None else ""
            if number and text.startswith("  "):  # the number stands where the indent was
                text = text[2:]
            text = f"{stamp(time.time() if created is None else created)} {number}{text}"
        print(text, file=self.out, flush=True)

    def _number(self, file: str) -> str:
        n = self._numbers.setdefault(file, len(self._numbers) + 1)
        return f"[{n}/{max(self._total, n)}] "

    @hookimpl
    def track_event(self, event: ev.Event) -> None:
        if isinstance(event, ev.JobStarted):
            self.dry_run, self._total = event.dry_run, event.files
        elif isinstance(event, ev.FileStarted):  # numbered as they start, not as they end
            self._numbers.setdefault(event.file, len(self._numbers) + 1)
        file = getattr(event, "file", None)
        for line in describe(event, quiet=self.quiet, dry_run=self.dry_run):
            self._say(line, created=event.created, file=file)

    def close(self) -> None:
        """Nothing to release; the CLI closes every reporter after a run."""


class ProgressLineReporter(LineReporter):
    """LineReporter, plus a progress line for a file still loading after ``every``
    seconds, and then at most once every ``every`` seconds: a long load on CI is never
    silent, a short one prints what it always did.

    Progress lines come with the file's BytesRead events and, with ``heartbeat``, from a
    timer thread too: once a file is read, PostgreSQL may still work on it for minutes
    (an upsert of gigabytes) with no event to say so."""

    def __init__(
        self,
        out: TextIO,
        *,
        quiet: bool = False,
        every: float = 10.0,
        clock: Clock = time.monotonic,
        heartbeat: bool = False,
        stamped: bool = False,
    ) -> None:
        super().__init__(out, quiet=quiet, stamped=stamped)
        self.every = every
        self.clock = clock
        self.heartbeat = heartbeat
        self._files: dict[str, _Loading] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @hookimpl
    def track_event(self, event: ev.Event) -> None:
        with self._lock:
            super().track_event(event)
            if self.quiet:
                return
            if isinstance(event, ev.JobStarted) and self.heartbeat and self._thread is None:
                self._thread = threading.Thread(
                    target=self._beat, name="csvpg-progress", daemon=True
                )
                self._thread.start()
            elif isinstance(event, ev.FileStarted):
                now = self.clock()
                self._files[event.file] = _Loading(now, now)
            elif isinstance(event, ev.BytesRead) and event.file in self._files:
                loading = self._files[event.file]
                loading.read = event
                self._due(event.file, loading, self.clock())
            elif isinstance(event, ev.FilePhase) and event.file in self._files:
                self._files[event.file].phase = event.phase
            elif isinstance(event, FILE_ENDS):
                self._files.pop(event.file, None)
            elif isinstance(event, ev.JobFinished):
                self._stop.set()

    def tick(self) -> None:
        """A progress line for each file that has been quiet for ``every`` seconds."""
        with self._lock:
            now = self.clock()
            for file, loading in list(self._files.items()):
                self._due(file, loading, now)

    def _due(self, file: str, loading: _Loading, now: float) -> None:
        if now - loading.said < self.every:
            return
        loading.said = now
        seconds = now - loading.started
        if loading.phase is not None:
            self._say(
                f"  loading {_short(file)}: {loading.phase} ({human_duration(seconds)} so far)",
                file=file,
            )
        elif loading.read is None:
            self._say(
                f"  loading {_short(file)}: opening it, for {human_duration(seconds)}", file=file
            )
        elif loading.read.size and loading.read.bytes_read >= loading.read.size:
            self._say(
                f"  loading {_short(file)}: all {human_bytes(loading.read.bytes_read)} read, "
                f"PostgreSQL is writing it ({human_duration(seconds)} so far)",
                file=file,
            )
        else:
            self._say(progress_line(loading.read, seconds), file=file)

    def _beat(self) -> None:
        while not self._stop.wait(min(self.every, 1.0)):
            self.tick()

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None


class _Loading:
    """A file in flight, as ProgressLineReporter tracks it."""

    def __init__(self, started: float, said: float) -> None:
        self.started = started
        self.said = said
        self.read: ev.BytesRead | None = None
        #: A phase its bytes do not show (FilePhase), e.g. "checking bad rows".
        self.phase: str | None = None


def progress_line(event: ev.BytesRead, seconds: float) -> str:
    """``  loading big.csv: 1.2 GiB of 3.0 GiB (40%), 85.0 MiB/s, about 21 s left``"""
    rate = event.bytes_read / seconds if seconds > 0 else 0.0
    text = f"  loading {_short(event.file)}: {human_bytes(event.bytes_read)}"
    if event.size:
        text += f" of {human_bytes(event.size)} ({100 * event.bytes_read // event.size}%)"
    else:
        text += " read"
    if rate:
        text += f", {human_bytes(rate)}/s"
        if event.size and event.size > event.bytes_read:
            text += f", about {human_duration((event.size - event.bytes_read) / rate)} left"
    return text


class JsonLinesReporter:
    """One JSON object per event (``Event.to_dict()``, plus ``time`` and ``level``), one
    per line, for log shippers. A file's progress (``bytes_read``) is written at most
    every ``every`` seconds, and when it is all read. ``quiet`` keeps failures, rejects,
    warnings and the totals."""

    QUIET = (ev.FileFailed, ev.FileCancelled, ev.RowsRejected, ev.Warned, ev.JobFinished)
    LEVELS: dict[type[ev.Event], str] = {
        ev.FileFailed: "error",
        ev.FileCancelled: "warning",
        ev.RowsRejected: "warning",
        ev.Warned: "warning",
    }

    def __init__(
        self,
        out: TextIO,
        *,
        quiet: bool = False,
        every: float = 5.0,
        clock: Clock = time.monotonic,
    ) -> None:
        self.out = out
        self.quiet = quiet
        self.every = every
        self.clock = clock
        self._said: dict[str, float] = {}

    @hookimpl
    def track_event(self, event: ev.Event) -> None:
        if self.quiet and not isinstance(event, self.QUIET):
            return
        if isinstance(event, ev.BytesRead) and not self._due(event):
            return
        data = {
            "time": stamp(event.created),
            "level": self._level(event),
            **event.to_dict(),
        }
        self.out.write(json.dumps(data, ensure_ascii=False, default=str) + "\n")
        self.out.flush()

    def _level(self, event: ev.Event) -> str:
        if isinstance(event, ev.JobFinished):
            return "info" if event.status == "succeeded" else "error"
        return self.LEVELS.get(type(event), "info")

    def _due(self, event: ev.BytesRead) -> bool:
        now = self.clock()
        done = event.size is not None and event.bytes_read >= event.size
        last = self._said.get(event.file)
        if not done and last is not None and now - last < self.every:
            return False
        self._said[event.file] = now
        return True

    def close(self) -> None:
        """Nothing to release."""


class RichReporter:
    """On a terminal: a bar per file in flight (bytes of its size, speed, time left), an
    overall bar (files done of all), failures and warnings above the bars as they come,
    and a table of every file with its counts at the end. Rows are counted by
    PostgreSQL, so a file's rows show once it is done."""

    def __init__(self, out: TextIO, *, clock: Clock = time.monotonic, width: int | None = None):
        from rich.console import Console

        self.console = Console(file=out, highlight=False, width=width)
        self.clock = clock
        self._progress: Any = None
        self._overall: Any = None
        self._tasks: dict[str, tuple[Any, float]] = {}
        self._rows: list[tuple[str, ...]] = []
        self._files = self._done = 0
        self._tasks_seen = False
        self._bytes: dict[str, int] = {}
        self._total_bytes: int | None = None
        self._started = 0.0
        self.dry_run = False
        #: Each file in flight's size, and when its last byte was read.
        self._sizes: dict[str, int | None] = {}
        self._read_at: dict[str, float] = {}
        self._write = WriteRate()

    def _start(self, event: ev.JobStarted) -> None:
        from rich.progress import BarColumn, Progress, ProgressColumn, TextColumn
        from rich.text import Text

        clock = self.clock

        class Elapsed(ProgressColumn):  # rich's stops when a file is read; this goes on
            def render(self, task: Any) -> Text:
                return Text(human_duration(clock() - task.fields["t0"]), style="cyan")

        class Detail(ProgressColumn):  # made at each refresh: the time left ticks too
            def render(self, task: Any) -> Text:
                return Text(task.fields["detail"]())

        self._files, self._total_bytes = event.files, event.bytes
        self._write.before = event.write_per_byte
        self._started = self.clock()
        self._progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(bar_width=30),
            Elapsed(),
            Detail(),
            console=self.console,
            transient=True,
        )
        total = event.bytes or event.files  # bytes of all files when every size is known
        self._overall = self._progress.add_task(
            event.job, total=total, detail=self._overall_detail, t0=self.clock()
        )
        self._progress.start()

    def _overall_detail(self) -> str:
        """``2 of 6 files · 1.2 GiB of 3.0 GiB · 85.0 MiB/s · about 21 s left``: the
        rate counts PostgreSQL's writing too, so the time left includes it."""
        read = sum(self._bytes.values())
        text = f"{self._done} of {_plural(self._files, 'file')} · {human_bytes(read)}"
        if not self._total_bytes:
            return text + " read"
        text += f" of {human_bytes(self._total_bytes)}"
        now = self.clock()
        seconds = now - self._started
        rate = read / seconds if read and seconds > 0 else None
        if rate and self._total_bytes > read:
            text += f" · {human_bytes(rate)}/s"
        writing = [
            (size, now - self._read_at[f] if f in self._read_at else 0.0)
            for f, size in self._sizes.items()
            if size
        ]
        eta = time_left(max(0, self._total_bytes - read), rate, self._write.per_byte, writing)
        known = self._write.per_byte is not None
        return text + left_text(eta, self._total_bytes > read, known, bool(self._sizes))

    def _file_detail(self, file: str) -> str:
        """Its bytes, speed and time left while read; then PostgreSQL's writing, with
        the time it should take once the job has shown its write rate."""
        read, size = self._bytes.get(file), self._sizes.get(file)
        if file not in self._read_at:
            if read is None or file not in self._tasks:
                return ""
            seconds = self.clock() - self._tasks[file][1]
            return progress_line(ev.BytesRead("", file, read, size), seconds).split(": ", 1)[1]
        text = f"{human_bytes(size or read or 0)} read, PostgreSQL is writing it"
        per_byte = self._write.per_byte
        if per_byte is not None and size:
            left = per_byte * size - (self.clock() - self._read_at[file])
            text += f", about {human_duration(max(0.0, left))} left"
        return text

    def _print(self, lines: list[str], style: str) -> None:
        for line in lines:
            self.console.print(line[2:] if line.startswith("  ") else line, style=style)

    @hookimpl
    def track_event(self, event: ev.Event) -> None:
        if isinstance(event, ev.JobStarted):
            self.dry_run = event.dry_run
            self.console.print(describe(event, dry_run=self.dry_run)[0], style="bold")
            self._start(event)
        elif isinstance(event, ev.FileStarted) and self._progress is not None:
            file = event.file
            task = self._progress.add_task(
                f"  {_short(file)} → {event.table}",
                total=event.size or None,
                detail=lambda: self._file_detail(file),
                t0=self.clock(),
            )
            self._tasks[file] = (task, self.clock())
            self._sizes[file] = event.size
            self._tasks_seen = True
        elif isinstance(event, ev.BytesRead) and event.file in self._tasks:
            task, _ = self._tasks[event.file]
            self._bytes[event.file] = event.bytes_read
            if event.size and event.bytes_read >= event.size:
                self._read_at.setdefault(event.file, self.clock())
            self._progress.update(task, completed=event.bytes_read)
            done = sum(self._bytes.values()) if self._total_bytes else self._done
            self._progress.update(self._overall, completed=done)
        elif isinstance(event, ev.FilePhase) and event.file in self._tasks:
            task, _ = self._tasks[event.file]
            self._progress.update(task, detail=lambda phase=event.phase: phase)
        elif isinstance(event, FILE_ENDS):
            self._file_done(event)
        elif isinstance(event, (ev.RowsRejected, ev.Warned)):
            self._print(describe(event, dry_run=self.dry_run), "yellow")
        elif isinstance(event, ev.JobFinished):
            self.close()
            self._summary(event)

    def _file_done(
        self, event: ev.FileLoaded | ev.FileFailed | ev.FileCancelled | ev.FileSkipped
    ) -> None:
        entry = self._tasks.pop(event.file, None)
        if entry is not None and self._progress is not None:
            self._progress.remove_task(entry[0])
        size, read_at = self._sizes.pop(event.file, None), self._read_at.pop(event.file, None)
        if isinstance(event, ev.FileLoaded) and read_at is not None:
            self._write.loaded(size, self.clock() - read_at)
        if entry is not None or self._tasks_seen:  # not one the plan left out
            self._done += 1
        if isinstance(event, ev.FileLoaded):
            counts = (event.rows_read, event.inserted, event.updated, event.rejected)
            cells = (*(f"{n:,}" for n in counts), f"{event.seconds:.2f}")
            self._rows.append((_short(event.file), event.table, "loaded", *cells))
        else:
            if isinstance(event, ev.FileFailed | ev.FileCancelled):
                cancelled = isinstance(event, ev.FileCancelled)
                status = "cancelled" if cancelled else "FAILED"
                table, seconds = event.table or "", f"{event.seconds:.2f}"
                self._print(
                    describe(event, dry_run=self.dry_run), "yellow" if cancelled else "bold red"
                )
            else:
                status, table, seconds = "skipped", "", ""
                self._print(describe(event, dry_run=self.dry_run), "dim")
            self._rows.append((_short(event.file), table, status, "", "", "", "", seconds))
        if self._progress is not None:
            done = sum(self._bytes.values()) if self._total_bytes else self._done
            self._progress.update(self._overall, completed=done)

    def _summary(self, event: ev.JobFinished) -> None:
        from rich.table import Table

        if self._rows:
            table = Table(box=None, pad_edge=False, header_style="bold")
            for name in ("file", "table", "status"):
                table.add_column(name)
            for name in ("rows", "inserted", "updated", "rejected", "seconds"):
                table.add_column(name, justify="right")
            for row in self._rows:
                style = "red" if row[2] == "FAILED" else "dim" if row[2] != "loaded" else None
                table.add_row(*row, style=style)
            self.console.print(table)
        ok = event.status == "succeeded"
        totals, *more = describe(event, dry_run=self.dry_run)
        self.console.print(totals, style="bold green" if ok else "bold red")
        self._print(more, "dim")

    def close(self) -> None:
        """Stop the live display; the CLI calls it even when the run raised."""
        if self._progress is not None:
            self._progress.stop()
            self._progress = None


class EventLog:
    """Keeps every event; for tests and for the JSON event stream."""

    def __init__(self) -> None:
        self.events: list[ev.Event] = []

    @hookimpl
    def track_event(self, event: ev.Event) -> None:
        self.events.append(event)

    def of(self, kind: type[Any]) -> list[Any]:
        return [e for e in self.events if isinstance(e, kind)]


class ClosedPipeSafe:
    """A stream whose reader may leave (``csvpg run job.toml | head -1``): once a write
    finds the pipe closed, output is dropped and the run goes on; the descriptor points
    at /dev/null so that Python's own flush at exit does not fail either."""

    def __init__(self, out: TextIO) -> None:
        self._out = out
        self.closed_pipe = False

    def write(self, text: str) -> int:
        if not self.closed_pipe:
            try:
                return self._out.write(text)
            except BrokenPipeError:
                self._drop()
        return len(text)

    def flush(self) -> None:
        if not self.closed_pipe:
            try:
                self._out.flush()
            except BrokenPipeError:
                self._drop()

    def _drop(self) -> None:
        import os

        self.closed_pipe = True
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, self._out.fileno())
            os.close(devnull)
        except (OSError, ValueError, AttributeError):  # not a file descriptor: nothing to do
            pass

    def __getattr__(self, name: str) -> Any:  # isatty, fileno, encoding … of the stream
        return getattr(self._out, name)


def for_stream(
    out: TextIO, *, log_format: str = "text", quiet: bool = False, every: float = 10.0
) -> LineReporter | JsonLinesReporter | RichReporter:
    """The reporter for a run printing to ``out``: JSON lines when asked, bars on a
    terminal, plain lines (with periodic progress) anywhere else. ``quiet`` prints only
    errors and the totals."""
    if log_format == "json":
        return JsonLinesReporter(out, quiet=quiet)
    isatty = getattr(out, "isatty", None)
    if isatty is not None and isatty():
        if not quiet:
            return RichReporter(out)
        return ProgressLineReporter(out, quiet=True)
    return ProgressLineReporter(out, quiet=quiet, every=every, heartbeat=True, stamped=True)


#: ``--json`` is written in pieces about this large.
JSON_PIECE = 1 << 16


def dump_json(data: dict[str, Any], out: TextIO) -> None:
    # json.dump writes each token on its own (150,000 writes for a run of 1,000 files);
    # json.dumps holds them all before joining them (with indent=2 the encoder is
    # Python's: 30 MB more for 10,000 files). Pieces: few writes, little memory.
    pending: list[str] = []
    size = 0
    for token in json.JSONEncoder(indent=2, ensure_ascii=False, default=str).iterencode(data):
        pending.append(token)
        size += len(token)
        if size >= JSON_PIECE:
            out.write("".join(pending))
            pending.clear()
            size = 0
    out.write("".join(pending) + "\n")
