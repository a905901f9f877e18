"""Run history in PostgreSQL: csvpg.runs and csvpg.run_files agree with what loaded."""

from __future__ import annotations

from pathlib import Path

from csvpg.engine import run
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
