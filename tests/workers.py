"""Helpers of the worker tests: ``csvpg worker`` processes, and waiting on a queued run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg

from tests.engine.test_run import wait_until

#: The longest a test waits for something the workers do (a run ending, a file loading).
PATIENCE = 45.0


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


class Worker:
    """One ``csvpg worker`` process; its output in a file, read with :meth:`log`."""

    def __init__(self, args: Sequence[str], log: Path, prefix: Sequence[str] = ()) -> None:
        self.path = log
        self._out = log.open("wb")
        command = [*prefix, sys.executable, "-m", "csvpg", "worker", *args]
        self.process = subprocess.Popen(
            command, stdout=self._out, stderr=subprocess.STDOUT, env=dict(os.environ)
        )

    def log(self) -> str:
        return self.path.read_text(encoding="utf-8", errors="replace")

    def signal(self, signum: int) -> None:
        self.process.send_signal(signum)

    def wait(self, timeout: float = PATIENCE) -> int:
        return self.process.wait(timeout)

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)
        self._out.close()


@contextmanager
def workers(
    tmp_path: Path, dsn: str, queue: str, count: int, *extra: str, prefixes: Sequence[Any] = ()
) -> Iterator[list[Worker]]:
    """``count`` workers on ``queue`` with a one-second heartbeat, killed at the end."""
    started = []
    try:
        for i in range(count):
            prefix = prefixes[i] if prefixes else ()
            args = ["--dsn", dsn, "--queue", queue, "--heartbeat", "1", "--name", f"w{i}", *extra]
            log = tmp_path / f"worker-{queue}-{i}-{uuid.uuid4().hex[:4]}.log"
            started.append(Worker(args, log, prefix))
        yield started
    finally:
        for w in started:
            w.close()


def wait_for(what: str, check: Callable[[], Any], timeout: float = PATIENCE) -> Any:
    """``check()``'s first true value (no timing test: the deadline is generous)."""
    return wait_until(what, check, timeout)


def write_job(path: Path, db: Any, name: str, source: Path, **sections: Any) -> Path:
    """A job named ``name`` reading ``source`` into ``db``'s schema, with ``sections``."""
    import tomli_w

    job = {
        "job": {"name": name},
        "database": {"dsn": db.dsn, "schema": db.schema},
        "source": {"url": str(source)},
        **sections,
    }
    path.write_text(tomli_w.dumps(job))
    return path


def query(dsn: str, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
    with psycopg.connect(dsn, autocommit=True) as conn:
        return conn.execute(sql.encode(), params).fetchall()


def run_status(dsn: str, run_id: str) -> str:
    rows = query(dsn, "SELECT status FROM csvpg.runs WHERE id = %s", (run_id,))
    return str(rows[0][0]) if rows else ""


def ended(dsn: str, run_id: str) -> str | None:
    status = run_status(dsn, run_id)
    return status if status not in ("", "queued", "running", "cancelling") else None


def kill(worker: Worker) -> None:
    worker.signal(signal.SIGKILL)
    worker.wait(10)
