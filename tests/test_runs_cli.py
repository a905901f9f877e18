"""``csvpg runs`` through ``csvpg.cli.main``: recent runs, one run's files and rejects;
and ``[history] keep_days``, which forgets old runs but never the manifest."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest

from csvpg.api import run
from csvpg.cli.main import main
from csvpg.errors import SpecError
from csvpg.spec import job_from_dict
from tests.test_notify import unique, write_job

FILES = {
    "good.csv": "id,name\n1,Ada\n2,Grace\n",
    "dirty.csv": "id,name\n3,Alan\nx,Bad\n4,Barbara\n",
}
INTEGER_ID = '[columns]\nid = "integer"\n'
#: dirty.csv rejects one row of three: more than the default max_rejects allows.
ONE_REJECT = INTEGER_ID + "[sink]\nmax_rejects = 1\n"


def run_cli(job: Path, capsys, *args: str) -> dict:
    capsys.readouterr()
    main(["run", str(job), "--json", *args])
    return json.loads(capsys.readouterr().out)


def test_runs_lists_recent_runs(db, tmp_path: Path, capsys) -> None:
    name = unique("list")
    job = write_job(db, tmp_path, name, ONE_REJECT, files=FILES)
    first = run_cli(job, capsys)
    second = run_cli(job, capsys, "--force")
    assert main(["runs", "--dsn", db.dsn, "--job", name]) == 0
    header, *rows = capsys.readouterr().out.splitlines()
    assert header.split() == [
        "RUN", "JOB", "STATUS", "STARTED", "SECONDS", "FILES", "ROWS", "REJECTED", "OPEN",
        "RESOLVED",
    ]  # fmt: skip
    assert [r.split()[0] for r in rows] == [second["run_id"], first["run_id"]], "newest first"
    _id, job_name, status, _day, _time, seconds, files, rows_read, rejected, open_, resolved = rows[
        1
    ].split()
    assert (job_name, status, files, rows_read, rejected) == (name, "succeeded", "2", "5", "1")
    assert (open_, resolved) == ("1", "0"), "the reject is open: no replay resolved it"
    assert float(seconds) >= 0

    assert main(["runs", "--dsn", db.dsn, "--job", name, "--limit", "1"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 2
    assert main(["runs", "--dsn", db.dsn, "--job", unique("nobody")]) == 0
    assert capsys.readouterr().out.startswith("no runs yet of job 'nobody-")


def test_runs_id_shows_files_and_rejects(db, tmp_path: Path, capsys) -> None:
    name = unique("show")
    job = write_job(db, tmp_path, name, ONE_REJECT, files=FILES)
    summary = run_cli(job, capsys)
    run_id = summary["run_id"]
    data = tmp_path / "data"

    assert main(["runs", run_id[:12], "--dsn", db.dsn, "--rejects"]) == 0, "a prefix is enough"
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0] == f"run {run_id} of job {name}: succeeded"
    assert lines[2] == (
        "  5 rows read: 4 inserted, 0 updated, 0 unchanged, 0 collapsed, 1 rejected"
    )
    assert (
        f"  loaded   {data / 'dirty.csv'} → {db.schema}.dirty: "
        "3 read, 2 inserted, 0 updated, 0 unchanged, 1 rejected"
    ) in lines
    assert (
        f"  loaded   {data / 'good.csv'} → {db.schema}.good: "
        "2 read, 2 inserted, 0 updated, 0 unchanged, 0 rejected"
    ) in lines
    assert "  1 reject:" in lines
    assert (
        f"    {data / 'dirty.csv'}, line 3, column id: "
        "invalid input syntax for type integer: \"x\" ('x')"
    ) in lines

    assert main(["runs", run_id, "--dsn", db.dsn]) == 0
    assert "reject:" not in capsys.readouterr().out, "only with --rejects"


def test_runs_shows_a_failed_file_and_its_error(db, tmp_path: Path, capsys) -> None:
    name = unique("failed")
    job = write_job(db, tmp_path, name, INTEGER_ID + "[sink]\nmax_rejects = 0\n", files=FILES)
    summary = run_cli(job, capsys)
    assert summary["status"] == "partial"
    assert main(["runs", "--dsn", db.dsn, "--job", name]) == 0
    assert "2 (1 failed)" in capsys.readouterr().out
    assert main(["runs", summary["run_id"], "--dsn", db.dsn]) == 0
    out = capsys.readouterr().out
    assert f"run {summary['run_id']} of job {name}: partial" in out
    assert f"  failed   {tmp_path / 'data' / 'dirty.csv'} → {db.schema}.dirty" in out
    assert "invalid input syntax for type integer" in out


def test_an_unknown_or_ambiguous_run_is_an_error(db, capsys) -> None:
    assert main(["runs", "f" * 32, "--dsn", db.dsn]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"error: no run '{'f' * 32}'")
    assert "hint: csvpg runs lists the run ids; a unique prefix is enough" in err

    prefix, job = uuid.uuid4().hex[:20], unique("twins")
    ids = [prefix + "0" * 12, prefix + "1" * 12]
    for run_id in ids:
        db.execute(
            "INSERT INTO csvpg.runs (id, job, spec_hash, status, database)"
            " VALUES (%s, %s, '', 'succeeded', '')",
            (run_id, job),
        )
    try:
        assert main(["runs", prefix, "--dsn", db.dsn]) == 1
        assert f"error: '{prefix}' names 2 runs" in capsys.readouterr().err
    finally:
        db.execute("DELETE FROM csvpg.runs WHERE id = ANY(%s)", (ids,))


def test_keep_days_prunes_old_runs_but_never_the_manifest(db, tmp_path: Path) -> None:
    name = unique("prune")
    job = write_job(db, tmp_path, name, ONE_REJECT + "[history]\nkeep_days = 7\n", files=FILES)
    (tmp_path / "other").mkdir()
    other_job = write_job(db, tmp_path / "other", unique("other"))  # keep_days = 0: keeps all
    first, other = run(job), run(other_job)
    assert first.total("rejected") == 1
    db.execute(
        "UPDATE csvpg.runs SET started_at = now() - interval '8 days' WHERE id = ANY(%s)",
        ([first.run_id, other.run_id],),
    )
    recent = run(job, force=True)
    db.execute(
        "UPDATE csvpg.runs SET started_at = now() - interval '6 days' WHERE id = %s",
        (recent.run_id,),
    )
    second = run(job)
    assert [f.status for f in second.files] == ["skipped", "skipped"], "files are unchanged"

    def count(table: str, run_id: str) -> int:
        column = "id" if table == "runs" else "run_id"
        query = f"SELECT count(*) FROM csvpg.{table} WHERE {column} = %s"
        return db.execute(query, (run_id,)).fetchone()[0]

    assert [count(t, first.run_id) for t in ("runs", "run_files", "rejects")] == [0, 0, 0]
    assert count("runs", recent.run_id) == 1, "6 days old: kept"
    assert count("runs", second.run_id) == 1
    assert count("runs", other.run_id) == 1, "another job's runs are its own business"
    manifest = db.execute(
        "SELECT url, status FROM csvpg.manifest WHERE job = %s ORDER BY url", (name,)
    ).fetchall()
    assert manifest == [
        (str(tmp_path / "data" / "dirty.csv"), "loaded"),
        (str(tmp_path / "data" / "good.csv"), "loaded"),
    ]
    loaded = db.count("good"), db.count("dirty")
    third = run(job)
    assert [f.status for f in third.files] == ["skipped", "skipped"], "never loaded again"
    assert (db.count("good"), db.count("dirty")) == loaded == (4, 4), "first run, forced run"


@pytest.mark.parametrize(
    ("history", "message"),
    [
        ({"keep_days": "7"}, "'history.keep_days' must be"),
        ({"kep_days": 7}, "unknown key 'history.kep_days'"),
    ],
)
def test_history_section_is_checked(history: dict, message: str) -> None:
    with pytest.raises(SpecError) as info:
        job_from_dict({"job": {"name": "n"}, "source": {"url": "."}, "history": history})
    assert message in info.value.message
    if "kep_days" in history:
        assert info.value.hint == "did you mean 'keep_days'?"
