"""RunView: one run as it happens, drawn from engine events.

The engine runs in a thread worker; :class:`~csvpg.tui.reporter.TuiReporter` posts each
event here as an :class:`~csvpg.tui.messages.EngineEvent`, and :meth:`RunView.on_engine_event`
folds it into a :class:`~csvpg.tui.state.RunState` and redraws what it changed. Only the
clocks of a live run tick on a timer, and nothing polls the database: only selecting a
file with more rejects than its event carried reads them from ``csvpg.rejects``.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import pluggy
from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.widgets import DataTable, RichLog, Sparkline
from textual.worker import Worker, WorkerState

from csvpg import events as ev
from csvpg.errors import CsvpgError
from csvpg.tui.history import History, PgHistory
from csvpg.tui.messages import EngineEvent
from csvpg.tui.reporter import TuiReporter
from csvpg.tui.state import RunState
from csvpg.tui.theme import Palette
from csvpg.tui.widgets.progress import InFlight, RunHeader
from csvpg.tui.widgets.tables import FilesTable, RejectsTable

if TYPE_CHECKING:
    from csvpg.api import RunHandle
    from csvpg.spec import Job
    from csvpg.summary import RunSummary

#: The log's lines by level, as roles of the theme's palette.
LOG_STYLE = {"info": "", "warning": "warning", "error": "bold error"}


class RunView(Vertical):
    DEFAULT_CSS = """
    RunView #live { height: 4; }
    RunView InFlight { width: 1fr; height: 100%; }
    RunView #throughput { width: 28; height: 100%; padding: 0 1; }
    RunView Sparkline { height: 1fr; }
    RunView Sparkline > .sparkline--min-color { color: $primary 35%; }
    RunView Sparkline > .sparkline--max-color { color: $primary; }
    RunView FilesTable { width: 100%; height: auto; max-height: 45%; min-height: 5; }
    RunView #bottom { height: 1fr; min-height: 8; }
    RunView RejectsTable { width: 2fr; height: 100%; }
    RunView RichLog { width: 1fr; height: 100%; }
    """

    class Finished(Message):
        """The engine worker ended: with a summary, or with the error that stopped it."""

        def __init__(self, summary: RunSummary | None, error: CsvpgError | None) -> None:
            super().__init__()
            self.summary, self.error = summary, error

    def __init__(self, *, history: History | None = None, id: str | None = None) -> None:
        super().__init__(id=id)
        self.state = RunState()
        self.history = history
        self.handle: RunHandle | None = None
        self.summary: RunSummary | None = None
        self.error: CsvpgError | None = None
        self.selected: str | None = None
        #: Files whose full rejects were read from csvpg.rejects.
        self._all_rejects: dict[str, list[dict[str, Any]]] = {}

    def compose(self) -> ComposeResult:
        yield RunHeader(classes="panel")
        with Horizontal(id="live"):
            yield InFlight(classes="panel")
            with Vertical(id="throughput", classes="panel"):
                yield Sparkline([])
        yield FilesTable(classes="panel")
        with Horizontal(id="bottom"):
            yield RejectsTable(classes="panel")
            yield RichLog(wrap=True, markup=False, min_width=20, classes="panel")

    def on_mount(self) -> None:
        self.query_one(InFlight).border_title = "Loading"
        self.query_one("#throughput").border_title = "Throughput"
        self.query_one(FilesTable).border_title = "Files"
        self.query_one(RejectsTable).border_title = "Rejects"
        self.query_one(RejectsTable).border_subtitle = "choose a file"
        self.query_one(RichLog).border_title = "Log"
        self.app.theme_changed_signal.subscribe(self, lambda _: self._redraw())
        self._redraw()
        # The clocks tick while a live run goes on, between events too: PostgreSQL may
        # write for minutes after the last byte was read, with no event to say so.
        self.set_interval(1.0, self._tick)

    def _tick(self) -> None:
        if self.running and self.state.started_at is not None:
            self.state.now = time.monotonic()
            self._redraw()

    # -- the engine ----------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self.handle is not None and self.summary is None and self.error is None

    def start(
        self,
        job: Job,
        pm: pluggy.PluginManager,
        dsn: str | None = None,
        *,
        dry_run: bool = False,
        force: bool = False,
    ) -> None:
        """Run ``job`` in a thread worker, with a TuiReporter registered for this run."""
        from csvpg.api import prepare

        handle = self.handle = prepare(job, pm=pm, dsn=dsn, dry_run=dry_run, force=force)
        reporter = TuiReporter(self)

        def work() -> RunSummary | CsvpgError:
            pm.register(reporter)
            try:
                return handle.run()
            except CsvpgError as exc:  # shown on an error screen; anything else is a bug
                return exc
            finally:
                pm.unregister(reporter)

        self.run_worker(work, thread=True, name="engine", group="engine")

    def cancel(self) -> None:
        """Ask the engine to stop: files in flight roll back, the rest are skipped."""
        if self.handle is not None and self.running:
            self.state.cancel_requested = True
            if self.state.status in ("starting", "running"):
                self.state.status = "cancelling"
            self.handle.cancel()
            self._redraw()

    # -- handlers --------------------------------------------------------------------------

    def on_engine_event(self, message: EngineEvent) -> None:
        event = message.event
        lines = self.state.apply(event, message.at)
        self._redraw()
        file = getattr(event, "file", None)
        if file is not None and file in self.state.files and not isinstance(event, ev.Warned):
            self.query_one(FilesTable).show_file(self.state.files[file])
        if isinstance(event, ev.BytesRead):
            self._show_throughput()
        if file is not None and file == self.selected:
            self._show_rejects()
        log, palette = self.query_one(RichLog), Palette.of(self.app)
        for level, text in lines:
            log.write(Text(text, style=palette.style(LOG_STYLE[level])))

    def on_worker_state_changed(self, message: Worker.StateChanged) -> None:
        worker = message.worker
        if worker.name == "engine" and message.state == WorkerState.SUCCESS:
            result = worker.result
            if isinstance(result, CsvpgError):
                self.error = result
                self.state.status = "failed" if self.state.finished is None else self.state.status
                style = Palette.of(self.app).style("bold error")
                self.query_one(RichLog).write(Text(f"error: {result.message}", style=style))
                self._redraw()
            else:
                self.summary = result
            self.post_message(self.Finished(self.summary, self.error))
        elif worker.name == "rejects" and message.state == WorkerState.SUCCESS:
            assert worker.result is not None
            file, rejects = worker.result
            self._all_rejects[file] = rejects
            if file == self.selected:
                self._show_rejects()

    @on(DataTable.RowHighlighted, "FilesTable")
    def _file_highlighted(self, message: DataTable.RowHighlighted) -> None:
        self.selected = message.row_key.value
        self._show_rejects()

    @on(DataTable.RowSelected, "FilesTable")
    def _file_selected(self, message: DataTable.RowSelected) -> None:
        """Enter on a file: read all its rejects from csvpg.rejects."""
        file = message.row_key.value
        f = self.state.files.get(file or "")
        history = self.history
        if history is None and self.handle is not None and not self.handle.dry_run:
            history = PgHistory(self.handle.history_dsn)
        if f is None or history is None or self.state.run_id is None:
            return
        if f.rejected <= len(f.rejects) or f.status == "loading":
            return
        run_id, store = self.state.run_id, history

        def read() -> tuple[str, list[dict[str, Any]]]:
            return f.file, store.rejects(run_id, f.file)

        self.run_worker(read, thread=True, name="rejects", group="rejects", exclusive=True)

    # -- drawing ---------------------------------------------------------------------------

    def _redraw(self) -> None:
        state = self.state
        self.query_one(RunHeader).show(state)
        self.query_one(InFlight).show(state)
        # One line per file in flight (two at least while the run goes on, eight at most)
        # and the border; a run that ended keeps a line to say nothing loads.
        lines = len(state.in_flight) or (1 if state.finished else 2)
        self.query_one("#live").styles.height = min(max(lines, 1), 8) + 2
        files = state.files.values()
        counts = [f"{state.finished_files} of {state.files_total} done"]
        failed = sum(f.status == "failed" for f in files)
        if failed:
            counts.append(f"{failed} failed")
        rejected = state.total("rejected")
        if rejected:
            counts.append(f"{rejected:,} rejected")
        self.query_one(FilesTable).border_subtitle = " · ".join(counts)

    def _show_throughput(self) -> None:
        data = self.state.throughput
        self.query_one(Sparkline).data = data
        peak = max(data, default=0.0)
        title = self.query_one("#throughput")
        amount = f"{peak:,.0f}" if peak >= 10 else f"{peak:.1f}"
        title.border_subtitle = f"peak {amount} MiB/s" if peak else ""

    def _show_rejects(self) -> None:
        table = self.query_one(RejectsTable)
        f = self.state.files.get(self.selected or "")
        if f is None:
            return
        rejects = self._all_rejects.get(f.file, f.rejects)
        table.border_title = f"Rejects · {f.name}"
        if not f.rejected:
            table.border_subtitle = "no rejects"
        elif len(rejects) < f.rejected:
            table.border_subtitle = (
                f"first {len(rejects)} of {f.rejected:,} · enter: all, from csvpg.rejects"
            )
        else:
            table.border_subtitle = f"{f.rejected:,}"
        table.show_rejects(rejects)
