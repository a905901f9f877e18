"""The command line as a user meets it: exit codes, stdout, stderr."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from csvpg.cli.main import main
from tests.conftest import job_toml

CSV = "id,name\n1,Ada\n2,Grace\n"


@pytest.fixture
def job(db, tmp_path: Path) -> Path:
    (tmp_path / "people.csv").write_text(CSV)
    path = tmp_path / "job.toml"
    path.write_text(job_toml(db, "people.csv", sink='mode = "upsert"\nprimary_key = ["id"]'))
    return path


def test_run_prints_a_line_per_file(job: Path, db, capsys) -> None:
    assert main(["run", str(job)]) == 0
    out = capsys.readouterr().out
    assert f"loaded  people.csv → {db.schema}.people: 2 rows (2 inserted, 0 updated)" in out
    assert "succeeded: 1 file loaded" in out


def test_run_json_summary(job: Path, db, capsys) -> None:
    main(["run", str(job)])
    capsys.readouterr()
    assert main(["run", str(job), "--json", "--force"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["status"] == "succeeded"
    assert len(summary["run_id"]) == 32
    assert summary["totals"]["inserted"] == 0
    assert summary["totals"]["unchanged"] == 2
    (file,) = summary["files"]
    assert file["table"] == f"{db.schema}.people"
    assert file["rows_read"] == (
        file["inserted"]
        + file["updated"]
        + file["unchanged"]
        + file["collapsed"]
        + file["rejected"]
    )


def test_failed_file_exit_code_and_message(db, tmp_path: Path, capsys) -> None:
    (tmp_path / "bad.csv").write_text('id,name\n1,"never closed\n')
    path = tmp_path / "job.toml"
    path.write_text(job_toml(db, "bad.csv", sink="max_rejects = 0"))
    assert main(["run", str(path)]) == 1
    out = capsys.readouterr().out
    assert "FAILED  bad.csv" in out and "unterminated CSV quoted field" in out
    assert "Traceback" not in out


def test_missing_job_file(capsys) -> None:
    assert main(["run", "no/such/job.toml"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: job file not found: no/such/job.toml")


def test_usage_error_is_exit_2(capsys) -> None:
    with pytest.raises(SystemExit) as info:
        main(["frobnicate"])
    assert info.value.code == 2


def test_password_never_printed(tmp_path: Path, capsys) -> None:
    (tmp_path / "a.csv").write_text(CSV)
    path = tmp_path / "job.toml"
    path.write_text('[job]\nname = "x"\n[source]\nurl = "a.csv"\n')
    code = main(
        ["run", str(path), "--dsn", "postgresql://etl:hunter2@127.0.0.1:1/db?connect_timeout=2"]
    )
    captured = capsys.readouterr()
    assert code == 1
    assert "hunter2" not in captured.out + captured.err
    assert "postgresql://etl:***@127.0.0.1:1/db" in captured.err


def test_debug_shows_the_traceback(capsys) -> None:
    assert main(["--debug", "run", "no/such/job.toml"]) == 2
    assert "Traceback" in capsys.readouterr().err


def test_check_shows_plan_and_writes_nothing(job: Path, db, capsys) -> None:
    assert main(["check", str(job)]) == 0
    out = capsys.readouterr().out
    assert "people.csv → " + f"{db.schema}.people (upsert)" in out
    assert "column 1: 'id' → id" in out
    assert (
        f'CREATE TABLE "{db.schema}"."people" ("id" text, "name" text, PRIMARY KEY ("id"))' in out
    )
    assert "plan ok" in out
    assert db.execute("SELECT to_regclass(%s)", (f"{db.schema}.people",)).fetchone()[0] is None


def test_plugins_lists_builtins_and_third_party(capsys) -> None:
    assert main(["plugins"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert any(line.split()[:2] == ["sink", "upsert"] and "csvpg 0.1.0" in line for line in lines)
    assert any(
        line.split()[:2] == ["transform", "upper"] and "csvpg-example-upper" in line
        for line in lines
    )


def test_rejects_are_shown_with_line_and_reason(db, tmp_path: Path, capsys) -> None:
    (tmp_path / "n.csv").write_text("id,v\n1,a\nx,b\n3,c\n")
    path = tmp_path / "job.toml"
    path.write_text(
        job_toml(db, "n.csv", sink="max_rejects = 1", extra='[columns]\nid = "integer"\n')
    )
    assert main(["run", str(path)]) == 0
    out = capsys.readouterr().out
    assert "1 row of n.csv set aside:" in out
    assert 'line 3, column id: invalid input syntax for type integer: "x"' in out
    assert "3 rows (2 inserted, 0 updated, 1 rejected)" in out


def test_rerun_skips_unchanged_files(job: Path, db, capsys) -> None:
    assert main(["run", str(job)]) == 0
    capsys.readouterr()
    assert main(["run", str(job)]) == 0
    out = capsys.readouterr().out
    assert "skipped people.csv: unchanged since run" in out
    assert "0 files loaded, 1 skipped" in out
