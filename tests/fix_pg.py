"""Real PostgreSQL for the tests: the embedded server always, plus the server named by
``--test-dsn`` or ``CSVPG_TEST_DSN``. Each test gets a schema of its own."""

from __future__ import annotations

import os
import re
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


def terminate_copies(dsn: str, schema: str | None = None) -> int:
    """Terminate the backends of csvpg's COPYs in flight at ``dsn`` (a server-side fault,
    as a restart or an administrator would cause); how many there were. ``schema``: only
    COPYs into that schema's tables, so another test suite on the same server (a
    developer's, say) keeps its own."""
    import psycopg

    where = "%" if schema is None else f'%"{schema}".%'
    with psycopg.connect(dsn, autocommit=True) as admin:
        row = admin.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
            " WHERE application_name = 'csvpg' AND query LIKE 'COPY%%'"
            " AND query LIKE %s",
            (where,),
        ).fetchone()
    return int(row[0]) if row else 0


# -- version-specific tests: @pytest.mark.pg(">= 17") ---------------------------------

_VERSION_SPEC = re.compile(r"\s*(>=|<=|==|>|<)\s*(\d+)\s*")


def version_matches(spec: str, server_version_num: int) -> bool:
    """``">= 17"`` against ``server_version_num`` (170004 is 17)."""
    m = _VERSION_SPEC.fullmatch(spec)
    if m is None:
        raise ValueError(f"not a version spec: {spec!r} (e.g. '>= 17')")
    op, major = m.group(1), int(m.group(2))
    have = server_version_num // 10000
    return {
        ">=": have >= major,
        "<=": have <= major,
        "==": have == major,
        ">": have > major,
        "<": have < major,
    }[op]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "pg(spec): only on servers whose major version matches, e.g. pg('>= 17')"
    )


def pytest_report_header(config: pytest.Config) -> list[str]:
    """The servers under test, with their versions."""
    lines = ["PostgreSQL under test: the embedded server (a private CSVPG_HOME)"]
    dsn = config.getoption("test_dsn")
    if dsn:
        import psycopg

        from csvpg.masking import mask_text

        try:
            with psycopg.connect(dsn, connect_timeout=5) as conn:
                version = conn.execute("SHOW server_version").fetchone()
            lines.append(f"  and {mask_text(dsn)}: PostgreSQL {version[0] if version else '?'}")
        except psycopg.Error as exc:
            lines.append(f"  and {mask_text(dsn)}: not reachable ({exc})")
    return lines


@pytest.fixture(autouse=True)
def _pg_version(request: pytest.FixtureRequest) -> None:
    """Skip a ``@pytest.mark.pg(...)`` test on a server whose version does not match."""
    marker = request.node.get_closest_marker("pg")
    if marker is None:
        return
    db = request.getfixturevalue("db")
    version = db.server_version()
    if not version_matches(marker.args[0], version):
        pytest.skip(f"needs PostgreSQL {marker.args[0]}; this server is {version // 10000}")
