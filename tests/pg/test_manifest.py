"""The manifest: re-runs load only what is new or changed, workers never load a file
twice, and a dropped connection is retried without duplicating anything."""

from __future__ import annotations

import hashlib
import os
import threading
import time
from pathlib import Path

from csvpg import hookimpl
from csvpg.api import run
from csvpg.events import BytesRead, FileStarted, Warned
from csvpg.reporters import EventLog
from tests.conftest import job_toml
from tests.fix_pg import terminate_copies


def make_files(folder: Path, n: int, rows: int = 3) -> None:
    folder.mkdir(exist_ok=True)
    for i in range(n):
        lines = ["id,v", *(f"{i * 1000 + r},{'x' * 10}" for r in range(rows))]
        (folder / f"f{i:02d}.csv").write_text("\n".join(lines) + "\n")


def job_for(db, tmp_path: Path, extra: str = "") -> Path:
    job = tmp_path / "job.toml"
    text = job_toml(db, str(tmp_path / "in"), sink='mode = "append"\ntable = "t"', extra=extra)
    job.write_text(text.replace('url = "', 'pattern = "*.csv"\nurl = "', 1))
    return job


def test_rerun_is_a_no_op_until_a_file_changes(db, tmp_path: Path) -> None:
    make_files(tmp_path / "in", 3)
    job = job_for(db, tmp_path)
    first = run(job)
    assert [f.status for f in first.files] == ["loaded"] * 3
    again = run(job)
    assert [f.status for f in again.files] == ["skipped"] * 3
    assert all(f.error.startswith("unchanged since run ") for f in again.files)
    assert db.count("t") == 9

    changed = tmp_path / "in" / "f01.csv"
    changed.write_text("id,v\n5000,new\n")
    third = run(job)
    assert {Path(f.file).name: f.status for f in third.files} == {
        "f00.csv": "skipped",
        "f01.csv": "loaded",
        "f02.csv": "skipped",
    }
    assert db.count("t") == 10


def test_a_touched_but_identical_file_is_not_loaded_again(db, tmp_path: Path) -> None:
    make_files(tmp_path / "in", 1)
    job = job_for(db, tmp_path)
    run(job)
    path = tmp_path / "in" / "f00.csv"
    os.utime(path, (time.time() + 60, time.time() + 60))
    again = run(job)
    assert again.files[0].status == "skipped"
    assert again.files[0].error.startswith("unchanged (same sha256")
    assert db.count("t") == 3, "append did not add the same rows twice"
    # The manifest learnt the new mtime: the next run skips the file without reading it.
    third = run(job)
    assert third.files[0].error.startswith("unchanged since run ")


def test_force_reloads_and_the_manifest_keeps_the_checksum(db, tmp_path: Path) -> None:
    make_files(tmp_path / "in", 1)
    job = job_for(db, tmp_path)
    run(job)
    forced = run(job, force=True)
    assert forced.files[0].status == "loaded"
    assert db.count("t") == 6
    path = tmp_path / "in" / "f00.csv"
    row = db.execute(
        "SELECT sha256, size, rows, status, run_id FROM csvpg.manifest"
        " WHERE url = %s AND table_name = %s",
        (str(path), f"{db.schema}.t"),
    ).fetchone()
    assert row == (
        hashlib.sha256(path.read_bytes()).hexdigest(),
        path.stat().st_size,
        3,
        "loaded",
        forced.run_id,
    )


class Slow:
    """Makes each file take a moment, so that two workers interleave."""

    @hookimpl
    def track_event(self, event):
        if isinstance(event, FileStarted):
            time.sleep(0.02)


def test_two_workers_share_a_job_and_load_each_file_once(db, tmp_path: Path) -> None:
    make_files(tmp_path / "in", 20)
    job = job_for(db, tmp_path, extra="[run]\nworkers = 1\n")
    summaries = []

    def worker() -> None:
        summaries.append(run(job, plugins=[Slow()]))

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    loaded = [f.file for s in summaries for f in s.files if f.status == "loaded"]
    assert sorted(loaded) == sorted(str(p) for p in (tmp_path / "in").glob("*.csv"))
    assert db.count("t") == 60
    assert db.execute(
        "SELECT count(DISTINCT id) FROM {}".format(f'"{db.schema}".t')
    ).fetchone() == (60,)
    reasons = {
        f.error.split(" since")[0].split(" (run")[0]
        for s in summaries
        for f in s.files
        if f.status == "skipped"
    }
    assert reasons <= {"loaded by another worker", "unchanged"}
    assert all(s.status == "succeeded" for s in summaries)


def test_a_killed_connection_is_retried_and_nothing_is_duplicated(db, tmp_path: Path) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    rows = 200_000  # about 6 MiB: BytesRead fires while COPY streams
    (folder / "big.csv").write_text("id,v\n" + "".join(f"{i},{'y' * 20}\n" for i in range(rows)))
    job = job_for(db, tmp_path, extra="[run]\nretry_delay = 0.05\n")
    killed = threading.Event()

    class Killer:
        @hookimpl
        def track_event(self, event):
            late = isinstance(event, BytesRead) and event.bytes_read >= 2 << 20
            if late and not killed.is_set() and terminate_copies(db.dsn, db.schema):
                killed.set()

    log = EventLog()
    summary = run(job, plugins=[Killer(), log])
    assert killed.is_set(), "the loading backend was terminated mid-file"
    assert summary.files[0].status == "loaded", summary.files[0].error
    assert any("retry 1 of 3" in w.message for w in log.of(Warned))
    assert db.count("t") == rows
    assert run(job).files[0].status == "skipped"
    assert db.count("t") == rows


