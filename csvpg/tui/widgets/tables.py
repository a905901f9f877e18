"""The tables: files of a run (live or past), their rejects, past runs, and jobs."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import PurePosixPath
from typing import Any

from rich.text import Text
from textual.widgets import DataTable
from textual.widgets.data_table import RowDoesNotExist

from csvpg.pg.history import FileRow, RunRow
from csvpg.tui.history import JobEntry
from csvpg.tui.state import FileState
from csvpg.tui.theme import Palette, status_text


class ThemedTable(DataTable[Any]):
    """A table whose status cells are drawn in the theme's colours: drawn again when the
    user picks another theme."""

    STATUS_COLUMN = "status"

    @property
    def palette(self) -> Palette:
        return Palette.of(self.app)

    def status_cell(self, status: str) -> Text:
        return status_text(status, self.palette)

    def on_mount(self) -> None:
        self.app.theme_changed_signal.subscribe(self, lambda _: self._restyle())

    def _restyle(self) -> None:
        if self.STATUS_COLUMN not in self.columns:
            return
        for key in list(self.rows):
            cell = self.get_cell(key, self.STATUS_COLUMN)
            status = cell.plain.split()[-1] if isinstance(cell, Text) else str(cell)
            self.update_cell(key, self.STATUS_COLUMN, self.status_cell(status))


def _num(value: int | None) -> Text:
    return Text("" if value is None else f"{value:,}", justify="right")


def _seconds(value: float | None) -> Text:
    return Text("" if value is None else f"{value:.2f}", justify="right")


def _one_line(raw: str | None, width: int = 60) -> str:
    """A raw line as one table cell: its line ends shown, cut to ``width``."""
    text = (raw or "").rstrip("\r\n").replace("\r", "\\r").replace("\n", "\\n")
    return text if len(text) <= width else text[: width - 1] + "…"


def _name(url: str) -> str:
    return PurePosixPath(url).name or url


class FilesTable(ThemedTable):
    """A run's files, one row each, keyed by URL; a live run updates its rows in place."""

    COLUMNS = ("status", "file", "table", "rows", "inserted", "updated", "rejected", "seconds")

    def on_mount(self) -> None:
        self.cursor_type = "row"
        self.zebra_stripes = True
        for name in self.COLUMNS:
            self.add_column(name, key=name)

    def show_file(self, f: FileState) -> None:
        done = f.status in ("loaded",)
        cells = {
            "status": self.status_cell(f.status),
            "file": f.name,
            "table": f.table or "",
            "rows": _num(f.rows_read if done else None),
            "inserted": _num(f.inserted if done else None),
            "updated": _num(f.updated if done else None),
            "rejected": _num(f.rejected or None if f.status != "skipped" else None),
            "seconds": _seconds(f.seconds),
        }
        self._put(f.file, cells)

    def show_rows(self, rows: Iterable[FileRow]) -> None:
        self.clear()
        for r in rows:
            loaded = r.status == "loaded"
            self._put(
                r.file,
                {
                    "status": self.status_cell(r.status),
                    "file": _name(r.file),
                    "table": r.table or "",
                    "rows": _num(r.rows_read if loaded else None),
                    "inserted": _num(r.inserted if loaded else None),
                    "updated": _num(r.updated if loaded else None),
                    "rejected": _num(r.rejected or None),
                    "seconds": _seconds(r.seconds),
                },
            )

    def _put(self, key: str, cells: dict[str, Any]) -> None:
        try:
            self.get_row_index(key)
        except RowDoesNotExist:
            self.add_row(*(cells[c] for c in self.COLUMNS), key=key)
            return
        for column, value in cells.items():
            self.update_cell(key, column, value, update_width=True)


class RejectsTable(DataTable[Any]):
    """One file's rejected lines: line number, column, value, PostgreSQL's reason and the
    line as the file had it."""

    def on_mount(self) -> None:
        self.cursor_type = "row"
        self.add_column("line", key="line")
        self.add_column("column", key="column")
        self.add_column("value", key="value")
        self.add_column("reason", key="reason")
        self.add_column("raw line", key="raw")

    def show_rejects(self, rejects: Iterable[dict[str, Any]]) -> None:
        self.clear()
        for r in rejects:
            value = r.get("value")
            self.add_row(
                _num(r.get("line")),
                r.get("column") or "",
                "" if value is None else str(value)[:20],
                r.get("reason") or "",
                Text(_one_line(r.get("raw")), style="dim"),
            )


class RunsTable(ThemedTable):
    """Past runs, newest first, keyed by run id; of each run's rejects, how many are
    still open and how many a replay resolved (``csvpg rejects RUN --replay``)."""

    COLUMNS = ("started", "run", "job", "status", "files", "failed", "rows", "inserted")

    def on_mount(self) -> None:
        self.cursor_type = "row"
        self.zebra_stripes = True
        for name in (*self.COLUMNS, "updated", "rejected", "open", "resolved", "seconds"):
            self.add_column(name, key=name)

    def show_runs(self, runs: Iterable[RunRow]) -> None:
        self.clear()
        for r in runs:
            self.add_row(
                r.started_at.strftime("%Y-%m-%d %H:%M"),
                r.id[:8],
                r.job,
                self.status_cell(r.status),
                _num(r.files),
                _num(r.files_failed or None),
                _num(r.rows_read),
                _num(r.inserted),
                _num(r.updated),
                _num(r.rejected or None),
                _num(r.rejects_open or None),
                _num(r.rejects_resolved or None),
                _seconds(r.seconds),
                key=r.id,
            )


class JobsTable(DataTable[Any]):
    """The jobs of the jobs folder; a job that does not read says so."""

    def on_mount(self) -> None:
        self.cursor_type = "row"
        self.add_column("job", key="job")
        self.add_column("file", key="file")
        self.add_column("about", key="about")

    def show_jobs(self, jobs: Iterable[JobEntry]) -> None:
        self.clear()
        for j in jobs:
            if j.error:
                about = Text("cannot run: " + j.error, style=Palette.of(self.app).error)
            else:
                about = Text(j.description, style="dim")
            about.truncate(72, overflow="ellipsis")
            self.add_row(j.name, j.path.name, about, key=str(j.path))
