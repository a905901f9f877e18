"""``csvpg run --queue`` as typed: the flag before or after the job file, a queue named
with ``--queue-name``, ``--callback-url`` called when the workers end the run, and
``--dry-run`` refused in a sentence that says why and what to type instead."""

from __future__ import annotations

from pathlib import Path

from csvpg.cli.main import main
from tests.test_notify import Receiver
from tests.test_worker import parts_job, write_files
from tests.workers import ended, query, unique, wait_for, workers


def queued_on(dsn: str, run_id: str) -> set[str]:
    rows = query(
        dsn,
        "SELECT DISTINCT queue_name FROM csvpg_queue.procrastinate_jobs WHERE args->>'run_id' = %s",
        (run_id,),
    )
    return {r[0] for r in rows}


def test_queue_before_the_job_file_is_the_flag_and_not_a_queue_name(db, tmp_path, capsys):
    write_files(tmp_path / "data", 2, rows=10)
    job = parts_job(tmp_path, db, unique("order"))
    capsys.readouterr()
    assert main(["run", "--queue", str(job), "--dsn", db.dsn]) == 0
    run_id = capsys.readouterr().out.strip()
    assert queued_on(db.dsn, run_id) == {"csvpg"}
    assert main(["runs", run_id, "--cancel", "--dsn", db.dsn]) == 0  # no worker of ours there
    queue = unique("q")
    assert main(["run", "--queue", "--queue-name", queue, str(job), "--dsn", db.dsn]) == 0
    named = capsys.readouterr().out.strip().splitlines()[-1]
    assert queued_on(db.dsn, named) == {queue}
    assert main(["run", str(job), "--queue-name", queue, "--dsn", db.dsn, "--json"]) == 0
    assert f'"queue": "{queue}"' in capsys.readouterr().out


def test_the_callback_url_hears_the_end_of_a_queued_run(db, tmp_path: Path, capsys) -> None:
    write_files(tmp_path / "data", 2, rows=10)
    queue = unique("q")
    job = parts_job(tmp_path, db, unique("called"))
    with Receiver() as receiver:
        capsys.readouterr()
        args = ["run", str(job), "--queue-name", queue, "--dsn", db.dsn]
        assert main([*args, "--callback-url", receiver.url("/done")]) == 0
        run_id = capsys.readouterr().out.strip()
        with workers(tmp_path, db.dsn, queue, 1):
            assert wait_for("the run's end", lambda: ended(db.dsn, run_id)) == "succeeded"
            (hit,) = receiver.wait(1)
    assert hit.path == "/done"
    assert hit.json()["run_id"] == run_id and hit.json()["status"] == "succeeded"
    assert hit.json()["totals"]["inserted"] == 20


def test_dry_run_with_queue_is_refused_in_one_paragraph(db, tmp_path: Path, capsys) -> None:
    write_files(tmp_path / "data", 1, rows=10)
    job = parts_job(tmp_path, db, unique("dry"))
    capsys.readouterr()
    assert main(["run", str(job), "--queue", "--dry-run", "--dsn", db.dsn]) == 1
    err = capsys.readouterr().err
    assert "--dry-run cannot be used with --queue" in err and str(job) in err
    assert f"hint: csvpg run {job} --dry-run (without --queue)" in err
    assert "Traceback" not in err
