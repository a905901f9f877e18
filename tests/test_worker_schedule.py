"""``[schedule]`` jobs: ``csvpg schedules`` says when each runs next; two workers with
the same jobs folder make one run of a job per tick (a cron with a seconds field, every
two seconds, stands in for a nightly one)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from csvpg.cli.main import main
from csvpg.errors import SpecError
from csvpg.spec import job_from_dict
from csvpg.worker.app import prepare_queue
from csvpg.worker.schedule import scheduled_jobs
from tests.workers import query, unique, wait_for, workers, write_job


def scheduled_job(folder: Path, db, name: str, cron: str, timezone: str = "UTC") -> Path:
    data = folder.parent / f"{name}-data"
    data.mkdir()
    (data / "one.csv").write_text("id,name\n1,Ada\n2,Grace\n")
    folder.mkdir(exist_ok=True)
    schedule = {"cron": cron, "timezone": timezone}
    return write_job(folder / f"{name}.toml", db, name, data, schedule=schedule)


def test_two_workers_make_one_run_per_tick(db, tmp_path: Path) -> None:
    name, queue = unique("tick"), unique("q")
    scheduled_job(tmp_path / "jobs", db, name, "* * * * * */2")
    prepare_queue(db.dsn)

    def ticks() -> list[tuple[datetime, int]]:
        return query(
            db.dsn,
            "SELECT scheduled_for, count(*) FROM csvpg.runs WHERE job = %s"
            " GROUP BY scheduled_for ORDER BY scheduled_for",
            (name,),
        )

    with workers(tmp_path, db.dsn, queue, 2, "--jobs", str(tmp_path / "jobs")) as both:
        wait_for("three ticks' runs", lambda: len(ticks()) >= 3)
        for w in both:
            w.signal(15)
        assert [w.wait() for w in both] == [0, 0]
    runs = ticks()
    assert all(count == 1 for _tick, count in runs), runs
    assert all(tick.second % 2 == 0 for tick, _count in runs), "each run is its tick's"
    statuses = query(db.dsn, "SELECT DISTINCT status FROM csvpg.runs WHERE job = %s", (name,))
    assert set(s for (s,) in statuses) <= {"succeeded", "queued", "running"}


def test_a_run_still_going_skips_the_next_tick(db, tmp_path: Path, capsys) -> None:
    """No worker takes the queued run's files here: the next ticks start no second run."""
    name, queue = unique("busy"), unique("q")
    job = scheduled_job(tmp_path / "jobs", db, name, "* * * * * */2")
    assert main(["run", str(job), "--queue-name", unique("nobody"), "--dsn", db.dsn]) == 0
    with workers(tmp_path, db.dsn, queue, 1, "--jobs", str(tmp_path / "jobs")) as (w,):
        wait_for("a skipped tick", lambda: "tick skipped" in w.log())
    assert query(db.dsn, "SELECT count(*) FROM csvpg.runs WHERE job = %s", (name,)) == [(1,)]
    assert "is still going" in w.log()


def test_schedules_lists_each_jobs_next_run(db, tmp_path: Path, capsys) -> None:
    folder = tmp_path / "jobs"
    scheduled_job(folder, db, "nightly", "0 2 * * *", "Europe/Berlin")
    (folder / "plain.toml").write_text('[job]\nname = "plain"\n[source]\nurl = "x/"\n')
    capsys.readouterr()
    assert main(["schedules", "--jobs", str(folder)]) == 0
    header, *rows = capsys.readouterr().out.splitlines()
    assert header.split() == ["JOB", "CRON", "TIMEZONE", "NEXT", "RUN"]
    assert len(rows) == 1 and rows[0].startswith("nightly")
    next_run = datetime.fromisoformat(rows[0].split()[-1])
    assert (next_run.hour, next_run.minute) == (2, 0)
    assert next_run.utcoffset() is not None and next_run > datetime.now(UTC)
    (found,) = scheduled_jobs(folder)
    assert found.next_run() == next_run


@pytest.mark.parametrize(
    ("schedule", "key"),
    [
        ({"cron": "every night"}, "schedule.cron"),
        ({"cron": "0 2 * * *", "timezone": "Mars/Olympus"}, "schedule.timezone"),
        ({"crontab": "0 2 * * *"}, "schedule.crontab"),
    ],
)
def test_a_wrong_schedule_is_named(schedule: dict, key: str) -> None:
    raw = {"job": {"name": "x"}, "source": {"url": "x/"}, "schedule": schedule}
    with pytest.raises(SpecError) as caught:
        job_from_dict(raw)
    assert caught.value.key == key
