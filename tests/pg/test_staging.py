"""csvpg.pg.staging: a file's rows in a TEXT staging table, in file order."""

from __future__ import annotations

from csvpg.api import prepare
from csvpg.engine.plan import open_file
from csvpg.pg.load import STAGING_ROW
from csvpg.pg.staging import stage_file
from tests.conftest import job_toml


def test_every_file_column_is_staged_as_text_in_file_order(db, tmp_path) -> None:
    (tmp_path / "p.csv").write_text("id,name,city\n3,Ada,Bonn\n1,Grace,\n2,,Köln\n")
    job = tmp_path / "job.toml"
    job.write_text(job_toml(db, "p.csv", sink='table = "p"'))
    handle = prepare(job)
    plan = handle.plan()
    (fp,) = plan.files
    opened = open_file(plan, fp)
    try:
        from csvpg.engine.fileload import FileLoad

        with db.conn.transaction(force_rollback=True):
            load = FileLoad(handle.context().for_file(plan.source, fp)).load_input(db.conn, opened)
            with db.conn.cursor() as cur:
                staged = stage_file(cur, load)
                rows = cur.execute(
                    f"SELECT * FROM {staged.table.as_string(cur)} ORDER BY {STAGING_ROW}"
                ).fetchall()
    finally:
        opened.close()
        plan.source.close()
    assert staged.rows == 3
    assert list(staged.names.values()) == ["f0", "f1", "f2"]
    assert [r[:3] for r in rows] == [
        ("3", "Ada", "Bonn"),
        ("1", "Grace", None),
        ("2", None, "Köln"),
    ]
