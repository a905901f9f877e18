"""Recorded engine events, replayed into the dashboard: the snapshot tests and the
README's screenshots are built from them, so they look the same on every machine.

``data/run_events.json`` was recorded from a real run by ``record_events.py`` (run ids,
paths, the database and the times made fixed)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from textual.pilot import Pilot

from csvpg import events as ev
from csvpg.pg.history import FileRow, RunRow
from csvpg.tui.messages import EngineEvent
from csvpg.tui.widgets.run_view import RunView

DATA = Path(__file__).parent / "data"
RECORDED = DATA / "run_events.json"


def event_from_dict(data: dict[str, Any]) -> ev.Event:
    data = dict(data)
    kind = getattr(ev, data.pop("event"))
    data.pop("name", None)  # the class's own
    return kind(**data)  # type: ignore[no-any-return]


def recorded() -> list[tuple[float, ev.Event]]:
    return [(at, event_from_dict(e)) for at, e in json.loads(RECORDED.read_text())]


def until(events: list[tuple[float, ev.Event]], at: float) -> list[tuple[float, ev.Event]]:
    return [(t, e) for t, e in events if t <= at]


async def replay(pilot: Pilot[Any], events: list[tuple[float, ev.Event]]) -> None:
    """Post each event to the run screen as the TuiReporter would, then let it draw."""
    view = pilot.app.screen.query_one(RunView)
    done = view.state.events + len(events)
    for at, event in events:
        view.post_message(EngineEvent(event, at))
    for _ in range(200):
        await pilot.pause()
        if view.state.events == done:
            return
    raise AssertionError("the run screen did not take every event")


@dataclass
class FixedHistory:
    """A run history held in memory, shaped like csvpg.tui.history.PgHistory."""

    run_rows: list[RunRow] = field(default_factory=list)
    file_rows: dict[str, list[FileRow]] = field(default_factory=dict)
    reject_rows: dict[tuple[str, str], list[dict[str, Any]]] = field(default_factory=dict)

    def runs(self, limit: int = 200) -> list[RunRow]:
        return self.run_rows[:limit]

    def files(self, run_id: str) -> list[FileRow]:
        return self.file_rows.get(run_id, [])

    def rejects(self, run_id: str, file: str) -> list[dict[str, Any]]:
        return self.reject_rows.get((run_id, file), [])


def history_of(events: list[tuple[float, ev.Event]]) -> FixedHistory:
    """The history the recorded run left, and two older runs of other jobs."""
    history = FixedHistory()
    start = datetime(2026, 3, 2, 6, 0, 0)
    files: list[FileRow] = []
    first: dict[str, list[dict[str, Any]]] = {}
    finished: ev.JobFinished | None = None
    run_id = ""
    for _, e in events:
        run_id = e.run_id
        if isinstance(e, ev.FileLoaded):
            files.append(
                FileRow(
                    e.file,
                    e.table,
                    "loaded",
                    rows_read=e.rows_read,
                    inserted=e.inserted,
                    updated=e.updated,
                    collapsed=e.collapsed,
                    rejected=e.rejected,
                    seconds=e.seconds,
                )
            )
        elif isinstance(e, ev.FileFailed):
            files.append(
                FileRow(e.file, e.table, "failed", seconds=e.seconds, error=e.message, hint=e.hint)
            )
        elif isinstance(e, ev.RowsRejected):
            first[e.file] = e.first
        elif isinstance(e, ev.JobFinished):
            finished = e
    assert finished is not None
    history.run_rows.append(
        RunRow(
            run_id,
            finished.job,
            finished.status,
            start,
            seconds=finished.seconds,
            files=len(files),
            files_failed=finished.files_failed,
            rows_read=finished.rows_read,
            inserted=finished.inserted,
            updated=finished.updated,
            rejected=finished.rejected,
        )
    )
    history.file_rows[run_id] = sorted(files, key=lambda f: f.file)
    for file, rejects in first.items():
        history.reject_rows[(run_id, file)] = rejects
    older = [("c07e55a1", "quickstart", "succeeded"), ("9b2d4f60", "erp-konten", "failed")]
    for n, (run, job, status) in enumerate(older):
        history.run_rows.append(
            RunRow(
                run * 4,
                job,
                status,
                start - timedelta(hours=6 * (n + 1)),
                seconds=2.5 + n,
                files=3 - n,
                files_failed=n,
                rows_read=900 - 200 * n,
                inserted=900 - 200 * n,
            )
        )
    return history
