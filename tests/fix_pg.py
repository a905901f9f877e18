"""Real PostgreSQL for the tests: the embedded server always, plus the server named by
``--test-dsn`` or ``CSVPG_TEST_DSN``. Each test gets a schema of its own."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from csvpg.testing import CsvpgDb, fresh_schema


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--test-dsn",
        default=os.environ.get("CSVPG_TEST_DSN"),
        help="also run the database tests against this PostgreSQL (default: $CSVPG_TEST_DSN)",
    )


@pytest.fixture(scope="session")
def pg_server(csvpg_server: str) -> str:
    """The DSN of one server under test: csvpg.testing's ``csvpg_server`` (the embedded
    server in a private CSVPG_HOME, and the ``--test-dsn`` one), so the tests of the
    project and those of its plugins share one embedded cluster."""
    return csvpg_server


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

    def tables(self) -> set[str]:
        """The tables in the test's schema."""
        rows = self.conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = %s",
            (self.schema,),
        ).fetchall()
        return {r[0] for r in rows}


@pytest.fixture
def db(pg_server: str) -> Iterator[Db]:
    with fresh_schema(pg_server, Db) as schema:
        yield schema


def terminate_copies(dsn: str) -> int:
    """Terminate the backends of csvpg's COPYs in flight at ``dsn`` (a server-side fault,
    as a restart or an administrator would cause); how many there were."""
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as admin:
        row = admin.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
            " WHERE application_name = 'csvpg' AND query LIKE 'COPY%%'"
        ).fetchone()
    return int(row[0]) if row else 0
