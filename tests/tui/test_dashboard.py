"""The dashboard's history, from a fixed history: filters, a run's and a failed file's
detail, rejects with their raw lines, and a usable layout at 80×24."""

from __future__ import annotations

import asyncio
from datetime import datetime
from pathlib import Path
from typing import Any

from rich.text import Text
from textual.widgets import Input, Static

from csvpg.pg.history import NotificationRow, RunRow
from csvpg.tui.app import make_app
from csvpg.tui.history import run_matches
from csvpg.tui.widgets.tables import FilesTable, RejectsTable, RunsTable
from tests.tui.pilot import rows, settle, shown
from tests.tui.replay import history_of, recorded

RUN = RunRow("a" * 32, "erp-konten", "failed", datetime(2026, 3, 2, 6, 0), rejected=0)


def test_a_runs_filter_matches_job_status_rejects_and_dates() -> None:
    assert run_matches(RUN, "")
    assert run_matches(RUN, "erp failed")
    assert run_matches(RUN, "KONTEN")  # any part of the job's name, any case
    assert not run_matches(RUN, "succeeded")
    assert not run_matches(RUN, "rejects")
    assert run_matches(RUN, "since:2026-03-02 until:2026-03-02")
    assert not run_matches(RUN, "since:2026-03-03")
    assert not run_matches(RUN, "until:2026-03-01")


def dashboard(size: tuple[int, int] = (120, 36)) -> Any:
    return make_app(dashboard=True, history=history_of(recorded()), jobs_dir=None), size


def test_slash_filters_the_runs() -> None:
    app, size = dashboard()

    async def scenario() -> None:
        async with app.run_test(size=size) as pilot:
            await settle(pilot)
            table = app.screen.query_one(RunsTable)
            assert table.row_count == 3
            await pilot.press("slash", *"failed")
            await pilot.pause()
            assert app.screen.query_one(Input).has_focus
            assert [r[2:4] for r in rows(table)] == [["erp-konten", "✗ failed"]]
            await pilot.press("enter")  # back to the runs, filtered
            assert table.has_focus
            await pilot.press("slash", *"rejects")  # the filter's text is chosen: replaced
            await pilot.pause()
            assert [r[3] for r in rows(table)] == ["◐ partial"]
            await pilot.press("enter", "slash", *"failed rejects")
            await pilot.pause()
            assert table.row_count == 0
            assert "no run matches" in str(app.screen.query_one("#status").render())

    asyncio.run(scenario())


def test_a_failed_file_shows_its_error_and_hint_and_rejects_their_raw_line() -> None:
    app, size = dashboard()
    history = app._default.history
    run_id = history.run_rows[0].id
    failed = next(f for f in history.file_rows[run_id] if f.status == "failed")
    history.run_rows[0] = RunRow(
        run_id,
        history.run_rows[0].job,
        "partial",
        history.run_rows[0].started_at,
        notifications=(NotificationRow("https://n8n.example/hook", "delivered", 1, 200),),
    )

    async def scenario() -> None:
        async with app.run_test(size=size) as pilot:
            await settle(pilot)
            detail = app.screen.query_one("#detail", Static)
            assert "webhook https://n8n.example/hook: delivered after 1 attempt(s) HTTP 200" in (
                shown(detail)
            )
            files = app.screen.query_one(FilesTable)
            files.focus()
            files.move_cursor(row=files.get_row_index(failed.file))
            await settle(pilot)
            text = shown(detail)
            assert f"error: {failed.error}" in text
            if failed.hint:
                assert f"hint: {failed.hint}" in text

    asyncio.run(scenario())


def test_a_failed_files_error_takes_the_colour_of_the_theme_picked() -> None:
    app, size = dashboard()
    history = app._default.history
    failed = next(f for f in history.file_rows[history.run_rows[0].id] if f.status == "failed")

    def error_colour() -> str:
        text = app.screen.query_one("#detail", Static).content
        assert isinstance(text, Text) and text.plain.startswith(f"{Path(failed.file).name}: error")
        span = next(s for s in text.spans if text.plain[s.start : s.end] == "error: ")
        return str(span.style)

    async def scenario() -> None:
        async with app.run_test(size=size) as pilot:
            await settle(pilot)
            files = app.screen.query_one(FilesTable)
            files.focus()
            files.move_cursor(row=files.get_row_index(failed.file))
            await settle(pilot)
            for theme in ("csvpg", "textual-light"):
                app.theme = theme
                await pilot.pause()
                await pilot.pause()
                assert error_colour() == f"bold {app.theme_variables['text-error'].lower()}"

    asyncio.run(scenario())


def test_the_rejects_show_the_raw_line() -> None:
    app, size = dashboard()
    history = app._default.history
    run_id = history.run_rows[0].id
    (run, file), rejects = next(iter(history.reject_rows.items()))
    rejects[0] = {**rejects[0], "raw": "4;x;Köln\r\n"}

    async def scenario() -> None:
        async with app.run_test(size=size) as pilot:
            await settle(pilot)
            files = app.screen.query_one(FilesTable)
            files.move_cursor(row=files.get_row_index(file))
            await settle(pilot)
            first = rows(app.screen.query_one(RejectsTable))[0]
            assert first[-1] == "4;x;Köln"

    assert run == run_id
    asyncio.run(scenario())


def test_at_80_by_24_every_pane_has_rows_to_show() -> None:
    app, size = dashboard((80, 24))

    async def scenario() -> None:
        async with app.run_test(size=size) as pilot:
            await settle(pilot)
            for table in (RunsTable, FilesTable, RejectsTable):
                widget = app.screen.query_one(table)
                # inside its border and scroll bars: a header and two rows at least
                inside = widget.scrollable_content_region.height
                assert inside >= 3, f"{table.__name__} shows {inside} lines"
                assert widget.region.bottom <= 23, "under the footer"

    asyncio.run(scenario())


def test_the_dashboard_at_80_by_24(snap_compare: Any, monkeypatch: Any) -> None:
    monkeypatch.chdir(Path(__file__).parent / "data")

    async def before(pilot: Any) -> None:
        await settle(pilot)
        await pilot.press("tab", *["down"] * 5)
        await settle(pilot)

    app = make_app(dashboard=True, history=history_of(recorded()), jobs_dir=Path("jobs"))
    assert snap_compare(app, terminal_size=(80, 24), run_before=before)


def test_file_detail_shows_what_the_load_changed_in_its_table() -> None:
    from csvpg.pg.history import FileRow
    from csvpg.tui.widgets.dashboard import file_detail

    drift = {
        "added": [{"column": "discount", "type": "numeric(12,2)"}],
        "widened": [{"column": "id", "from": "integer", "to": "bigint"}],
        "missing": ["region"],
    }
    row = FileRow(file="/data/2024-02.csv", table="public.sales", status="loaded", drift=drift)
    assert file_detail(row).plain.splitlines() == [
        "2024-02.csv: schema: added discount numeric(12,2)",
        "schema: widened id integer → bigint",
        "schema: missing region (not in the file)",
    ]
