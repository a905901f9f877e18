"""Events for every end of a file: a cancelled file has its own FileCancelled (not a
FileFailed whose message says so), and every event has a stable name and a time."""

from __future__ import annotations

import time
from pathlib import Path

from csvpg import events as ev
from csvpg.engine.run import Engine
from csvpg.hookspecs import hookimpl
from csvpg.plugins import get_plugin_manager
from csvpg.spec import load_job
from tests.tui.test_pilot import big_job


class CancelOnFirstRead:
    """Cancels the run once its file has streamed its first MiB, as ``csvpg serve``'s
    ``POST /runs/{id}/cancel`` or the dashboard's ``q`` would; keeps every event."""

    def __init__(self) -> None:
        self.engine: Engine | None = None
        self.events: list[ev.Event] = []

    @hookimpl
    def track_event(self, event: ev.Event) -> None:
        self.events.append(event)
        if isinstance(event, ev.BytesRead) and self.engine is not None:
            self.engine.cancel()


def test_a_cancelled_file_fires_file_cancelled_and_the_history_says_cancelled(
    db, tmp_path: Path
) -> None:
    path = big_job(db, tmp_path)
    watcher = CancelOnFirstRead()
    engine = Engine(load_job(path), get_plugin_manager([watcher]), db.dsn)
    watcher.engine = engine
    before = time.time()
    summary = engine.run()

    assert summary.status == "cancelled"
    (cancelled,) = [e for e in watcher.events if isinstance(e, ev.FileCancelled)]
    assert cancelled.file == str(tmp_path / "big.csv") and cancelled.table.endswith(".big")
    assert cancelled.name == "file_cancelled" and cancelled.seconds >= 0
    assert not [e for e in watcher.events if isinstance(e, ev.FileFailed)]
    assert before <= cancelled.created <= time.time()
    assert db.count("big") == 2, "the table is as it was"
    row = db.execute(
        "SELECT status FROM csvpg.run_files WHERE run_id = %s", (summary.run_id,)
    ).fetchone()
    assert row == ("cancelled",)
    created = [e.created for e in watcher.events]
    assert created == sorted(created)
    assert {e.name for e in watcher.events} >= {"job_started", "file_started", "job_finished"}


def test_every_event_is_exported_from_csvpg_with_its_own_name() -> None:
    import csvpg

    kinds = [
        obj
        for obj in vars(ev).values()
        if isinstance(obj, type) and issubclass(obj, ev.Event) and obj is not ev.Event
    ]
    assert all(getattr(csvpg, k.__name__) is k and k.__name__ in csvpg.__all__ for k in kinds)
    names = [k.name for k in kinds]
    assert len(set(names)) == len(names) and "event" not in names
    assert all(n.islower() and n.replace("_", "").isalpha() for n in names)
