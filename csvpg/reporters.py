"""Reporters: plugins that turn engine events into output. The CLI registers one per run."""

from __future__ import annotations

import json
from pathlib import PurePosixPath
from typing import Any, TextIO

from csvpg import events as ev
from csvpg.hookspecs import hookimpl


def _short(url: str) -> str:
    return PurePosixPath(url).name or url


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


class LineReporter:
    """One line per file as it ends, then a totals line: for terminals, logs and cron."""

    def __init__(self, out: TextIO, *, quiet: bool = False) -> None:
        self.out = out
        self.quiet = quiet

    def _say(self, text: str) -> None:
        print(text, file=self.out, flush=True)

    @hookimpl
    def track_event(self, event: ev.Event) -> None:
        if isinstance(event, ev.JobStarted) and not self.quiet:
            self._say(f"job {event.job}: {_plural(event.files, 'file')} → {event.database}")
        elif isinstance(event, ev.FileLoaded) and not self.quiet:
            counts = f"{event.inserted} inserted, {event.updated} updated"
            if event.collapsed:
                counts += f", {event.collapsed} duplicate keys collapsed"
            if event.rejected:
                counts += f", {event.rejected} rejected"
            self._say(
                f"  loaded  {_short(event.file)} → {event.table}: "
                f"{_plural(event.rows_read, 'row')} ({counts}) in {event.seconds:.2f} s"
            )
        elif isinstance(event, ev.FileFailed):
            self._say(f"  FAILED  {_short(event.file)} → {event.table}: {event.message}")
            if event.hint:
                self._say(f"          hint: {event.hint}")
        elif isinstance(event, ev.FileSkipped) and not self.quiet:
            self._say(f"  skipped {_short(event.file)}: {event.reason}")
        elif isinstance(event, ev.RowsRejected):
            self._say(f"  {_plural(event.count, 'row')} of {_short(event.file)} set aside:")
            for r in event.first[:5]:
                where = f"line {r['line']}" + (f", column {r['column']}" if r["column"] else "")
                self._say(f"          {where}: {r['reason']}")
            if event.count > 5:
                self._say(
                    f"          … {event.count - 5} more in csvpg.rejects (run {event.run_id})"
                )
        elif isinstance(event, ev.Warned):
            self._say(f"  warning: {event.message}")
        elif isinstance(event, ev.JobFinished):
            files = _plural(event.files_loaded, "file") + " loaded"
            if event.files_failed:
                files += f", {event.files_failed} failed"
            if event.files_skipped:
                files += f", {event.files_skipped} skipped"
            self._say(
                f"{event.status}: {files}; {_plural(event.rows_read, 'row')} read, "
                f"{event.inserted} inserted, {event.updated} updated"
                + (f", {event.rejected} rejected" if event.rejected else "")
                + f" in {event.seconds:.2f} s"
            )


class EventLog:
    """Keeps every event; for tests and for the JSON event stream."""

    def __init__(self) -> None:
        self.events: list[ev.Event] = []

    @hookimpl
    def track_event(self, event: ev.Event) -> None:
        self.events.append(event)

    def of(self, kind: type[Any]) -> list[Any]:
        return [e for e in self.events if isinstance(e, kind)]


def dump_json(data: dict[str, Any], out: TextIO) -> None:
    json.dump(data, out, indent=2, ensure_ascii=False, default=str)
    out.write("\n")
