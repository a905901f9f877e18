"""Run ends the history could not take (its database was away longer than the retries):
kept as ``pending/<run id>.json`` in csvpg's data folder, and written by the next run,
or ``csvpg runs``, that reaches a history holding that run. So a run never stays
'running', nor turns 'abandoned', because the database was away when it ended."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

import psycopg

from csvpg.pg import history

log = logging.getLogger(__name__)

#: A run end no history claimed in this many days is forgotten.
KEEP_DAYS = 30


def folder() -> Path:
    from csvpg import embedded

    return embedded.home() / "pending"


def save(run_id: str, values: dict[str, Any]) -> Path | None:
    """Keep a run's end (:func:`csvpg.pg.history.end_values`) for later; the file, or
    None when it cannot be written either (then the run stays as the history has it)."""
    path = folder() / f"{run_id}.json"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values), encoding="utf-8")
    except OSError as exc:
        log.warning("cannot keep the end of run %s in %s: %s", run_id, path, exc)
        return None
    return path


def replay(conn: psycopg.Connection[Any]) -> list[str]:
    """Write the kept run ends this history holds the runs of; returns their ids."""
    try:
        paths = sorted(folder().glob("*.json"))
    except OSError:
        return []
    written = []
    for path in paths:
        run_id = path.stem
        try:
            values = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        with conn.transaction():
            here = history.known(conn, run_id)
        if here:
            history.record_end(conn, run_id, values, late=True)
            written.append(run_id)
        if here or _stale(path):
            path.unlink(missing_ok=True)
    return written


def _stale(path: Path) -> bool:
    try:
        return path.stat().st_mtime < time.time() - KEEP_DAYS * 86400
    except OSError:
        return False


def settle(conn: psycopg.Connection[Any]) -> None:
    """Bring run statuses up to date before they are shown: run ends kept while the
    history was away are written, then runs whose process is gone become 'abandoned'
    (:func:`csvpg.pg.history.reap`)."""
    replay(conn)
    history.reap(conn)
