"""Textual's pilot drives the dashboard through real loads into the real database."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

from textual.widgets import Static

from csvpg import events as ev
from csvpg.api import run
from csvpg.hookspecs import hookimpl
from csvpg.plugins import get_plugin_manager
from csvpg.spec import load_job
from csvpg.tui.app import make_app
from csvpg.tui.history import PgHistory
from csvpg.tui.widgets.dialogs import ConfirmScreen, ErrorScreen, StartJobScreen
from csvpg.tui.widgets.progress import RunHeader
from csvpg.tui.widgets.run_view import RunView
from csvpg.tui.widgets.tables import FilesTable, JobsTable, RejectsTable, RunsTable
from tests.conftest import job_toml
from tests.tui.pilot import cells, rows, settle, shown, wait_for

SIZE = (120, 40)
#: dirty.csv rejects 25 rows of 75: more than the default max_rejects allows.
SINK = "max_rejects = 25"


def dirty_files(folder: Path) -> None:
    folder.mkdir()
    (folder / "people.csv").write_text("id,name\n1,Ada\n2,Grace\n3,Edsger\n")
    lines = [f"{i},row {i}" if i % 3 else f"x{i},bad {i}" for i in range(1, 76)]
    (folder / "dirty.csv").write_text("id,name\n" + "\n".join(lines) + "\n")  # 25 bad ids


def test_a_live_run_shows_its_counts_and_rejects(db, tmp_path: Path) -> None:
    dirty_files(tmp_path / "data")
    job_path = tmp_path / "job.toml"
    job_path.write_text(job_toml(db, "data", sink=SINK, extra='[columns]\nid = "integer"\n'))
    job = load_job(job_path)
    dirty = str(tmp_path / "data" / "dirty.csv")

    async def scenario() -> None:
        app = make_app(job, get_plugin_manager())
        async with app.run_test(size=SIZE) as pilot:
            await wait_for(pilot, lambda: app.summary is not None)
            view = app.screen.query_one(RunView)
            files = view.query_one(FilesTable)
            assert cells(files, dirty) == [
                "✓ loaded",
                "dirty.csv",
                f"{db.schema}.dirty",
                "75",
                "50",
                "0",
                "25",
                cells(files, dirty)[7],
            ]
            assert cells(files, str(tmp_path / "data" / "people.csv"))[:6] == [
                "✓ loaded",
                "people.csv",
                f"{db.schema}.people",
                "3",
                "3",
                "0",
            ]
            header = shown(view.query_one(RunHeader))
            assert "succeeded" in header and "2 of 2 files done" in header
            assert "78 rows read · 53 inserted · 0 updated · 25 rejected" in header

            # The dirty file's rejects: the first 20 from its event, then all 25 from
            # csvpg.rejects, each with its line number and PostgreSQL's reason.
            files.focus()
            files.move_cursor(row=files.get_row_index(dirty))
            await pilot.pause()
            rejects = view.query_one(RejectsTable)
            assert rejects.row_count == 20
            first = rows(rejects)[0]
            assert first[:3] == ["4", "id", "x3"] and "integer" in first[3]
            await pilot.press("enter")
            await wait_for(pilot, lambda: rejects.row_count == 25)
            assert [r[0] for r in rows(rejects)][-1] == "76"

            await pilot.press("q")  # the run is over: q quits without asking
        assert app.return_value is app.summary
        assert app.summary is not None and app.summary.status == "succeeded"

    asyncio.run(scenario())
    assert db.count("people") == 3 and db.count("dirty") == 50


class Gate:
    """Holds the load at its first MiB read until the test lets it go on."""

    def __init__(self) -> None:
        self.reached = threading.Event()
        self.release = threading.Event()

    @hookimpl
    def track_event(self, event: ev.Event) -> None:
        if isinstance(event, ev.BytesRead) and not self.reached.is_set():
            self.reached.set()
            self.release.wait(60)


def big_job(db, tmp_path: Path) -> Path:
    """A 3 MiB file appended to a table that already holds two rows."""
    db.execute(f'CREATE TABLE "{db.schema}".big (id integer, name text)')
    db.execute(f"INSERT INTO \"{db.schema}\".big VALUES (-1, 'kept'), (-2, 'kept')")
    with (tmp_path / "big.csv").open("w") as out:
        out.write("id,name\n")
        out.writelines(f"{i},name number {i}\n" for i in range(180_000))
    path = tmp_path / "job.toml"
    path.write_text(job_toml(db, "big.csv", sink='mode = "append"\ntable = "big"'))
    return path


def test_cancel_rolls_back_the_file_in_flight(db, tmp_path: Path) -> None:
    job = load_job(big_job(db, tmp_path))
    gate = Gate()

    async def scenario() -> None:
        app = make_app(job, get_plugin_manager([gate]))
        async with app.run_test(size=SIZE) as pilot:
            await wait_for(pilot, gate.reached.is_set)
            await pilot.press("q")
            assert isinstance(app.screen, ConfirmScreen), "q asks before cancelling"
            await pilot.press("y")
            gate.release.set()
            await wait_for(pilot, lambda: app.summary is not None)
        assert app.summary is not None and app.summary.status == "cancelled"
        assert app.return_value is app.summary, "q, then yes: cancelled, then quit"

    asyncio.run(scenario())
    assert sorted(db.rows("big")) == [(-2, "kept"), (-1, "kept")], "the table is unchanged"
    status = db.execute(
        "SELECT f.status, r.status FROM csvpg.run_files f JOIN csvpg.runs r ON r.id = f.run_id"
        " WHERE f.file = %s ORDER BY r.started_at DESC LIMIT 1",
        (str(tmp_path / "big.csv"),),
    ).fetchone()
    assert status == ("cancelled", "cancelled")


def test_cancel_then_stay_and_keep_running_when_told_no(db, tmp_path: Path) -> None:
    """``c`` cancels and stays on the screen; answering no to ``q`` keeps the run going."""
    job = load_job(big_job(db, tmp_path))
    gate = Gate()

    async def scenario() -> None:
        app = make_app(job, get_plugin_manager([gate]))
        async with app.run_test(size=SIZE) as pilot:
            await wait_for(pilot, gate.reached.is_set)
            await pilot.press("q")
            await pilot.press("n")  # keep running
            assert not isinstance(app.screen, ConfirmScreen)
            await pilot.press("c")
            await pilot.press("y")
            gate.release.set()
            await wait_for(pilot, lambda: app.summary is not None)
            view = app.screen.query_one(RunView)
            assert cells(view.query_one(FilesTable), str(tmp_path / "big.csv"))[0] == "⊘ cancelled"
            assert "cancelled" in shown(view.query_one(RunHeader))
            await pilot.press("q")
        assert app.return_value is app.summary

    asyncio.run(scenario())
    assert db.count("big") == 2


def test_dashboard_shows_the_history_and_runs_a_job(db, tmp_path: Path) -> None:
    dirty_files(tmp_path / "data")
    jobs = tmp_path / "jobs"
    jobs.mkdir()
    job_path = jobs / "people.toml"
    job_path.write_text(job_toml(db, "../data", sink=SINK, extra='[columns]\nid = "integer"\n'))
    before = run(job_path)
    dirty = str(tmp_path / "data" / "dirty.csv")

    async def scenario() -> None:
        app = make_app(
            pm=get_plugin_manager(), history=PgHistory(db.dsn), jobs_dir=jobs, dashboard=True
        )
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            runs = app.screen.query_one(RunsTable)
            runs.move_cursor(row=runs.get_row_index(before.run_id))
            await settle(pilot)
            files = app.screen.query_one(FilesTable)
            assert cells(files, dirty)[:7] == [
                "✓ loaded",
                "dirty.csv",
                f"{db.schema}.dirty",
                "75",
                "50",
                "0",
                "25",
            ]
            files.move_cursor(row=files.get_row_index(dirty))
            await settle(pilot)
            rejects = rows(app.screen.query_one(RejectsTable))
            assert len(rejects) == 25 and rejects[0][:3] == ["4", "id", "x3"]

            await pilot.press("j")  # the jobs; enter runs the chosen one, live
            assert cells(app.screen.query_one(JobsTable), str(job_path))[:2] == [
                "test",
                "people.toml",
            ]
            # people.csv changed since; dirty.csv did not, so it is skipped.
            (tmp_path / "data" / "people.csv").write_text("id,name\n1,Ada\n4,Barbara\n")
            await pilot.press("enter")  # asks how: run, dry run or force
            await wait_for(pilot, lambda: isinstance(app.screen, StartJobScreen))
            await pilot.press("r")
            await wait_for(pilot, lambda: bool(app.screen.query(RunView)))
            view = app.screen.query_one(RunView)
            await wait_for(pilot, lambda: view.summary is not None)
            assert view.summary is not None and view.summary.status == "succeeded"
            people = cells(view.query_one(FilesTable), str(tmp_path / "data" / "people.csv"))
            assert people[:6] == ["✓ loaded", "people.csv", f"{db.schema}.people", "2", "2", "0"]
            assert cells(view.query_one(FilesTable), dirty)[0] == "⊘ skipped"
            await pilot.press("escape")  # back to the history, read again
            await settle(pilot)
            runs = app.screen.query_one(RunsTable)
            assert runs.is_valid_row_index(runs.get_row_index(view.summary.run_id))

    asyncio.run(scenario())


def test_an_unreachable_database_shows_the_error_and_its_hint(tmp_path: Path) -> None:
    (tmp_path / "a.csv").write_text("id\n1\n")
    path = tmp_path / "job.toml"
    path.write_text(
        '[job]\nname = "x"\n[database]\n'
        'dsn = "postgresql://etl:hunter2@127.0.0.1:1/db?connect_timeout=2"\n'
        '[source]\nurl = "a.csv"\n'
    )

    async def scenario() -> None:
        app = make_app(load_job(path), get_plugin_manager())
        async with app.run_test(size=SIZE) as pilot:
            await wait_for(pilot, lambda: isinstance(app.screen, ErrorScreen))
            text = " ".join(" ".join(shown(s).split()) for s in app.screen.query(Static))
            assert "error: cannot connect to PostgreSQL at postgresql://etl:***@127.0.0.1:1" in text
            assert "hint: check [database] dsn" in text and "hunter2" not in text
            await pilot.press("escape")
            assert "failed" in shown(app.screen.query_one(RunHeader))
            await pilot.press("q")
        assert app.error is not None and app.summary is None

    asyncio.run(scenario())


def test_ctrl_q_asks_too_while_loading(db, tmp_path: Path) -> None:
    job = load_job(big_job(db, tmp_path))
    gate = Gate()

    async def scenario() -> None:
        app = make_app(job, get_plugin_manager([gate]))
        async with app.run_test(size=SIZE) as pilot:
            await wait_for(pilot, gate.reached.is_set)
            await pilot.press("ctrl+q")
            assert isinstance(app.screen, ConfirmScreen)
            await pilot.press("n")
            gate.release.set()
            await wait_for(pilot, lambda: app.summary is not None)
            await pilot.press("ctrl+q")
        assert app.summary is not None and app.summary.status == "succeeded"

    asyncio.run(scenario())
    assert db.count("big") == 2 + 180_000


def people_jobs(db, tmp_path: Path) -> Path:
    """A jobs folder with one job over people.csv alone."""
    dirty_files(tmp_path / "data")
    (tmp_path / "data" / "dirty.csv").unlink()
    jobs = tmp_path / "jobs"
    jobs.mkdir()
    (jobs / "people.toml").write_text(job_toml(db, "../data"))
    return jobs


async def answer_start_question(app, pilot, key: str) -> None:
    """On the jobs tab, enter on the first job, and answer how to run it."""
    await settle(pilot)
    await pilot.press("j", "enter")
    await wait_for(pilot, lambda: isinstance(app.screen, StartJobScreen))
    await pilot.press(key)
    await pilot.pause()


def test_a_dry_run_from_the_dashboard_leaves_the_table_as_it_was(db, tmp_path: Path) -> None:
    jobs = people_jobs(db, tmp_path)

    async def scenario() -> None:
        app = make_app(
            pm=get_plugin_manager(), history=PgHistory(db.dsn), jobs_dir=jobs, dashboard=True
        )
        async with app.run_test(size=SIZE) as pilot:
            await answer_start_question(app, pilot, "d")
            await wait_for(pilot, lambda: bool(app.screen.query(RunView)))
            view = app.screen.query_one(RunView)
            await wait_for(pilot, lambda: view.summary is not None)
            assert view.summary is not None and view.summary.status == "succeeded"

    asyncio.run(scenario())
    assert "people" not in db.tables()  # loaded, then rolled back: no table left behind


def test_escape_on_the_start_question_runs_nothing(db, tmp_path: Path) -> None:
    jobs = people_jobs(db, tmp_path)

    async def scenario() -> None:
        app = make_app(
            pm=get_plugin_manager(), history=PgHistory(db.dsn), jobs_dir=jobs, dashboard=True
        )
        async with app.run_test(size=SIZE) as pilot:
            await answer_start_question(app, pilot, "escape")
            assert not app.screen.query(RunView)

    asyncio.run(scenario())


def test_the_clock_ticks_while_no_event_comes(db, tmp_path: Path) -> None:
    """The load is held (no event for seconds, as while PostgreSQL writes): the run's
    elapsed time still moves on the screen."""
    job = load_job(big_job(db, tmp_path))
    gate = Gate()

    async def scenario() -> None:
        app = make_app(job, get_plugin_manager([gate]))
        async with app.run_test(size=SIZE) as pilot:
            await wait_for(pilot, gate.reached.is_set)
            header = app.screen.query_one(RunHeader)
            before = app.screen.query_one(RunView).state.now
            first = shown(header)
            await pilot.pause(2.5)
            assert app.screen.query_one(RunView).state.now != before
            assert shown(header) != first
            gate.release.set()
            await wait_for(pilot, lambda: app.summary is not None)

    asyncio.run(scenario())
