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
from csvpg.tui.theme import DEFAULT_PALETTE, Palette, status_text


def _bar(done: float, total: float, width: int, palette: Palette) -> ProgressBar:
    return ProgressBar(
        total=max(total, 1),
        completed=min(done, total),
        width=width,
        complete_style=palette.primary,
        finished_style=palette.success,
    )


class RunHeader(Static):
    """Status, clock and files done; an overall bar (bytes or files done of all) and the
    totals. Its border names the job, the run and the database."""

    DEFAULT_CSS = """
    RunHeader { height: auto; padding: 0 1; }
    """

    def show(self, state: RunState) -> None:
        self.border_title = f"csvpg · job {state.job or '…'}"
        where = [f"run {state.run_id[:8]}"] if state.run_id else []
        if state.database:
            where.append(f"→ {state.database}")
        self.border_subtitle = " ".join(where)
        self.update(self.render_state(state, Palette.of(self.app)))

    @staticmethod
    def render_state(state: RunState, palette: Palette = DEFAULT_PALETTE) -> RenderableType:
        status = Text.assemble(status_text(state.status, palette))
        status.append(f"  {human_duration(state.elapsed)}", style="bold")
        status.append(
            f"    {state.finished_files} of {state.files_total} files done"
            f" · {len(state.in_flight)} loading · {state.queued} queued"
        )
        bar = Table.grid(padding=(0, 1))
        bar.add_column(width=30)
        bar.add_column()
        counts = (
            f"{state.total('rows_read'):,} rows read · {state.total('inserted'):,} inserted"
            f" · {state.total('updated'):,} updated · {state.total('rejected'):,} rejected"
        )
        bar.add_row(_overall_bar(state, palette), Text(_overall_bytes(state)))
        return Group(status, bar, Text(counts, style="dim"))


def _overall_bar(state: RunState, palette: Palette) -> ProgressBar:
    """Bytes read of all the run's files when their sizes are known, else files done."""
    if state.bytes_total:
        return _bar(state.bytes_read, state.bytes_total, 30, palette)
    return _bar(state.finished_files, state.files_total, 30, palette)


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
    InFlight { padding: 0 1; }
    """

    def show(self, state: RunState) -> None:
        loading = len(state.in_flight)
        self.border_subtitle = f"{loading} file{'s' if loading != 1 else ''}" if loading else ""
        self.update(self.render_state(state, Palette.of(self.app)))

    @staticmethod
    def render_state(state: RunState, palette: Palette = DEFAULT_PALETTE) -> RenderableType:
        files, now = state.in_flight, state.now
        if not files:
            what = "nothing loading" if state.finished or state.started else "waiting for files"
            return Text(what, style="dim")
        table = Table.grid(padding=(0, 1), expand=True)
        # The name and the bar keep their room on a narrow screen; the rest is cut.
        table.add_column(no_wrap=True, overflow="ellipsis", min_width=14)
        table.add_column(width=16)
        table.add_column(justify="right", no_wrap=True, overflow="ellipsis")
        table.add_column(ratio=1, no_wrap=True, overflow="ellipsis")
        for f in files:
            table.add_row(*_file_cells(f, now, palette, state.write_per_byte))
        return table


#: What a file in flight says once its bytes no longer show its progress.
PHASE_TEXT = {"writing": "PostgreSQL is writing", "checking bad rows": "checking bad rows"}


def _file_cells(
    f: FileState, now: float | None, palette: Palette, write_per_byte: float | None = None
) -> tuple[RenderableType, ...]:
    """Name, bar, bytes, then speed and time left: PostgreSQL's writing after the read is
    in it once the job's write rate is known (``write_per_byte``), else it is the
    read's. Once read, the phase and its clock stand for the speed and time left."""
    name = Text.assemble(("● ", palette.primary), (f.name, "bold"))
    if f.size:
        bar: RenderableType = _bar(f.bytes_read, f.size, 16, palette)
        amount = f"{human_bytes(f.bytes_read)} of {human_bytes(f.size)}"
    else:
        bar, amount = Text("size unknown", style="dim"), human_bytes(f.bytes_read)
    rate = f"{human_bytes(f.rate)}/s" if f.rate else ""
    writes = write_per_byte * f.size if write_per_byte is not None and f.size else None
    eta = ""
    if f.eta is not None:
        eta = f"{human_duration(f.eta + (writes or 0.0))} {'left' if writes else 'to read'}"
    if f.phase != "reading":  # read; PostgreSQL (or the careful path) still works on it
        spent = f.phase_seconds(now)
        text = f"{PHASE_TEXT.get(f.phase, f.phase)} {human_duration(spent)}"
        if writes is not None and f.phase == "writing":
            text += f", about {human_duration(max(0.0, writes - spent))} left"
        return name, bar, amount, Text(text, style="italic")
    return name, bar, amount, Text(" · ".join(t for t in (rate, eta) if t), style="dim")
