"""The run's header (job, status, overall bar) and the files in flight, each drawn from a
:class:`~csvpg.tui.state.RunState` when an event changed it."""

from __future__ import annotations

from rich.console import Group, RenderableType
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text
from textual.widgets import Static

from csvpg.reporters import human_bytes, human_duration
from csvpg.tui.state import FileState, RunState

STATUS_STYLE = {
    "starting": "dim",
    "running": "bold cyan",
    "cancelling": "bold yellow",
    "succeeded": "bold green",
    "partial": "bold yellow",
    "failed": "bold red",
    "cancelled": "bold yellow",
}


def _bar(done: float, total: float, width: int) -> ProgressBar:
    return ProgressBar(total=max(total, 1), completed=min(done, total), width=width)


class RunHeader(Static):
    """Job, database, run id and status; an overall bar (files done of all) and totals."""

    DEFAULT_CSS = """
    RunHeader { height: 4; padding: 0 1; background: $boost; }
    """

    def show(self, state: RunState) -> None:
        self.update(self.render_state(state))

    @staticmethod
    def render_state(state: RunState) -> RenderableType:
        title = Text()
        title.append(f"job {state.job or '…'}", style="bold")
        if state.run_id:
            title.append(f"  run {state.run_id[:8]}", style="dim")
        if state.database:
            title.append(f"  → {state.database}", style="dim")
        status = Text()
        status.append(state.status, style=STATUS_STYLE.get(state.status, "bold"))
        status.append(f"  {human_duration(state.elapsed)}  ")
        status.append(
            f"  {state.finished_files} of {state.files_total} files done"
            f" · {len(state.in_flight)} loading · {state.queued} queued"
            f" · {human_bytes(state.bytes_read)} read"
        )
        bar = Table.grid(padding=(0, 1))
        bar.add_column(width=30)
        bar.add_column()
        counts = (
            f"{state.total('rows_read'):,} rows read · {state.total('inserted'):,} inserted"
            f" · {state.total('updated'):,} updated · {state.total('rejected'):,} rejected"
        )
        bar.add_row(_bar(state.finished_files, state.files_total, 30), Text(counts))
        return Group(title, status, bar)


class InFlight(Static):
    """One line per file loading: bytes read of its size, speed, time left. Rows are
    counted by PostgreSQL, so they appear in the files table once a file is done."""

    DEFAULT_CSS = """
    InFlight { height: auto; min-height: 3; max-height: 12; padding: 0 1; }
    """

    def show(self, state: RunState) -> None:
        self.update(self.render_state(state))

    @staticmethod
    def render_state(state: RunState) -> RenderableType:
        files = state.in_flight
        if not files:
            what = "nothing loading" if state.finished or state.started else "waiting for files"
            return Text(what, style="dim")
        table = Table.grid(padding=(0, 1), expand=True)
        table.add_column(ratio=1, no_wrap=True, overflow="ellipsis", min_width=12)
        table.add_column(width=20)
        table.add_column(justify="right", no_wrap=True)
        table.add_column(justify="right", no_wrap=True)
        table.add_column(no_wrap=True)
        for f in files:
            table.add_row(*_file_cells(f))
        return table


def _file_cells(f: FileState) -> tuple[RenderableType, ...]:
    name = Text(f.name, style="bold")
    if f.size:
        bar: RenderableType = _bar(f.bytes_read, f.size, 20)
        amount = f"{human_bytes(f.bytes_read)} of {human_bytes(f.size)}"
    else:
        bar, amount = Text("size unknown", style="dim"), human_bytes(f.bytes_read)
    rate = f"{human_bytes(f.rate)}/s" if f.rate else ""
    eta: RenderableType = f"{human_duration(f.eta)} left" if f.eta is not None else ""
    if f.size and f.bytes_read >= f.size:  # read; PostgreSQL still works on it
        rate, eta = "", Text("writing", style="italic")
    return name, bar, amount, rate, eta
