"""Every command given bad arguments, as a user would type them: one paragraph
("error: …", maybe "hint: …"), a non-zero exit, never a traceback or a library's
stray log line."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from csvpg.cli.main import main
from tests.conftest import REPO, job_toml
from tests.fix_pg import terminate_copies

CSV = "id,name\n1,Ada\n2,Grace\n"


def csvpg(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """``csvpg …`` as a fresh process, its output as a terminal would show it."""
    return subprocess.run(
        [sys.executable, "-m", "csvpg", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **(env or {})},
        stdin=subprocess.DEVNULL,
    )


def bad_invocations(tmp: Path) -> list[list[str]]:
    """Bad arguments that need no database (or name one that is not there)."""
    example = str(REPO / "examples" / "data" / "orders.csv")
    (tmp / "photo.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4)
    (tmp / "broken.toml").write_text('[job\nname = "x"\n')
    return [
        ["run"],
        ["run", "no/such/job.toml"],
        ["run", str(tmp)],
        ["run", str(tmp / "broken.toml")],
        ["run", str(tmp / "broken.toml"), "--log-format", "xml"],
        ["check", str(tmp)],
        ["check", "no/such/job.toml", "--offline"],
        ["runs", "--dsn", "not a dsn"],
        ["runs", "--dsn", "postgresql://etl:S3cret@127.0.0.1:1/db?connect_timeout=2"],
        ["infer", example, "-o", str(tmp / "missing" / "dir" / "x.toml")],
        ["infer", example, "--sample-rows", "0"],
        ["infer", example, "--sample-rows", "-5"],
        ["infer", str(tmp / "no-such.csv")],
        ["infer", str(tmp)],
        ["serve", "--port", "-1", "--no-auth"],
        ["serve", "--port", "99999", "--no-auth"],
        ["serve", "--workers", "0", "--no-auth"],
        ["serve", "--max-upload-mb", "0", "--no-auth"],
        ["serve", "--jobs", str(tmp / "no-such-folder"), "--no-auth", "--port", "1"],
        ["serve", "--host", "0.0.0.0", "--no-auth"],
        ["dashboard", "--port", "0"],
        ["db", "explode"],
        ["plugins", "extra"],
        ["frobnicate"],
    ]


def said_in_one_paragraph(argvs: list[list[str]], cwd: Path) -> None:
    """Each command as a fresh process (two at a time): exit 1 or 2, one error line, no
    traceback, no library's log line, no password."""
    env = {"CSVPG_API_TOKEN": ""}
    with ThreadPoolExecutor(2) as pool:
        done = list(pool.map(lambda argv: csvpg(*argv, cwd=cwd, env=env), argvs))
    for argv, run in zip(argvs, done, strict=True):
        said = run.stdout + run.stderr
        assert run.returncode in (1, 2), (argv, run.returncode, said)
        assert "Traceback" not in said, (argv, said)
        assert "WARNING:" not in said, (argv, said)
        assert "S3cret" not in said, (argv, said)
        errors = [line for line in run.stderr.splitlines() if line.startswith("error: ")]
        assert len(errors) == 1, (argv, run.stderr)


def test_bad_arguments_give_one_paragraph_and_no_traceback(tmp_path: Path) -> None:
    said_in_one_paragraph(bad_invocations(tmp_path), tmp_path)


def test_bad_arguments_against_a_server_too(pg_server: str, tmp_path: Path) -> None:
    runs = ["runs", "--dsn", pg_server]
    said_in_one_paragraph(
        [[*runs, "--limit", "-1"], [*runs, "--limit", "many"], [*runs, "no-such-run"]], tmp_path
    )


def test_runs_limit_must_be_positive(pg_server: str, capsys) -> None:
    with pytest.raises(SystemExit) as info:
        main(["runs", "--dsn", pg_server, "--limit", "-1"])
    assert info.value.code == 2
    assert "argument --limit: must be 1 or more, not -1" in capsys.readouterr().err


def test_infer_into_a_missing_folder_says_so(tmp_path: Path, capsys) -> None:
    target = tmp_path / "missing" / "x.toml"
    code = main(["infer", str(REPO / "examples/data/orders.csv"), "-o", str(target)])
    assert code == 1
    err = capsys.readouterr().err
    assert err.startswith(f"error: cannot write {target}: No such file or directory")
    assert "hint: -o names a file in a folder that exists" in err


# -- csvpg check is a pre-flight ----------------------------------------------------


def test_check_fails_when_the_database_is_unreachable(tmp_path: Path, capsys) -> None:
    (tmp_path / "people.csv").write_text(CSV)
    job = tmp_path / "job.toml"
    job.write_text('[job]\nname = "x"\n[source]\nurl = "people.csv"\n')
    dsn = "postgresql://etl:S3cret@127.0.0.1:1/db?connect_timeout=2"
    assert main(["check", str(job), "--dsn", dsn]) == 1
    captured = capsys.readouterr()
    assert "error: cannot connect to PostgreSQL at postgresql://etl:***@127.0.0.1:1/db" in (
        captured.err
    )
    assert "--offline checks the spec and the files alone" in captured.err
    assert "plan ok" not in captured.out
    assert "S3cret" not in captured.out + captured.err


def test_check_offline_reads_the_files_and_says_the_database_was_not_checked(
    tmp_path: Path, capsys
) -> None:
    (tmp_path / "people.csv").write_text(CSV)
    job = tmp_path / "job.toml"
    job.write_text('[job]\nname = "x"\n[source]\nurl = "people.csv"\n')
    dsn = "postgresql://etl:S3cret@127.0.0.1:1/db?connect_timeout=2"
    assert main(["check", str(job), "--dsn", dsn, "--offline"]) == 0
    out = capsys.readouterr().out
    assert "(offline: the database is not checked)" in out
    assert "column 2: 'name' → name" in out
    assert "DDL:" not in out
    assert out.rstrip().endswith("plan ok (offline: tables and DDL not checked)")
    assert "S3cret" not in out


# -- a library's log lines never reach the terminal ---------------------------------


def test_a_lost_connection_is_said_in_csvpgs_words_only(db, tmp_path: Path) -> None:
    """psycopg logs "WARNING:psycopg:error ignored terminating <psycopg.Copy …>" when the
    server goes away mid-COPY; csvpg's retry line is what the user should read."""
    rows = 1_500_000  # ~40 MB: the COPY runs long enough to be caught in flight
    (tmp_path / "big.csv").write_text("id,v\n" + "".join(f"{i},{'y' * 20}\n" for i in range(rows)))
    job = tmp_path / "job.toml"
    job.write_text(job_toml(db, "big.csv", extra="[run]\nretry_delay = 0.05\n"))
    killed = threading.Event()

    def kill_the_copy() -> None:
        deadline = time.monotonic() + 60
        while not killed.is_set() and time.monotonic() < deadline:
            if terminate_copies(db.dsn, db.schema):
                killed.set()
            time.sleep(0.02)

    killer = threading.Thread(target=kill_the_copy)
    killer.start()
    try:
        done = csvpg("run", str(job), cwd=tmp_path)
    finally:
        killed.set()
        killer.join()
    said = done.stdout + done.stderr
    assert done.returncode == 0, said
    assert "retry 1 of 3" in said, said
    assert "WARNING" not in said and "psycopg" not in said, said
    assert "This probably means" not in said, said  # libpq's second line
    assert db.count("big") == rows
