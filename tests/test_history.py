"""Run history in PostgreSQL: csvpg.runs and csvpg.run_files agree with what loaded."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from csvpg import hookimpl
from csvpg.api import run
from csvpg.events import JobStarted
from csvpg.pg.schema import MIGRATIONS, ensure_schema
from tests.conftest import job_toml


def test_a_run_and_its_files_are_recorded(db, tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "good.csv").write_text("id,v\n1,a\n2,b\n")
    (data / "bad.csv").write_text("id,v\n1,a\nx,b\n")
    job = tmp_path / "job.toml"
    job.write_text(
        job_toml(db, str(data), sink="max_rejects = 0", extra='[columns]\nid = "integer"\n')
    )
    summary = run(job)
    assert summary.status == "partial"
    runs = db.execute(
        "SELECT job, status, files, files_failed, rows_read, inserted, finished_at IS NOT NULL,"
        " spec_hash FROM csvpg.runs WHERE id = %s",
        (summary.run_id,),
    ).fetchone()
    assert runs[:7] == ("test", "partial", 2, 1, 2, 2, True)
    assert len(runs[7]) == 16
    files = dict(
        (Path(f).name, (status, table, inserted, error is not None))
        for f, status, table, inserted, error in db.execute(
            "SELECT file, status, table_name, inserted, error FROM csvpg.run_files"
            " WHERE run_id = %s",
            (summary.run_id,),
        ).fetchall()
    )
    assert files == {
        "good.csv": ("loaded", f"{db.schema}.good", 2, False),
        "bad.csv": ("failed", f"{db.schema}.bad", 0, True),
    }


def test_dry_run_leaves_no_history(db, tmp_path: Path) -> None:
    (tmp_path / "a.csv").write_text("id\n1\n")
    job = tmp_path / "job.toml"
    job.write_text(job_toml(db, "a.csv"))
    summary = run(job, dry_run=True)
    ensure_schema(db.conn)
    assert db.execute(
        "SELECT count(*) FROM csvpg.runs WHERE id = %s", (summary.run_id,)
    ).fetchone() == (0,)


def test_schema_version_is_current(db) -> None:
    assert ensure_schema(db.conn) == len(MIGRATIONS)
    assert ensure_schema(db.conn) == len(MIGRATIONS), "running it again changes nothing"


def test_history_in_a_separate_database(db, tmp_path: Path) -> None:
    """[history] dsn: runs, files and rejects go there; data and manifest stay put."""
    import uuid

    import psycopg
    from psycopg.conninfo import make_conninfo

    name = "csvpg_hist_" + uuid.uuid4().hex[:8]
    with psycopg.connect(db.dsn, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    history_dsn = make_conninfo(db.dsn, dbname=name)
    try:
        (tmp_path / "h.csv").write_text("id\n1\nx\n")
        job = tmp_path / "job.toml"
        job.write_text(
            job_toml(
                db,
                "h.csv",
                sink="max_rejects = 1",
                extra=f'[columns]\nid = "integer"\n[history]\ndsn = "{history_dsn}"\n',
            )
        )
        summary = run(job)
        assert summary.files[0].inserted == 1 and summary.files[0].rejected == 1
        assert db.count("h") == 1
        with psycopg.connect(history_dsn) as conn:
            assert conn.execute(
                "SELECT status, rows_read FROM csvpg.runs WHERE id = %s", (summary.run_id,)
            ).fetchone() == ("succeeded", 2)
            assert conn.execute(
                "SELECT line FROM csvpg.rejects WHERE run_id = %s", (summary.run_id,)
            ).fetchall() == [(3,)]
            assert conn.execute("SELECT to_regclass('csvpg.run_files')").fetchone()[0]
        assert db.execute(
            "SELECT count(*) FROM csvpg.runs WHERE id = %s", (summary.run_id,)
        ).fetchone() == (0,)
        assert db.execute(
            "SELECT status FROM csvpg.manifest WHERE url = %s", (str(tmp_path / "h.csv"),)
        ).fetchone() == ("loaded",)
        assert run(job).files[0].status == "skipped", "the manifest still decides"
    finally:
        with psycopg.connect(db.dsn, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


def test_a_run_whose_process_died_is_marked_abandoned(db, tmp_path: Path) -> None:
    """A run holds a lock while it lives; a 'running' row nobody holds was abandoned."""
    import uuid

    import psycopg

    from csvpg.pg import history

    ensure_schema(db.conn)
    dead, alive = uuid.uuid4().hex, uuid.uuid4().hex
    for run_id in (dead, alive):
        history.run_started(db.conn, run_id, "crashed", "0" * 16, "x")
    with psycopg.connect(db.dsn, autocommit=True) as other:
        history.hold(other, alive)  # another process, still loading
        (tmp_path / "a.csv").write_text("id\n1\n")
        job = tmp_path / "job.toml"
        job.write_text(job_toml(db, "a.csv"))
        summary = run(job)
        status = dict(
            db.execute(
                "SELECT id, status FROM csvpg.runs WHERE id = ANY(%s)",
                ([dead, alive, summary.run_id],),
            ).fetchall()
        )
    assert status == {dead: "abandoned", alive: "running", summary.run_id: "succeeded"}


class Started:
    """Keeps the run's JobStarted."""

    def __init__(self) -> None:
        self.event: Any = None

    @hookimpl
    def track_event(self, event: Any) -> None:
        if isinstance(event, JobStarted):
            self.event = event


def test_a_jobs_next_run_knows_how_long_postgresql_writes_after_a_file_is_read(
    db, tmp_path
) -> None:
    """Each loaded file records its bytes and how long reading them took; the job's next
    run starts with PostgreSQL's write time per byte, so its time left counts the write
    phase from the first second. Its first run has nothing to go by."""
    data = tmp_path / "t.csv"
    data.write_text("id,v\n" + "".join(f"{i},{'v' * 40} {i}\n" for i in range(110_000)))  # 5 MiB
    job = tmp_path / "job.toml"
    name = f"write-time-{db.schema}"  # a job of its own: no earlier runs
    sink = 'mode = "upsert"\nprimary_key = ["id"]'
    job.write_text(job_toml(db, str(data), sink=sink).replace('name = "test"', f'name = "{name}"'))
    first = Started()
    summary = run(job, plugins=[first])
    assert first.event.write_per_byte is None, "the job's first run"
    seconds, details = db.execute(
        "SELECT seconds, details FROM csvpg.run_files WHERE run_id = %s", (summary.run_id,)
    ).fetchone()
    assert details["bytes"] == data.stat().st_size
    assert 0 < details["read_seconds"] <= seconds
    second = Started()
    run(job, plugins=[second], force=True)
    expected = (seconds - details["read_seconds"]) / details["bytes"]
    assert second.event.write_per_byte == pytest.approx(expected)
