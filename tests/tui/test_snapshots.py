"""Snapshots of the dashboard's screens, built by replaying recorded events (fixed run
id, paths and times), so every machine draws the same screen. Update them after a
deliberate change with ``uv run pytest tests/tui --snapshot-update`` and look at the
SVGs under ``__snapshots__/`` before committing them."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from textual.color import Color
from textual.command import CommandPalette
from textual.pilot import Pilot
from textual.widgets import RichLog

from csvpg.tui.app import CANCEL_QUESTION, make_app
from csvpg.tui.widgets.dialogs import ConfirmScreen, ErrorScreen
from csvpg.tui.widgets.tables import FilesTable, RejectsTable
from tests.tui.pilot import cells, settle, wait_for
from tests.tui.replay import DATA, history_of, recorded, replay, until

SIZE = (120, 36)


def run_app() -> Any:
    return make_app(start=False)


def test_run_in_flight(snap_compare: Any) -> None:
    """Five seconds in: two ledgers loading, payments being written, one file failed,
    two loaded; the throughput so far."""

    async def before(pilot: Pilot[Any]) -> None:
        await replay(pilot, until(recorded(), 5.0))

    assert snap_compare(run_app(), terminal_size=SIZE, run_before=before)


def test_run_finished_with_rejects_of_a_file(snap_compare: Any) -> None:
    """The run ended (partial: legacy.csv failed); payments.csv is chosen and its first
    rejected lines show with their line numbers and reasons."""

    async def before(pilot: Pilot[Any]) -> None:
        await replay(pilot, recorded())
        await pilot.press(*["down"] * 5)  # payments.csv, the sixth file

    assert snap_compare(run_app(), terminal_size=SIZE, run_before=before)


def test_run_finished_in_textual_light(snap_compare: Any) -> None:
    """The same screen on a light terminal, with Textual's light theme picked: the
    statuses take that theme's colours and keep their symbols."""

    async def before(pilot: Pilot[Any]) -> None:
        pilot.app.theme = "textual-light"
        await replay(pilot, recorded())
        await pilot.press(*["down"] * 5)

    assert snap_compare(run_app(), terminal_size=SIZE, run_before=before)


def test_run_at_80_by_24(snap_compare: Any) -> None:
    """On a small terminal every pane of a live run still shows: the header, the files
    in flight, the files, the rejects and the log."""

    async def before(pilot: Pilot[Any]) -> None:
        await replay(pilot, until(recorded(), 9.43))
        await pilot.press(*["down"] * 5)
        for pane in (FilesTable, RejectsTable, RichLog):
            widget = pilot.app.screen.query_one(pane)
            inside = widget.scrollable_content_region.height
            assert inside >= 3, f"{pane.__name__} shows {inside} lines"
            assert widget.region.bottom <= 23, "under the footer"

    assert snap_compare(run_app(), terminal_size=(80, 24), run_before=before)


def test_every_theme_draws_the_run() -> None:
    """csvpg's theme by default; each theme the command palette offers (the ANSI ones
    too, whose colours are the terminal's own) draws the statuses already shown in its
    own colours."""
    app = run_app()

    async def scenario() -> None:
        async with app.run_test(size=SIZE) as pilot:
            assert app.theme == "csvpg" and {"csvpg", "csvpg-light"} <= set(app.available_themes)
            await replay(pilot, recorded())
            await pilot.press(*["down"] * 5)
            files = app.screen.query_one(FilesTable)
            failed = next(k for k in files.rows if cells(files, k.value or "")[0] == "✗ failed")
            for theme in sorted(app.available_themes):
                app.theme = theme
                await pilot.pause()
                await pilot.pause()
                error = Color.parse(app.theme_variables["text-error"]).rich_color
                assert files.get_cell(failed, "status").style == f"bold {error.name}", theme

    asyncio.run(scenario())


def test_textual_theme_picks_the_theme_to_start_in(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEXTUAL_THEME", "csvpg-light")
    assert run_app().theme == "csvpg-light"
    monkeypatch.setenv("TEXTUAL_THEME", "no-such-theme")
    assert run_app().theme == "csvpg"


def test_the_command_palette_switches_the_theme() -> None:
    """``ctrl+p``, "Theme", then csvpg-light: the theme for a light terminal."""
    app = run_app()

    async def scenario() -> None:
        async with app.run_test(size=SIZE) as pilot:
            await pilot.press("ctrl+p")
            await wait_for(pilot, lambda: isinstance(app.screen, CommandPalette))
            await pilot.press(*"theme")
            await pilot.pause(0.5)
            await pilot.press("enter")
            await pilot.pause(0.5)
            await pilot.press(*"csvpg-light")
            await pilot.pause(0.5)
            await pilot.press("enter")
            await wait_for(pilot, lambda: app.theme == "csvpg-light", timeout=10)
            assert not isinstance(app.screen, CommandPalette)

    asyncio.run(scenario())


def test_cancel_asks_first(snap_compare: Any) -> None:
    async def before(pilot: Pilot[Any]) -> None:
        await replay(pilot, until(recorded(), 5.0))
        pilot.app.push_screen(ConfirmScreen(CANCEL_QUESTION, yes="Cancel run", no="Keep running"))

    assert snap_compare(run_app(), terminal_size=SIZE, run_before=before)


def test_key_help(snap_compare: Any) -> None:
    assert snap_compare(run_app(), terminal_size=SIZE, press=["question_mark"])


def test_error_screen(snap_compare: Any) -> None:
    async def before(pilot: Pilot[Any]) -> None:
        pilot.app.push_screen(
            ErrorScreen(
                "cannot connect to PostgreSQL at postgresql://etl:***@db.internal/warehouse: "
                "connection refused",
                "check [database] dsn or --dsn (host, port, user, password) "
                "and that the server runs",
            )
        )

    assert snap_compare(run_app(), terminal_size=SIZE, run_before=before)


@pytest.fixture
def in_data(monkeypatch: pytest.MonkeyPatch) -> Path:
    """The dashboard names its jobs folder as given: run from tests/tui/data."""
    monkeypatch.chdir(DATA)
    return Path("jobs")


def dashboard_app(jobs: Path) -> Any:
    return make_app(dashboard=True, history=history_of(recorded()), jobs_dir=jobs)


def test_dashboard_history(snap_compare: Any, in_data: Path) -> None:
    """Jobs on the left (one with its error), runs on the right, the newest run's files
    below and the chosen file's rejects from csvpg.rejects."""

    async def before(pilot: Pilot[Any]) -> None:
        await settle(pilot)
        await pilot.press("tab")  # to the files of the newest run
        await settle(pilot)
        await pilot.press(*["down"] * 5)  # payments.csv
        await settle(pilot)

    assert snap_compare(dashboard_app(in_data), terminal_size=SIZE, run_before=before)


def test_dashboard_help(snap_compare: Any, in_data: Path) -> None:
    async def before(pilot: Pilot[Any]) -> None:
        await settle(pilot)
        await pilot.press("question_mark")

    assert snap_compare(dashboard_app(in_data), terminal_size=SIZE, run_before=before)
