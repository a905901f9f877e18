"""The run's header (job, status, overall bar) and the files in flight, each drawn from a
:class:`~csvpg.tui.state.RunState` when an event changed it."""

from __future__ import annotations

from rich.console import Group, RenderableType
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text
from textual.widgets import Static

from csvpg.reporters import human_bytes, human_duration, left_text
from csvpg.tui.state import FileState, RunState

STATUS_STYLE = {
    "starting": "dim",
    "queued": "dim cyan",
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
        )
        bar = Table.grid(padding=(0, 1))
        bar.add_column(width=30)
        bar.add_column()
        counts = (
            f"{state.total('rows_read'):,} rows read · {state.total('inserted'):,} inserted"
            f" · {state.total('updated'):,} updated · {state.total('rejected'):,} rejected"
        )
        bar.add_row(_overall_bar(state), Text(_overall_bytes(state)))
        bar.add_row("", Text(counts, style="dim"))
        return Group(title, status, bar)


def _overall_bar(state: RunState) -> ProgressBar:
    """Bytes read of all the run's files when their sizes are known, else files done."""
    if state.bytes_total:
        return _bar(state.bytes_read, state.bytes_total, 30)
    return _bar(state.finished_files, state.files_total, 30)


def _overall_bytes(state: RunState) -> str:
    """``1.2 GiB of 3.0 GiB · 85.0 MiB/s · about 40 s left``"""
    text = human_bytes(state.bytes_read)
    text += f" of {human_bytes(state.bytes_total)}" if state.bytes_total else " read"
    if state.rate and state.running:
        text += f" · {human_bytes(state.rate)}/s"
    if not state.bytes_total:
        return text
    return text + left_text(
        state.eta,
        state.bytes_read < (state.bytes_total or 0),
        state.write_per_byte is not None,
        bool(state.in_flight),
    )


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
        files, now = state.in_flight, state.now
        if not files:
            what = "nothing loading" if state.finished or state.started else "waiting for files"
            return Text(what, style="dim")
        table = Table.grid(padding=(0, 1), expand=True)
        table.add_column(ratio=1, no_wrap=True, overflow="ellipsis", min_width=22)
        table.add_column(width=20)
        table.add_column(justify="right", no_wrap=True)
        table.add_column(justify="right", no_wrap=True)
        table.add_column(no_wrap=True)
        for f in files:
            table.add_row(*_file_cells(f, now, state.write_per_byte))
        return table


#: What a file in flight says once its bytes no longer show its progress.
PHASE_TEXT = {"writing": "PostgreSQL is writing", "checking bad rows": "checking bad rows"}


def _file_cells(
    f: FileState, now: float | None, write_per_byte: float | None = None
) -> tuple[RenderableType, ...]:
    """Name, bar, bytes, speed and time left: PostgreSQL's writing after the read is in
    it once the job's write rate is known (``write_per_byte``), else it is the read's."""
    name = Text(f.name, style="bold")
    if f.size:
        bar: RenderableType = _bar(f.bytes_read, f.size, 20)
        amount = f"{human_bytes(f.bytes_read)} of {human_bytes(f.size)}"
    else:
        bar, amount = Text("size unknown", style="dim"), human_bytes(f.bytes_read)
    rate = f"{human_bytes(f.rate)}/s" if f.rate else ""
    writes = write_per_byte * f.size if write_per_byte is not None and f.size else None
    eta: RenderableType = ""
    if f.eta is not None:
        eta = f"{human_duration(f.eta + (writes or 0.0))} {'left' if writes else 'to read'}"
    if f.phase != "reading":  # read; PostgreSQL (or the careful path) still works on it
        rate, spent = "", f.phase_seconds(now)
        text = f"{PHASE_TEXT.get(f.phase, f.phase)} {human_duration(spent)}"
        if writes is not None and f.phase == "writing":
            text += f", about {human_duration(max(0.0, writes - spent))} left"
        eta = Text(text, style="italic")
    return name, bar, amount, rate, eta