def test_a_wrong_user_fails_at_once_without_retries(db, tmp_path: Path) -> None:
    from csvpg.errors import DatabaseError

    make_files(tmp_path / "in", 1)
    job = job_for(db, tmp_path)
    bad = "postgresql://no_such_user_x@127.0.0.1:1/nodb?connect_timeout=2"
    started = time.perf_counter()
    try:
        run(job, dsn=bad)
    except DatabaseError as exc:
        assert "cannot connect to PostgreSQL" in exc.message
    else:
        raise AssertionError("expected a DatabaseError")
    assert time.perf_counter() - started < 10


def test_a_dropped_table_is_loaded_again(db, tmp_path: Path) -> None:
    make_files(tmp_path / "in", 1)
    job = job_for(db, tmp_path)
    run(job)
    db.execute(f'DROP TABLE "{db.schema}".t')
    again = run(job)
    assert again.files[0].status == "loaded"
    assert db.count("t") == 3
    os.utime(tmp_path / "in" / "f00.csv", (time.time() + 60, time.time() + 60))
    db.execute(f'DROP TABLE "{db.schema}".t')
    third = run(job)
    assert third.files[0].status == "loaded", "same checksum, but the table was gone"
    assert db.count("t") == 3


def test_the_manifest_exists_once_csvpgs_tables_are_made(db) -> None:
    from csvpg.pg import manifest
    from csvpg.pg.schema import ensure_schema

    ensure_schema(db.conn)
    assert manifest.exists(db.conn)
    with db.conn.transaction(force_rollback=True):
        db.execute("ALTER TABLE csvpg.manifest RENAME TO manifest_elsewhere")
        assert not manifest.exists(db.conn), "a rename (rolled back) hides it"


def test_unchanged_files_are_skipped_at_once_and_each_has_its_history_row(
    db, tmp_path: Path
) -> None:
    """A re-run compares the whole listing with the manifest in one query: the files it
    skips open no connection each (no FileStarted), yet each is in the run's history."""
    make_files(tmp_path / "in", 12)
    job = job_for(db, tmp_path)
    first = run(job)
    assert [f.status for f in first.files] == ["loaded"] * 12
    log = EventLog()
    (tmp_path / "in" / "f03.csv").write_text("id,v\n7000,changed\n")  # a new size
    again = run(job, plugins=[log])
    statuses = {Path(f.file).name: f.status for f in again.files}
    assert statuses.pop("f03.csv") == "loaded"
    assert set(statuses.values()) == {"skipped"}
    started = [e.file for e in log.events if isinstance(e, FileStarted)]
    assert [Path(f).name for f in started] == ["f03.csv"]
    rows = db.execute(
        "SELECT status, count(*) FROM csvpg.run_files WHERE run_id = %s GROUP BY status",
        (again.run_id,),
    ).fetchall()
    assert dict(rows) == {"skipped": 11, "loaded": 1}
    assert db.count("t") == 12 * 3 + 1
    # Dropped, the table is loaded again by every file; --force loads them all again.
    db.execute(f'DROP TABLE "{db.schema}".t')
    assert [f.status for f in run(job).files] == ["loaded"] * 12
    assert [f.status for f in run(job, force=True).files] == ["loaded"] * 12
    assert db.count("t") == 2 * (11 * 3 + 1)


def test_the_listing_query_and_the_claim_read_the_manifest_alike(db, tmp_path: Path) -> None:
    """csvpg.pg.manifest.loaded (the whole listing) and claim_file (one file, claimed in
    the same round trip) find the same rows; a file another session holds is not claimed,
    and its row is read as it was."""
    import psycopg

    from csvpg.pg import manifest

    make_files(tmp_path / "in", 3)
    job = job_for(db, tmp_path)
    run(job)
    urls = sorted(str(p) for p in (tmp_path / "in").glob("*.csv"))
    table = f"{db.schema}.t"
    with psycopg.connect(db.dsn) as conn, psycopg.connect(db.dsn) as other:
        found = manifest.loaded(conn, "test", [(u, table) for u in urls] + [("nope", table)])
        assert sorted(url for url, _ in found) == urls
        with conn.transaction():
            claim = manifest.claim_file(conn, "test", urls[0], table, target=(db.schema, "t"))
            assert claim.claimed and claim.previous == found[(urls[0], table)]
            assert claim.columns is not None and list(claim.columns) == ["id", "v"]
            with other.transaction():
                held = manifest.claim_file(other, "test", urls[0], table)
                assert not held.claimed and held.previous == claim.previous
                assert held.columns is None
        with conn.transaction():
            none = manifest.claim_file(conn, "test", "nope", table, target=(db.schema, "x"))
            assert none.claimed and none.previous is None and none.columns is None


def test_a_run_keeps_a_connection_only_after_a_clean_block(db) -> None:
    """Sessions: a clean block's connection serves the next one (an implicit transaction
    left open is committed); after an error it is closed, never handed on."""
    import psycopg
    import pytest

    from csvpg.engine.context import Sessions

    sessions = Sessions()
    try:
        with sessions.connection(db.dsn) as first:
            first.execute(f'CREATE TABLE "{db.schema}".kept (x int)')  # opens a transaction
        with sessions.connection(db.dsn) as second:
            assert second is first
            assert second.execute(f'SELECT count(*) FROM "{db.schema}".kept').fetchone() == (0,)
        with pytest.raises(psycopg.errors.UndefinedTable), sessions.connection(db.dsn) as bad:
            bad.execute(f'SELECT * FROM "{db.schema}".missing')
        assert bad.closed
        with sessions.connection(db.dsn) as third:
            assert third is not bad and not third.closed
    finally:
        sessions.close()
    assert third.closed
    with Sessions(keep=False).connection(db.dsn) as once:
        pass
    assert once.closed
