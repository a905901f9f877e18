"""DashboardView: the jobs of a folder, the past runs in PostgreSQL, a run's files and a
file's rejects. Everything is read when the user asks for it (opening, moving to a run
or a file, ``r``), in thread workers, so a slow database never freezes the screen."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.message import Message
from textual.widgets import DataTable, Input, Label, Static, TabbedContent, TabPane
from textual.worker import Worker, WorkerState

from csvpg.errors import CsvpgError
from csvpg.pg.history import FileRow, RunRow
from csvpg.summary import drift_lines
from csvpg.tui.history import History, JobEntry, list_jobs, run_matches
from csvpg.tui.theme import DEFAULT_PALETTE, Palette, status_text
from csvpg.tui.widgets.tables import FilesTable, JobsTable, RejectsTable, RunsTable


class DashboardView(Vertical):
    DEFAULT_CSS = """
    DashboardView TabbedContent, DashboardView TabPane { height: 1fr; }
    DashboardView TabPane { padding: 0; }
    DashboardView DataTable { width: 100%; }
    DashboardView #filter { height: 1; border: none; padding: 0 1; margin: 0 1; }
    DashboardView RunsTable { height: auto; max-height: 30%; min-height: 5; }
    DashboardView #files-pane { height: auto; max-height: 40%; min-height: 6; }
    DashboardView FilesTable { height: auto; min-height: 2; }
    DashboardView #detail { dock: bottom; height: auto; max-height: 3; padding: 0 1; }
    DashboardView RejectsTable { height: 1fr; min-height: 5; }
    DashboardView JobsTable { height: auto; max-height: 70%; min-height: 5; }
    DashboardView #job-about { height: auto; min-height: 4; max-height: 30%; padding: 0 1; }
    DashboardView #status { color: $text-error; padding: 0 1; display: none; }
    DashboardView #status.shown { display: block; }
    """

    class StartJob(Message):
        """The user chose a job to run."""

        def __init__(self, path: Path) -> None:
            super().__init__()
            self.path = path

    def __init__(self, history: History | None, jobs_dir: Path | None) -> None:
        super().__init__()
        self.history = history
        self.jobs_dir = jobs_dir
        self.run_id: str | None = None
        self.jobs: dict[str, JobEntry] = {}
        self.runs: list[RunRow] = []
        self.files: dict[str, FileRow] = {}
        self._detail: Callable[[Palette], Text | str] = lambda palette: ""

    def compose(self) -> ComposeResult:
        with TabbedContent(id="tabs"):
            with TabPane("Runs", id="runs"):
                yield Input(
                    placeholder="/ filter: a job, failed, rejects, since:2026-03-01",
                    id="filter",
                )
                yield RunsTable(classes="panel")
                with Vertical(id="files-pane", classes="panel"):
                    yield FilesTable()
                    yield Static("", id="detail")
                yield RejectsTable(classes="panel")
            with TabPane("Jobs", id="jobs"):
                yield JobsTable(classes="panel")
                yield Static("", id="job-about", classes="panel")
        yield Label("", id="status")

    def on_mount(self) -> None:
        self._title(JobsTable, self._jobs_title(), "enter runs the chosen one")
        self._title("#job-about", "Job")
        self._title(RunsTable, "Runs")
        self._title("#files-pane", "Files", "choose a run")
        self._title(RejectsTable, "Rejects", "choose a file")
        self.app.theme_changed_signal.subscribe(self, lambda _: self._show_detail(self._detail))
        self.reload()
        self.query_one(RunsTable).focus()

    def _jobs_title(self) -> str:
        return f"Jobs in {self.jobs_dir}" if self.jobs_dir else "Jobs: no jobs folder (--jobs)"

    def _title(self, panel: Any, title: str, subtitle: str = "") -> None:
        widget = self.query_one(panel)
        widget.border_title, widget.border_subtitle = title, subtitle

    def _say(self, text: str | Text) -> None:
        """A line under the tabs: why nothing shows (no runs, none match, an error)."""
        status = self.query_one("#status", Label)
        status.update(text)
        status.set_class(bool(str(text)), "shown")

    def show_tab(self, tab: str) -> None:
        self.query_one(TabbedContent).active = tab
        table = self.query_one(RunsTable if tab == "runs" else JobsTable)
        table.focus()

    def focus_filter(self) -> None:
        self.show_tab("runs")
        self.query_one("#filter", Input).focus()

    @on(Input.Changed, "#filter")
    def _filter_changed(self, message: Input.Changed) -> None:
        self._show_runs()

    @on(Input.Submitted, "#filter")
    def _filter_done(self, message: Input.Submitted) -> None:
        self.query_one(RunsTable).focus()

    def _show_runs(self) -> None:
        query = self.query_one("#filter", Input).value
        shown = [r for r in self.runs if run_matches(r, query)]
        self.query_one(RunsTable).show_runs(shown)
        count = (
            f"{len(self.runs)} runs"
            if len(shown) == len(self.runs)
            else (f"{len(shown)} of {len(self.runs)} runs match")
        )
        self._title(RunsTable, "Runs", count)
        if not self.runs:
            self._say("no runs recorded in this database yet")
        elif not shown:
            self._say(f"no run matches {query!r}")
        else:
            self._say("")

    def reload(self) -> None:
        """Read the jobs and the runs again."""
        jobs_dir, history = self.jobs_dir, self.history
        if jobs_dir is not None:
            self._read("jobs", lambda: list_jobs(jobs_dir))
        if history is not None:
            self._read("runs", history.runs)

    def _read(self, name: str, question: Callable[[], Any]) -> None:
        def work() -> Any:
            try:
                return question()
            except CsvpgError as exc:  # an unreachable database: said, not raised
                return exc

        self.run_worker(work, thread=True, name=name, group=name, exclusive=True)

    def on_worker_state_changed(self, message: Worker.StateChanged) -> None:
        if message.state != WorkerState.SUCCESS:
            return
        name, result = message.worker.name, message.worker.result
        if result is None:
            return
        if isinstance(result, CsvpgError):
            self._say(Text(f"error: {result.message}"))
            return
        if name == "jobs":
            self.jobs = {str(j.path): j for j in result}
            self.query_one(JobsTable).show_jobs(result)
            jobs = f"{len(result)} job{'s' if len(result) != 1 else ''}"
            self._title(JobsTable, self._jobs_title(), f"{jobs} · enter runs the chosen one")
        elif name == "runs":
            self.runs = result
            self._show_runs()
        elif name == "files":
            self.files = {f.file: f for f in result}
            self.query_one(FilesTable).show_rows(result)
            self._title("#files-pane", self._files_title(), files_count(result))
        elif name == "rejects":
            file, rejects = result
            name_ = Path(file).name
            self._title(
                RejectsTable, f"Rejects · {name_}", f"{len(rejects):,}" if rejects else "no rejects"
            )
            self.query_one(RejectsTable).show_rejects(rejects)

    @on(DataTable.RowHighlighted, "RunsTable")
    def _run_highlighted(self, message: DataTable.RowHighlighted) -> None:
        run_id, history = message.row_key.value, self.history
        if run_id is None or history is None:
            return
        self.run_id = run_id
        self._title("#files-pane", self._files_title(), "")
        run = next((r for r in self.runs if r.id == run_id), None)
        self._show_detail(lambda palette: run_detail(run, palette) if run else "")
        self.query_one(RejectsTable).clear()
        self._read("files", lambda: history.files(run_id))

    def _show_detail(self, detail: Callable[[Palette], Text | str]) -> None:
        """The chosen run's or file's detail under the files; kept to be drawn again in
        the colours of a theme picked later."""
        self._detail = detail
        self.query_one("#detail", Static).update(detail(Palette.of(self.app)))

    def _files_title(self) -> str:
        return f"Files of run {self.run_id[:8]}" if self.run_id else "Files"

    @on(DataTable.RowHighlighted, "FilesTable")
    def _file_highlighted(self, message: DataTable.RowHighlighted) -> None:
        file, run_id, history = message.row_key.value, self.run_id, self.history
        if file is None or run_id is None or history is None:
            return
        row = self.files.get(file)
        run = next((r for r in self.runs if r.id == run_id), None)

        def detail(palette: Palette) -> Text | str:
            if row is not None and (row.error or row.drift):
                return file_detail(row, palette)
            return run_detail(run, palette) if run else ""

        self._show_detail(detail)
        self._read("rejects", lambda: (file, history.rejects(run_id, file)))

    @on(DataTable.RowHighlighted, "JobsTable")
    def _job_highlighted(self, message: DataTable.RowHighlighted) -> None:
        job = self.jobs.get(message.row_key.value or "")
        about = self.query_one("#job-about", Static)
        if job is None:
            about.update("")
        elif job.error:
            about.update(
                Text.assemble(
                    (f"{job.path}\n", "dim"),
                    ("error: ", Palette.of(self.app).style("bold error")),
                    job.error,
                )
            )
        else:
            about.update(Text.assemble((f"{job.path}\n", "dim"), job.description))

    @on(DataTable.RowSelected, "JobsTable")
    def _job_selected(self, message: DataTable.RowSelected) -> None:
        if message.row_key.value is not None:
            self.post_message(self.StartJob(Path(message.row_key.value)))


def files_count(files: list[FileRow]) -> str:
    """``6 files · 1 failed · 100 rejected``"""
    counts = [f"{len(files)} file{'s' if len(files) != 1 else ''}"]
    failed = sum(f.status == "failed" for f in files)
    if failed:
        counts.append(f"{failed} failed")
    rejected = sum(f.rejected or 0 for f in files)
    if rejected:
        counts.append(f"{rejected:,} rejected")
    return " · ".join(counts)


def run_detail(run: RunRow, palette: Palette = DEFAULT_PALETTE) -> Text:
    """A run's error and hint, and where its webhooks went, under its files."""
    text = Text.assemble(("run ", "dim"), run.id, "  ", status_text(run.status, palette))
    if run.error:
        text.append("\nerror: ", style=palette.style("bold error"))
        text.append(run.error)
    if run.hint:
        text.append("\nhint: ", style="bold")
        text.append(run.hint)
    for n in run.notifications:
        answer = f"HTTP {n.http_status}" if n.http_status else (n.error or "")
        text.append(f"\nwebhook {n.url or ''}: ", style="dim")
        text.append(f"{n.status} after {n.attempts} attempt(s) {answer}".rstrip())
    return text


def file_detail(row: FileRow, palette: Palette = DEFAULT_PALETTE) -> Text:
    """A failed file's error and hint, as ``csvpg run`` printed them; what its load
    changed in its table or left out (``[sink] schema``)."""
    text = Text.assemble((Path(row.file).name, "bold"), ": ")
    if row.error:
        text.append("error: ", style=palette.style("bold error"))
        text.append(row.error)
    if row.hint:
        text.append("\nhint: ", style="bold")
        text.append(row.hint)
    for i, line in enumerate(drift_lines(row.drift or {})):
        text.append("\n" if i or row.error else "")
        text.append("schema: ", style=palette.style("bold warning"))
        text.append(line)
    return text
