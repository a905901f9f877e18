"""csvpg as a library: ``csvpg.load`` without a job file, ``csvpg.start`` with a handle
that streams events, cancels and returns the summary."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

import csvpg
from csvpg import events as ev
from csvpg.errors import SourceError
from tests.conftest import job_toml


def test_load_without_a_job_file(db, tmp_path: Path) -> None:
    (tmp_path / "orders-1.csv").write_text("id,total\n1,10\n2,20\n")
    (tmp_path / "orders-2.csv").write_text("id,total\n2,25\n3,30\n")
    summary = csvpg.load(
        str(tmp_path / "orders-*.csv"),
        table="orders",
        mode="upsert",
        primary_key=["id"],
        dsn=db.dsn,
        schema=db.schema,
        columns={"id": "integer", "total": "numeric"},
    )
    assert summary.status == "succeeded"
    assert summary.exit_code == 0
    assert db.count("orders") == 3
    assert summary.total("rows_read") == 4
    assert summary.total("inserted") + summary.total("updated") == 4


def test_load_says_what_went_wrong(db, tmp_path: Path) -> None:
    with pytest.raises(SourceError) as info:
        csvpg.load(str(tmp_path / "nothing-*.csv"), dsn=db.dsn, schema=db.schema)
    assert "nothing-*.csv" in info.value.message


def test_start_streams_events_and_returns_the_summary(db, tmp_path: Path) -> None:
    (tmp_path / "a.csv").write_text("id\n1\n2\n")
    job = tmp_path / "job.toml"
    job.write_text(job_toml(db, "a.csv", sink='table = "t"'))
    handle = csvpg.start(csvpg.load_job(job))
    seen = [type(e).__name__ for e in handle.events(timeout=60)]
    summary = handle.result(timeout=60)
    assert handle.done and summary.run_id == handle.run_id
    assert seen[0] == "JobStarted" and seen[-1] == "JobFinished"
    assert "FileLoaded" in seen
    assert db.count("t") == 2


def test_a_started_run_can_be_cancelled(db, tmp_path: Path) -> None:
    """cancel() from another thread: the file in flight rolls back, the run ends
    cancelled, its table is as it was (it does not exist)."""
    rows = 400_000
    (tmp_path / "big.csv").write_text("id,v\n" + "".join(f"{i},{'x' * 30}\n" for i in range(rows)))
    job = tmp_path / "job.toml"
    job.write_text(job_toml(db, "big.csv", sink='table = "t"', extra="[run]\nsplit_mb = 0\n"))
    reading = threading.Event()

    class CancelWhenReading:
        @csvpg.hookimpl
        def track_event(self, event: ev.Event) -> None:
            if isinstance(event, ev.BytesRead):
                reading.set()

    handle = csvpg.start(job, plugins=[CancelWhenReading()])
    assert reading.wait(60)
    handle.cancel()
    summary = handle.result(timeout=60)
    assert summary.status == "cancelled"
    assert [f.status for f in summary.files] == ["cancelled"]
    assert "t" not in db.tables()


def test_a_run_that_cannot_start_raises_from_result(db, tmp_path: Path) -> None:
    job = tmp_path / "job.toml"
    job.write_text(job_toml(db, "missing-folder/", sink='table = "t"'))
    handle = csvpg.start(job)
    assert list(handle.events(timeout=60)) == []
    with pytest.raises(SourceError):
        handle.result(timeout=60)
