"""A third-party sink that declares what it can do gets the rest from csvpg: the
example plugin's ``insert_new`` (takes_staged, stages_every_file) has bad rows set aside
with their lines, and a large file split over the run's idle connections."""

from __future__ import annotations

from pathlib import Path

from csvpg.engine import run
from tests.conftest import job_toml

SINK = 'mode = "insert_new"\ntable = "t"\nprimary_key = ["id"]\nmax_rejects = 10'


def test_bad_rows_are_rejects_with_their_lines(db, tmp_path: Path) -> None:
    db.execute(f'CREATE TABLE "{db.schema}".t (id integer PRIMARY KEY, name text)')
    db.execute(f"INSERT INTO \"{db.schema}\".t VALUES (2, 'kept')")
    (tmp_path / "new.csv").write_text("id,name\n1,Ada\n2,Grace\nx,bad\n3,Edsger\n3,again\n")
    job = tmp_path / "job.toml"
    job.write_text(job_toml(db, "new.csv", sink=SINK))
    summary = run(job)
    (f,) = summary.files
    assert f.status == "loaded", f.error
    assert db.rows("t", order_by="id") == [(1, "Ada"), (2, "kept"), (3, "Edsger")]
    assert (f.rows_read, f.inserted, f.unchanged, f.collapsed, f.rejected) == (5, 2, 1, 1, 1)
    (reject,) = db.execute(
        "SELECT line, column_name, value FROM csvpg.rejects WHERE run_id = %s",
        (summary.run_id,),
    ).fetchall()
    assert reject == (4, "id", "x")


def test_a_large_file_splits_over_idle_connections(db, tmp_path: Path) -> None:
    rows = 100_000  # about 1.5 MiB: over split_mb = 1
    (tmp_path / "big.csv").write_text(
        "id,name\n" + "".join(f"{i},name {i}\n" for i in range(rows)) + "1,repeat\n"
    )
    job = tmp_path / "job.toml"
    job.write_text(
        job_toml(
            db,
            "big.csv",
            sink=SINK,
            extra='[columns]\nid = "integer"\n[run]\nworkers = 2\nsplit_mb = 1\n',
        )
    )
    (f,) = run(job).files
    assert f.status == "loaded", f.error
    assert f.details["split"]["connections"] == 2, f.details["split"]
    assert (f.inserted, f.collapsed) == (rows, 1)
    assert db.rows("t", order_by="id")[1] == (1, "name 1")  # the first row of a key wins


def test_the_merge_plugin_splits_a_large_file_too(db, tmp_path: Path) -> None:
    rows = 100_000
    (tmp_path / "contacts.csv").write_text(
        "id,email\n" + "".join(f"{i},{i}@example.org\n" for i in range(rows)) + "7,\n"
    )
    job = tmp_path / "job.toml"
    job.write_text(
        job_toml(
            db,
            "contacts.csv",
            sink='mode = "merge"\ntable = "t"\nprimary_key = ["id"]',
            extra='[columns]\nid = "integer"\n[run]\nworkers = 2\nsplit_mb = 1\n',
        )
    )
    (f,) = run(job).files
    assert f.status == "loaded", f.error
    assert f.details["split"]["connections"] == 2, f.details["split"]
    assert (f.inserted, f.collapsed, db.count("t")) == (rows, 1, rows)
    assert db.rows("t", order_by="id")[7] == (7, "7@example.org")  # most complete wins
