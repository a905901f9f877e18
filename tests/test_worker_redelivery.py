"""What the queue delivers more than once, or twice over: a file's task delivered again
after its worker died between the commit and ``after_load`` only moves the file; a
second run of a job queued while the first's files wait does not queue them again."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from csvpg.worker.app import LOAD_FILE, defer, opened
from tests.test_worker import parts_job, queue_run, write_files
from tests.workers import ended, query, unique, wait_for, workers

ROWS = 50


def drop_job(tmp_path: Path, db, name: str, archive: Path) -> Path:
    """A job appending the drop folder ``tmp_path/data`` to ``parts``, moving each
    loaded file to ``archive``."""
    import tomli_w

    job = {
        "job": {"name": name},
        "database": {"dsn": db.dsn, "schema": db.schema},
        "source": {
            "url": str(tmp_path / "data"),
            "pattern": "*.csv",
            "after_load": "move",
            "move_to": str(archive) + "/",
        },
        "sink": {"mode": "append", "table": "parts"},
        "columns": {"id": "bigint"},
    }
    path = tmp_path / f"{name}.toml"
    path.write_text(tomli_w.dumps(job))
    return path


def test_a_task_delivered_again_after_the_commit_only_moves_its_file(
    db, tmp_path: Path, capsys
) -> None:
    write_files(tmp_path / "data", 2, rows=ROWS)
    archive = tmp_path / "archive"
    name, queue = unique("moved"), unique("q")
    job = drop_job(tmp_path, db, name, archive)
    run_id = queue_run(job, db, queue, capsys)
    part = tmp_path / "data" / "part00.csv"
    with workers(tmp_path, db.dsn, queue, 1) as (worker,):
        assert wait_for("the run's end", lambda: ended(db.dsn, run_id)) == "succeeded"
        assert sorted(p.name for p in archive.iterdir()) == ["part00.csv", "part01.csv"]
        # What a worker killed after the file's commit, before its move, leaves: the
        # file in the drop folder as it was loaded, its row without after_load.
        moved = archive / "part00.csv"
        stat = moved.stat()
        shutil.move(moved, part)
        os.utime(part, ns=(stat.st_atime_ns, stat.st_mtime_ns))
        query(
            db.dsn,
            "UPDATE csvpg.run_files SET details = details - 'after_load'"
            " WHERE run_id = %s AND file = %s RETURNING 1",
            (run_id, str(part)),
        )
        args = {"run_id": run_id, "job_path": str(job), "job_text": job.read_text()}
        with opened(db.dsn) as app:  # the queue delivers the file's task again
            defer(app, LOAD_FILE, queue).defer(**args, url=str(part), force=False)
        wait_for("the task again", lambda: "this task ran before" in worker.log())
        line = next(x for x in worker.log().splitlines() if "this task ran before" in x)
    assert "after_load moved to" in line, line
    assert not part.exists() and moved.exists(), "the file was moved, once"
    assert query(db.dsn, f'SELECT count(*) FROM {db.schema}."parts"') == [(2 * ROWS,)]
    (done,) = query(
        db.dsn,
        "SELECT status, details -> 'after_load' ->> 'action' FROM csvpg.run_files"
        " WHERE run_id = %s AND file = %s",
        (run_id, str(part)),
    )
    assert done == ("loaded", "moved")


def test_a_second_run_does_not_queue_files_the_first_has_waiting(
    db, tmp_path: Path, capsys
) -> None:
    write_files(tmp_path / "data", 3, rows=ROWS)
    name, queue = unique("again"), unique("q")
    job = parts_job(tmp_path, db, name)
    first = queue_run(job, db, queue, capsys)
    second = queue_run(job, db, queue, capsys)  # no worker yet: the first's files wait
    sql = "SELECT status, error FROM csvpg.run_files WHERE run_id = %s"
    skipped = query(db.dsn, sql, (second,))
    assert len(skipped) == 3 and {s for s, _ in skipped} == {"skipped"}
    assert all(f"already queued by run {first}" in why for _, why in skipped)
    with workers(tmp_path, db.dsn, queue, 2):
        assert wait_for("the first's end", lambda: ended(db.dsn, first)) == "succeeded"
        assert wait_for("the second's end", lambda: ended(db.dsn, second)) == "succeeded"
    assert query(db.dsn, f'SELECT count(*) FROM {db.schema}."parts"') == [(3 * ROWS,)]
