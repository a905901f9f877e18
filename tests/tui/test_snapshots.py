"""Snapshots of the dashboard's screens, built by replaying recorded events (fixed run
id, paths and times), so every machine draws the same screen. Update them after a
deliberate change with ``uv run pytest tests/tui --snapshot-update`` and look at the
SVGs under ``__snapshots__/`` before committing them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot

from csvpg.tui.app import CANCEL_QUESTION, make_app
from csvpg.tui.widgets.dialogs import ConfirmScreen, ErrorScreen
from tests.tui.pilot import settle
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
