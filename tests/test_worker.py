"""``csvpg run --queue`` and ``csvpg worker`` as a user runs them: worker processes on
the embedded server, one killed while it loads a file, a queued run cancelled, a task
delivered twice. What is checked is what a user would: the target's rows, the run's
status and files in ``csvpg runs``."""

from __future__ import annotations

import json
from pathlib import Path

import psycopg

from csvpg.cli.main import main
from csvpg.spec import load_job
from csvpg.worker import enqueue_run
from csvpg.worker.app import LOAD_FILE, defer, opened, prepare_queue
from tests.workers import ended, kill, query, unique, wait_for, workers, write_job

ROWS = 20_000


def write_files(folder: Path, files: int, rows: int = ROWS) -> None:
    """``files`` CSV files whose ids never repeat, across files too."""
    folder.mkdir()
    for f in range(files):
        lines = [f"{f * 1_000_000 + i},{'x' * 40}" for i in range(rows)]
        (folder / f"part{f:02}.csv").write_text("id,text\n" + "\n".join(lines) + "\n")


def parts_job(tmp_path: Path, db, name: str) -> Path:
    """A job appending the files of ``tmp_path/data`` to the table ``parts``."""
    return write_job(
        tmp_path / f"{name}.toml",
        db,
        name,
        tmp_path / "data",
        sink={"mode": "append", "table": "parts"},
        columns={"id": "bigint"},
    )


def queue_run(job: Path, db, queue: str, capsys) -> str:
    capsys.readouterr()
    assert main(["run", str(job), "--queue-name", queue, "--dsn", db.dsn]) == 0
    return capsys.readouterr().out.strip()


def copying(dsn: str, application: str = "csvpg%") -> bool:
    """A COPY of a file is in flight on the server (a file task's sessions are named
    ``csvpg task ID``: ``application`` is a LIKE pattern)."""
    rows = query(
        dsn,
        "SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE %s"
        " AND state = 'active' AND query LIKE 'COPY%%'",
        (application,),
    )
    return bool(rows[0][0])


def rows_and_keys(db) -> tuple[int, int]:
    """The rows of ``parts``, and its distinct ids: equal when no row loaded twice."""
    rows = query(db.dsn, f'SELECT count(*), count(DISTINCT id) FROM {db.schema}."parts"')
    return rows[0][0], rows[0][1]


def files_of(dsn: str, run_id: str) -> dict[str, str]:
    rows = query(dsn, "SELECT file, status FROM csvpg.run_files WHERE run_id = %s", (run_id,))
    return dict(rows)


def test_a_worker_killed_mid_file_loses_nothing_and_loads_nothing_twice(
    db, tmp_path: Path, capsys
) -> None:
    write_files(tmp_path / "data", 40)
    name, queue = unique("kill"), unique("q")
    run_id = queue_run(parts_job(tmp_path, db, name), db, queue, capsys)
    assert query(db.dsn, "SELECT status FROM csvpg.runs WHERE id = %s", (run_id,)) == [("queued",)]
    with workers(tmp_path, db.dsn, queue, 1) as (first,), psycopg.connect(db.dsn) as holder:
        wait_for("two files loaded", lambda: len(files_of(db.dsn, run_id)) >= 2)
        # Another session holds the table: the worker's next COPY waits in flight (a
        # file's COPY is over too soon to be killed in for sure).
        holder.execute(f'LOCK TABLE {db.schema}."parts" IN ACCESS EXCLUSIVE MODE')
        wait_for("a file loading", lambda: copying(db.dsn), timeout=10)
        kill(first)
        holder.rollback()
        loaded_before = len(files_of(db.dsn, run_id))
        assert loaded_before < 40, "the worker was killed before the last file"
        with workers(tmp_path, db.dsn, queue, 2) as others:
            status = wait_for("the run's end", lambda: ended(db.dsn, run_id))
            logs = "".join(w.log() for w in others)
    assert status == "succeeded"
    assert "worker: retried stalled" in logs, "the killed worker's file went back to the queue"
    assert set(files_of(db.dsn, run_id).values()) == {"loaded"}
    assert len(files_of(db.dsn, run_id)) == 40
    count, distinct = rows_and_keys(db)
    assert (count, distinct) == (40 * ROWS, 40 * ROWS)
    assert main(["runs", run_id, "--dsn", db.dsn]) == 0
    shown = capsys.readouterr().out
    assert f"run {run_id} of job {name}: succeeded" in shown
    assert f"{40 * ROWS} rows read: {40 * ROWS} inserted" in shown


def test_a_task_delivered_twice_loads_its_file_once(db, tmp_path: Path, capsys) -> None:
    write_files(tmp_path / "data", 2, rows=100)
    name, queue = unique("twice"), unique("q")
    job = parts_job(tmp_path, db, name)
    run_id = queue_run(job, db, queue, capsys)
    with workers(tmp_path, db.dsn, queue, 1) as (worker,):
        assert wait_for("the run's end", lambda: ended(db.dsn, run_id)) == "succeeded"
        first = query(
            db.dsn, "SELECT * FROM csvpg.run_files WHERE run_id = %s ORDER BY file", (run_id,)
        )
        # The queue delivers at least once: the same file's task comes again.
        args = {
            "run_id": run_id,
            "job_path": str(job),
            "job_text": job.read_text(),
            "url": str(tmp_path / "data" / "part00.csv"),
            "force": False,
        }
        with opened(db.dsn) as app:
            defer(app, LOAD_FILE, queue).defer(**args)
        wait_for("the task again", lambda: "this task ran before" in worker.log())
    assert query(db.dsn, f'SELECT count(*) FROM {db.schema}."parts"') == [(200,)]
    again = query(
        db.dsn, "SELECT * FROM csvpg.run_files WHERE run_id = %s ORDER BY file", (run_id,)
    )
    assert again == first


