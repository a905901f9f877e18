"""Messages into the app. Engine events arrive from the loading threads through
:class:`csvpg.tui.reporter.TuiReporter`, which posts them: the thread-safe way in."""

from __future__ import annotations

from textual.message import Message

from csvpg import events as ev


class EngineEvent(Message):
    """One engine event, and when it was received (``time.monotonic()``; a replay gives
    fixed times)."""

    bubble = False

    def __init__(self, event: ev.Event, at: float) -> None:
        super().__init__()
        self.event = event
        self.at = at


class RunClosed(Message):
    """A run screen went away: the history it changed is worth reading again."""
