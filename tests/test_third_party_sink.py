"""A third-party sink that declares what it can do gets the rest from csvpg: the
example plugin's ``insert_new`` (takes_staged, stages_every_file) has bad rows set aside
with their lines, and a large file split over the run's idle connections."""

from __future__ import annotations

from pathlib import Path

from csvpg.api import run
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


def split_load(db, tmp_path: Path, sink: str, header: str, rows: list[str]):
    """One file of ``rows`` (over 1 MiB) loaded with split_mb = 1 over two connections."""
    (tmp_path / "big.csv").write_text(header + "\n" + "".join(r + "\n" for r in rows))
    job = tmp_path / "job.toml"
    extra = '[columns]\nid = "integer"\n[run]\nworkers = 2\nsplit_mb = 1\n'
    job.write_text(job_toml(db, "big.csv", sink=sink, extra=extra))
    (f,) = run(job).files
    assert f.status == "loaded", f.error
    assert f.details["split"]["connections"] == 2, f.details["split"]
    return f


def test_a_large_file_splits_over_idle_connections(db, tmp_path: Path) -> None:
    n = 100_000  # about 1.5 MiB
    f = split_load(db, tmp_path, SINK, "id,name", [f"{i},name {i}" for i in range(n)] + ["1,x"])
    assert (f.inserted, f.collapsed) == (n, 1)
    assert db.rows("t", order_by="id")[1] == (1, "name 1")  # the first row of a key wins


def test_the_merge_plugin_splits_a_large_file_too(db, tmp_path: Path) -> None:
    n = 100_000
    sink = 'mode = "merge"\ntable = "t"\nprimary_key = ["id"]'
    f = split_load(
        db, tmp_path, sink, "id,email", [f"{i},{i}@example.org" for i in range(n)] + ["7,"]
    )
    assert (f.inserted, f.collapsed, db.count("t")) == (n, 1, n)
    assert db.rows("t", order_by="id")[7] == (7, "7@example.org")  # most complete wins
