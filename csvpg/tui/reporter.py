"""TuiReporter: the ``track_event`` plugin that feeds the dashboard.

It is called on the engine's loading threads; it only stamps the event with the time and
posts it as an :class:`~csvpg.tui.messages.EngineEvent` (``post_message`` is thread-safe),
so a load runs as fast with the dashboard as without. Progress is thinned: a file's
``BytesRead`` (once per MiB) is posted at most every ``every`` seconds, and always at the
file's end; every other event is posted as it comes.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from textual.message_pump import MessagePump

from csvpg import events as ev
from csvpg.hookspecs import hookimpl
from csvpg.tui.messages import EngineEvent


class TuiReporter:
    def __init__(
        self,
        target: MessagePump,
        *,
        every: float = 0.1,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.target = target
        self.every = every
        self.clock = clock
        self._posted: dict[str, float] = {}

    @hookimpl
    def track_event(self, event: ev.Event) -> None:
        now = self.clock()
        if isinstance(event, ev.BytesRead):
            last = self._posted.get(event.file)
            end = event.size is not None and event.bytes_read >= event.size
            if last is not None and now - last < self.every and not end:
                return
            self._posted[event.file] = now
        self.target.post_message(EngineEvent(event, now))
