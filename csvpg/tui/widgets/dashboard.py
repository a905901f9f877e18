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
from csvpg.tui.widgets.tables import FilesTable, JobsTable, RejectsTable, RunsTable


class DashboardView(Vertical):
    DEFAULT_CSS = """
    DashboardView TabbedContent, DashboardView TabPane { height: 1fr; }
    DashboardView TabPane { padding: 0; }
    DashboardView RunsTable { height: 1fr; min-height: 4; }
    DashboardView #files-pane { height: 1fr; min-height: 7; }
    DashboardView FilesTable { min-height: 4; }
    DashboardView #rejects-pane { height: 1fr; min-height: 4; max-height: 14; }
    DashboardView #filter { height: 1; border: none; padding: 0 1; }
    DashboardView #detail { height: auto; max-height: 3; padding: 0 1; }
    DashboardView Label { color: $text-muted; padding: 0 1; }
    DashboardView #status { color: $error; }
    DashboardView #job-about { height: auto; padding: 1 1; }
    DashboardView DataTable { height: 1fr; }
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

    def compose(self) -> ComposeResult:
        with TabbedContent(id="tabs"):
            with TabPane("Runs", id="runs"):
                yield Input(
                    placeholder="/ filter: a job, failed, rejects, since:2026-03-01",
                    id="filter",
                )
                yield RunsTable()
                with Vertical(id="files-pane"):
                    yield Label("files: choose a run", id="files-title")
                    yield FilesTable()
                    yield Static("", id="detail")
                with Vertical(id="rejects-pane"):
                    yield Label("rejects: choose a file", id="rejects-title")
                    yield RejectsTable()
            with TabPane("Jobs", id="jobs"):
                where = str(self.jobs_dir) if self.jobs_dir else "no jobs folder (--jobs)"
                yield Label(f"jobs in {where}; enter runs the chosen one", id="jobs-title")
                yield JobsTable()
                yield Static("", id="job-about")
        yield Label("", id="status")

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
        status = self.query_one("#status", Label)
        if not self.runs:
            status.update("no runs recorded in this database yet")
        elif not shown:
            status.update(f"no run matches {query!r}")
        else:
            status.update("")

    def on_mount(self) -> None:
        self.reload()
        self.query_one(RunsTable).focus()

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
        status = self.query_one("#status", Label)
        if isinstance(result, CsvpgError):
            status.update(Text(f"error: {result.message}"))
            return
        if name == "jobs":
            self.jobs = {str(j.path): j for j in result}
            self.query_one(JobsTable).show_jobs(result)
        elif name == "runs":
            self.runs = result
            self._show_runs()
        elif name == "files":
            self.files = {f.file: f for f in result}
            self.query_one(FilesTable).show_rows(result)
        elif name == "rejects":
            file, rejects = result
            name_ = Path(file).name
            title = f"rejects of {name_}: {len(rejects):,}" if rejects else f"{name_}: no rejects"
            self.query_one("#rejects-title", Label).update(title)
            self.query_one(RejectsTable).show_rejects(rejects)

    @on(DataTable.RowHighlighted, "RunsTable")
    def _run_highlighted(self, message: DataTable.RowHighlighted) -> None:
        run_id, history = message.row_key.value, self.history
        if run_id is None or history is None:
            return
        self.run_id = run_id
        self.query_one("#files-title", Label).update(f"files of run {run_id[:8]}")
        run = next((r for r in self.runs if r.id == run_id), None)
        self.query_one("#detail", Static).update(run_detail(run) if run else "")
        self.query_one(RejectsTable).clear()
        self._read("files", lambda: history.files(run_id))

    @on(DataTable.RowHighlighted, "FilesTable")
    def _file_highlighted(self, message: DataTable.RowHighlighted) -> None:
        file, run_id, history = message.row_key.value, self.run_id, self.history
        if file is None or run_id is None or history is None:
            return
        row = self.files.get(file)
        run = next((r for r in self.runs if r.id == run_id), None)
        detail = (
            file_detail(row)
            if row is not None and (row.error or row.drift)
            else run_detail(run)
            if run
            else ""
        )
        self.query_one("#detail", Static).update(detail)
        self._read("rejects", lambda: (file, history.rejects(run_id, file)))

    @on(DataTable.RowHighlighted, "JobsTable")
    def _job_highlighted(self, message: DataTable.RowHighlighted) -> None:
        job = self.jobs.get(message.row_key.value or "")
        about = self.query_one("#job-about", Static)
        if job is None:
            about.update("")
        elif job.error:
            about.update(
                Text.assemble((f"{job.path}\n", "dim"), ("error: ", "bold red"), job.error)
            )
        else:
            about.update(Text.assemble((f"{job.path}\n", "dim"), job.description))

    @on(DataTable.RowSelected, "JobsTable")
    def _job_selected(self, message: DataTable.RowSelected) -> None:
        if message.row_key.value is not None:
            self.post_message(self.StartJob(Path(message.row_key.value)))


def run_detail(run: RunRow) -> Text:
    """A run's error and hint, and where its webhooks went, under its files."""
    text = Text.assemble(("run ", "dim"), run.id, ("  ", ""), (run.status, "bold"))
    if run.error:
        text.append("\nerror: ", style="bold red")
        text.append(run.error)
    if run.hint:
        text.append("\nhint: ", style="bold")
        text.append(run.hint)
    for n in run.notifications:
        answer = f"HTTP {n.http_status}" if n.http_status else (n.error or "")
        text.append(f"\nwebhook {n.url or ''}: ", style="dim")
        text.append(f"{n.status} after {n.attempts} attempt(s) {answer}".rstrip())
    return text


def file_detail(row: FileRow) -> Text:
    """A failed file's error and hint, as ``csvpg run`` printed them; what its load
    changed in its table or left out (``[sink] schema``)."""
    text = Text.assemble((Path(row.file).name, "bold"), ": ")
    if row.error:
        text.append("error: ", style="bold red")
        text.append(row.error)
    if row.hint:
        text.append("\nhint: ", style="bold")
        text.append(row.hint)
    for i, line in enumerate(drift_lines(row.drift or {})):
        text.append("\n" if i or row.error else "")
        text.append("schema: ", style="bold yellow")
        text.append(line)
    return text