def test_cancel_of_a_queued_run_stops_its_files(db, tmp_path: Path, capsys) -> None:
    write_files(tmp_path / "data", 40)
    name, queue = unique("cancel"), unique("q")
    run_id = queue_run(parts_job(tmp_path, db, name), db, queue, capsys)
    with workers(tmp_path, db.dsn, queue, 1):
        wait_for("a file loaded", lambda: len(files_of(db.dsn, run_id)) >= 1)
        assert main(["runs", run_id[:12], "--cancel", "--dsn", db.dsn]) == 0
        assert "cancelling:" in capsys.readouterr().out
        status = wait_for("the run's end", lambda: ended(db.dsn, run_id), timeout=15)
    assert status == "cancelled"
    files = files_of(db.dsn, run_id)
    assert len(files) == 40, "every file is in the run: loaded, or cancelled"
    loaded = sum(s == "loaded" for s in files.values())
    assert loaded < 40
    assert set(files.values()) <= {"loaded", "cancelled"}
    assert query(db.dsn, f'SELECT count(*) FROM {db.schema}."parts"') == [(loaded * ROWS,)]
    assert main(["runs", run_id, "--cancel", "--dsn", db.dsn]) == 1
    assert "only a queued run that has not ended" in capsys.readouterr().err


def test_enqueue_run_is_what_serve_can_call(db, tmp_path: Path) -> None:
    write_files(tmp_path / "data", 3, rows=10)
    queue = unique("q")
    run_id = enqueue_run(load_job(parts_job(tmp_path, db, unique("api"))), db.dsn, queue_name=queue)
    assert ended(db.dsn, run_id) is None
    with workers(tmp_path, db.dsn, queue, 1, "--log-format", "json") as (worker,):
        assert wait_for("the run's end", lambda: ended(db.dsn, run_id)) == "succeeded"
        wait_for("the worker's last line", lambda: "worker.run_ended" in worker.log())
    events = [json.loads(line) for line in worker.log().splitlines()]
    took = [e for e in events if e.get("event") == "worker.took"]
    assert sorted(e["file"] for e in took) == [
        str(tmp_path / "data" / f"part{i:02}.csv") for i in range(3)
    ]
    assert [e["status"] for e in events if e.get("event") == "JobFinished"] == ["succeeded"]


def test_sigterm_lets_the_file_in_flight_finish(db, tmp_path: Path, capsys) -> None:
    write_files(tmp_path / "data", 6)
    name, queue = unique("term"), unique("q")
    # The table is there, and another session holds it: the worker's first COPY waits
    # in flight (a file's COPY is over too soon to be seen for sure).
    db.execute(f'CREATE TABLE {db.schema}."parts" (id bigint, text text)')
    run_id = queue_run(parts_job(tmp_path, db, name), db, queue, capsys)
    with psycopg.connect(db.dsn) as holder:
        holder.execute(f'LOCK TABLE {db.schema}."parts" IN ACCESS EXCLUSIVE MODE')
        with workers(tmp_path, db.dsn, queue, 1) as (worker,):
            wait_for("a file loading", lambda: copying(db.dsn))
            worker.signal(15)
            wait_for("the worker stopping", lambda: " worker: stopping" in worker.log())
            holder.rollback()  # the lock goes: the file in flight goes on
            assert worker.wait() == 0
            log = worker.log()
    assert " worker: stopping signal=SIGTERM" in log
    assert " worker: stopped" in log
    files = files_of(db.dsn, run_id)
    assert files and set(files.values()) == {"loaded"}, "the file in flight was finished"
    assert len(files) < 6, "the worker took no more files once told to stop"
    assert query(db.dsn, f'SELECT count(*) FROM {db.schema}."parts"') == [(len(files) * ROWS,)]


def test_workers_lists_the_live_ones(db, tmp_path: Path, capsys) -> None:
    queue = unique("q")
    with workers(tmp_path, db.dsn, queue, 2) as started:
        for w in started:
            wait_for("the worker's start", lambda w=w: "worker: started" in w.log())
        capsys.readouterr()
        assert main(["workers", "--dsn", db.dsn]) == 0
        listed = [line for line in capsys.readouterr().out.splitlines() if queue in line]
        assert sorted(line.split()[1] for line in listed) == ["w0", "w1"]
        assert all(str(w.process.pid) in " ".join(listed) for w in started)


def test_a_job_that_cannot_run_queues_nothing_and_fails_in_the_history(
    db, tmp_path: Path, capsys
) -> None:
    (tmp_path / "data").mkdir()
    name, queue = unique("empty"), unique("q")
    job = parts_job(tmp_path, db, name)
    assert main(["run", str(job), "--queue-name", queue, "--dsn", db.dsn]) == 1
    assert "allow_empty" in capsys.readouterr().err, "the error says what to do"
    rows = query(db.dsn, "SELECT status, error FROM csvpg.runs WHERE job = %s", (name,))
    assert len(rows) == 1 and rows[0][0] == "failed" and rows[0][1]
    prepare_queue(db.dsn)
    assert query(
        db.dsn,
        "SELECT count(*) FROM csvpg_queue.procrastinate_jobs WHERE queue_name = %s",
        (queue,),
    ) == [(0,)]
