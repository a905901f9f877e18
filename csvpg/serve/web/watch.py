"""The app's one :class:`~csvpg.serve.web.progress.Watchers`, kept on ``app.state``."""

from __future__ import annotations

import threading

from fastapi import Request

from csvpg.serve import Server
from csvpg.serve.live import LiveRun
from csvpg.serve.web.progress import Progress, Watchers

_LOCK = threading.Lock()


def watch(request: Request, live: LiveRun) -> Progress:
    """The progress of a run of this server (followed from its first event on)."""
    state = request.app.state
    with _LOCK:
        watchers = getattr(state, "web_watchers", None)
        if watchers is None:
            watchers = state.web_watchers = Watchers()
    server: Server = state.server
    return watchers.of(live, server.live)
