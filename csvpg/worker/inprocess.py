"""A worker inside another process (``csvpg serve --workers N``): the same worker as
``csvpg worker``, on a thread of its own with its own event loop, so that a server with
no separate worker still loads the runs it queues. Its files' events also go to
``plugins`` (the server's live view of its runs)."""

from __future__ import annotations

import asyncio
import sys
import threading
from typing import TextIO

from procrastinate import worker as procrastinate_worker

from csvpg.reporters import LineReporter
from csvpg.worker.process import (
    WorkerLog,
    WorkerOptions,
    build_app,
    procrastinate_worker_of,
    run_registered,
)


class InProcessWorker:
    """Started once (:meth:`start`, again a no-op), stopped with :meth:`stop`."""

    def __init__(
        self, options: WorkerOptions, plugins: list[object], out: TextIO = sys.stdout
    ) -> None:
        self.options = options
        self.plugins = plugins
        self.out = out
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._worker: procrastinate_worker.Worker | None = None
        self._ready = threading.Event()

    def start(self) -> None:
        with self._lock:
            if self._thread is not None:
                return
            self._thread = threading.Thread(target=self._main, name="csvpg-worker", daemon=True)
            self._thread.start()

    def _main(self) -> None:
        say = WorkerLog(self.out, self.options.log_format)
        app = build_app(self.options, [LineReporter(self.out), *self.plugins], say)

        async def serve() -> None:
            async with app.open_async():
                self._worker = procrastinate_worker_of(app, self.options)
                self._loop = asyncio.get_running_loop()
                self._ready.set()
                await run_registered(self._worker, self.options, say)

        try:
            asyncio.run(serve())
        except Exception as exc:  # the server goes on; its runs wait for another worker
            say("failed", name=self.options.name, error=f"{type(exc).__name__}: {exc}")
        finally:
            self._ready.set()

    def stop(self, timeout: float = 30.0) -> None:
        """No new task; waits (up to ``timeout`` s) for the files in flight."""
        with self._lock:
            thread = self._thread
        if thread is None:
            return
        self._ready.wait(timeout)
        if self._loop is not None and self._worker is not None:
            self._loop.call_soon_threadsafe(self._worker.stop)
        thread.join(timeout)
