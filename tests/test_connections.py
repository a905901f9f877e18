"""Named connections: a job names its database and its SFTP folder from a
``connections.toml`` (beside it, or where $CSVPG_CONNECTIONS points) with ``${VAR}``
secrets; ``csvpg connections`` lists them masked and ``test`` reaches each one."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from csvpg.api import run
from csvpg.errors import SpecError
from csvpg.spec import load_job
from tests.fix_sftp import SftpServer

SECRET = "s3cret-Pw-91"


def with_password(dsn: str) -> str:
    """The test server's DSN with ``${PG_PASSWORD}`` in it (the embedded server trusts
    its socket: the password is carried, and must never be shown)."""
    assert dsn.startswith("postgresql://postgres@")
    return dsn.replace("postgres@", "postgres:${PG_PASSWORD}@", 1)


def toml_text(tables: dict[str, dict[str, Any]]) -> str:
    import tomli_w

    return tomli_w.dumps(tables)


@pytest.fixture
def setup(db, sftp_server: SftpServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A jobs folder whose connections.toml names the database; the SFTP folder is in
    a second file that $CSVPG_CONNECTIONS names."""
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("PG_PASSWORD", SECRET)
    (sftp_server.root / "outbox" / "daily").mkdir(parents=True)
    (sftp_server.root / "outbox" / "daily" / "orders.csv").write_text("id,amount\n1,10\n2,20\n")
    jobs = tmp_path / "jobs"
    jobs.mkdir()
    (jobs / "connections.toml").write_text(
        toml_text({"warehouse": {"dsn": with_password(db.dsn), "description": "the DWH"}})
    )
    shared = tmp_path / "shared.toml"
    shared.write_text(
        toml_text(
            {
                "erp_drop": {"url": sftp_server.url("outbox/"), "options": sftp_server.options()},
                "warehouse": {"dsn": "postgresql://nobody@unused.invalid/x"},
            }
        )
    )
    monkeypatch.setenv("CSVPG_CONNECTIONS", str(shared))
    job = jobs / "orders.toml"
    job.write_text(
        textwrap.dedent(
            f"""
            [job]
            name = "orders"

            [database]
            connection = "warehouse"
            schema = "{db.schema}"

            [source]
            connection = "erp_drop"
            path = "daily/"
            """
        )
    )
    return jobs, job, shared


def test_a_job_loads_through_named_connections(setup, db, sftp_server: SftpServer) -> None:
    _, job, _ = setup
    loaded = load_job(job)
    assert loaded.source.url == sftp_server.url("outbox/daily/")
    assert loaded.source.options["known_hosts"] == str(sftp_server.known_hosts)
    summary = run(job)
    assert [f.status for f in summary.files] == ["loaded"], [f.error for f in summary.files]
    assert db.rows("orders", order_by="id") == [("1", "10"), ("2", "20")]
    assert SECRET not in repr(summary.to_dict())


def test_an_unknown_name_says_where_it_looked_and_the_nearest(setup) -> None:
    jobs, job, shared = setup
    job.write_text(job.read_text().replace('"warehouse"', '"warehose"'))
    with pytest.raises(SpecError) as err:
        load_job(job)
    text = f"{err.value} {err.value.hint}"
    assert err.value.key == "database.connection"
    assert "did you mean 'warehouse'?" in text
    assert str(jobs / "connections.toml") in text and str(shared) in text


@pytest.mark.parametrize(
    ("change", "key"),
    [
        (('path = "daily/"', 'path = "daily/"\nurl = "data/"'), "source.url"),
        (('connection = "warehouse"', 'connection = "erp_drop"'), "database.connection"),
        (
            ('connection = "erp_drop"\npath = "daily/"', 'url = "x/"\npath = "daily/"'),
            "source.path",
        ),
    ],
)
def test_a_connection_used_wrongly_is_named(setup, change: tuple[str, str], key: str) -> None:
    _, job, _ = setup
    job.write_text(job.read_text().replace(*change))
    with pytest.raises(SpecError) as err:
        load_job(job)
    assert err.value.key == key


def csvpg(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "csvpg", *args], capture_output=True, text=True, env=os.environ
    )


def test_the_command_lists_masked_and_tests_each_kind(db, setup, sftp_server: SftpServer) -> None:
    jobs, _, shared = setup
    listed = csvpg("connections", "--jobs", str(jobs))
    assert listed.returncode == 0, listed.stderr
    assert SECRET not in listed.stdout and sftp_server.passphrase not in listed.stdout
    lines = {line.split()[0]: line for line in listed.stdout.splitlines()[1:]}
    assert set(lines) == {"warehouse", "erp_drop"}
    assert "database" in lines["warehouse"] and str(jobs / "connections.toml") in lines["warehouse"]
    assert "source" in lines["erp_drop"] and str(shared) in lines["erp_drop"]

    db_test = csvpg("connections", "test", "warehouse", "--jobs", str(jobs))
    assert db_test.returncode == 0, db_test.stderr
    assert "PostgreSQL " in db_test.stdout and "user postgres" in db_test.stdout
    database = urlsplit(db.dsn).path.lstrip("/") or "postgres"
    assert f"database {database}" in db_test.stdout and SECRET not in db_test.stdout

    (sftp_server.root / "outbox" / "today.csv").write_text("id\n1\n")
    sftp_test = csvpg("connections", "test", "erp_drop", "--jobs", str(jobs))
    assert sftp_test.returncode == 0, sftp_test.stderr
    # The folder's files; its folder daily/ is none.
    assert f"reached {sftp_server.url('outbox/')}: 1 file(s): today.csv" in sftp_test.stdout


def test_a_connection_that_fails_is_one_paragraph(setup, tmp_path: Path) -> None:
    jobs, _, _ = setup
    (jobs / "connections.toml").write_text(
        toml_text(
            {
                "warehouse": {"dsn": f"postgresql://etl:{SECRET}@127.0.0.1:1/x?connect_timeout=3"},
                "missing": {"url": str(tmp_path / "no-such-folder")},
            }
        )
    )
    for name in ("warehouse", "missing"):
        out = csvpg("connections", "test", name, "--jobs", str(jobs))
        assert out.returncode == 1, (name, out.stdout, out.stderr)
        assert "Traceback" not in out.stderr and SECRET not in out.stderr
        assert out.stderr.startswith("error: "), out.stderr
    unknown = csvpg("connections", "test", "erp_dorp", "--jobs", str(jobs))
    assert unknown.returncode == 2 and "did you mean 'erp_drop'?" in unknown.stderr
