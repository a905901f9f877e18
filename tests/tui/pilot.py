"""Helpers for driving the app with Textual's pilot."""

from __future__ import annotations

import io
import time
from collections.abc import Callable
from typing import Any

from rich.console import Console
from rich.text import Text
from textual.pilot import Pilot
from textual.widgets import DataTable, Static


async def wait_for(pilot: Pilot[Any], done: Callable[[], bool], timeout: float = 60) -> None:
    """Let the app run until ``done()``; a load on a real server takes its time."""
    deadline = time.monotonic() + timeout
    while not done():
        assert time.monotonic() < deadline, "timed out waiting for the app"
        await pilot.pause(0.05)
    await pilot.pause()


async def settle(pilot: Pilot[Any]) -> None:
    """Let thread workers (history reads) finish and their results draw, until a round
    starts none: a run's files are read once the runs are, its rejects after that."""
    quiet = 0
    for _ in range(50):
        await pilot.app.workers.wait_for_complete()
        await pilot.pause()
        busy = any(not w.is_finished for w in pilot.app.workers)
        quiet = 0 if busy else quiet + 1
        if quiet == 3:
            return
    raise AssertionError("the app never settled")


def cells(table: DataTable[Any], key: str) -> list[str]:
    """One row of a table as the text it shows."""
    return [c.plain if isinstance(c, Text) else str(c) for c in table.get_row(key)]


def rows(table: DataTable[Any]) -> list[list[str]]:
    return [
        [c.plain if isinstance(c, Text) else str(c) for c in table.get_row_at(i)]
        for i in range(table.row_count)
    ]


def shown(widget: Static) -> str:
    """The text a Static shows."""
    console = Console(width=max(widget.size.width, 80), file=io.StringIO(), record=True)
    console.print(widget.content)
    return console.export_text()
