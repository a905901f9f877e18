"""pytest fixtures for plugin authors: a real PostgreSQL and a one-call job runner.

Installed with csvpg and loaded by pytest through the ``pytest11`` entry point, so a
plugin's own tests need no conftest::

    def test_my_transform(csvpg_run, csvpg_db):
        summary = csvpg_run(
            '[[transform]]\\ntype = "upper"\\ncolumns = ["city"]',
            files={"towns.csv": b"city\\nbonn\\n"},
        )
        assert summary.status == "succeeded"
        assert csvpg_db.rows("towns") == [("BONN",)]

``csvpg_db`` runs each test against the embedded PostgreSQL (kept in a private
``CSVPG_HOME`` for the session, never the user's) and, when ``--csvpg-test-dsn`` or
``CSVPG_TEST_DSN`` names one, against that server too (a project that defines its own
``--test-dsn`` option, as csvpg's own tests do, is honoured as well). Every test gets a
fresh schema, dropped afterwards. With pytest-xdist, ``-n 2 --dist loadgroup`` tests the
servers side by side: each server's tests run on one worker.

``csvpg_run(job, files={...}, plugins=[...])`` writes the files and the job into the
test's ``tmp_path``, points ``[database]`` at that schema, runs the job in-process and
returns its :class:`~csvpg.engine.RunSummary`.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import tomllib
import uuid
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any, TypeVar

import pytest

if TYPE_CHECKING:
    import psycopg
    from psycopg import sql

    from csvpg.summary import RunSummary

__all__ = ["CsvpgDb", "JobRunner"]

#: Where ``csvpg_run`` writes ``files`` (beside the job, so ``url = "files"`` reads them).
FILES_DIR = "files"
#: The job ``csvpg_run`` writes.
JOB_FILE = "job.toml"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("csvpg", "csvpg plugin testing")
    group.addoption(
        "--csvpg-test-dsn",
        default=None,
        help="run csvpg_db tests against this PostgreSQL too (default: $CSVPG_TEST_DSN)",
    )


def external_dsn(config: pytest.Config) -> str | None:
    """The extra server to test against: our option, the project's ``--test-dsn`` (when
    it defines one), or ``$CSVPG_TEST_DSN``."""
    for name in ("csvpg_test_dsn", "test_dsn"):
        value = config.getoption(name, default=None)
        if value:
            return str(value)
    return os.environ.get("CSVPG_TEST_DSN") or None


def pytest_configure(config: pytest.Config) -> None:
    # pytest-xdist's own marker, declared for runs without it (--strict-markers).
    config.addinivalue_line("markers", "xdist_group(name): tests one xdist worker runs")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "csvpg_server" in metafunc.fixturenames:
        servers = ["embedded"]
        if external_dsn(metafunc.config):
            servers.append("external")
        # Under ``pytest -n N --dist loadgroup`` each server's tests run on one worker,
        # one at a time, as without xdist: tests may count a server's sessions or end
        # its COPYs, and the servers are tested side by side.
        params = [pytest.param(s, marks=pytest.mark.xdist_group(s)) for s in servers]
        metafunc.parametrize("csvpg_server", params, indirect=True, scope="session")


@pytest.fixture(scope="session")
def csvpg_home() -> Iterator[Path]:
    """A private ``CSVPG_HOME`` for the session: the embedded server the tests start
    lives there, and jobs without ``[database]`` use it rather than the user's.

    Not under pytest's ``tmp_path``: each pytest run makes that tree 0700 again, which
    locks out the server's own system user when the tests run as root."""
    from csvpg import embedded

    home = Path(tempfile.mkdtemp(prefix="csvpg-testing-home-"))
    old = os.environ.get("CSVPG_HOME")
    os.environ["CSVPG_HOME"] = str(home)
    try:
        yield home
    finally:
        try:
            embedded.stop()
        finally:
            if old is None:
                os.environ.pop("CSVPG_HOME", None)
            else:
                os.environ["CSVPG_HOME"] = old
            shutil.rmtree(home, ignore_errors=True)


@pytest.fixture(scope="session")
def csvpg_server(request: pytest.FixtureRequest, csvpg_home: Path) -> str:
    """The libpq URL of one server under test (``embedded`` or ``external``)."""
    if getattr(request, "param", "embedded") == "external":
        dsn = external_dsn(request.config)
        assert dsn is not None
        return dsn
    from csvpg import embedded

    return embedded.start()


@dataclass
class CsvpgDb:
    """One test's schema on one server, with helpers to look at what a job loaded."""

    dsn: str
    schema: str
    conn: psycopg.Connection[Any]

    def table(self, name: str) -> sql.Composed:
        """``schema.name``, quoted, for queries of your own."""
        from psycopg import sql

        return sql.SQL("{}.{}").format(sql.Identifier(self.schema), sql.Identifier(name))

    def rows(
        self, table: str, order_by: str | Iterable[str] | None = None
    ) -> list[tuple[Any, ...]]:
        """Every row of ``table`` as tuples, ordered by the given column(s) if any."""
        from psycopg import sql

        query = sql.SQL("SELECT * FROM {}").format(self.table(table))
        if order_by:
            names = order_by.split(",") if isinstance(order_by, str) else list(order_by)
            query += sql.SQL(" ORDER BY {}").format(
                sql.SQL(", ").join(sql.Identifier(n.strip()) for n in names)
            )
        return self.conn.execute(query).fetchall()

    def count(self, table: str) -> int:
        """The number of rows in ``table``."""
        from psycopg import sql

        row = self.conn.execute(
            sql.SQL("SELECT count(*) FROM {}").format(self.table(table))
        ).fetchone()
        assert row is not None
        return int(row[0])

    def columns(self, table: str) -> dict[str, str]:
        """Column name → type as PostgreSQL writes it (``bigint``, ``numeric(12,2)``,
        ``timestamp with time zone`` …), in table order; ``{}`` when there is no table."""
        rows = self.conn.execute(
            """
            SELECT a.attname, format_type(a.atttypid, a.atttypmod)
            FROM pg_attribute a
            JOIN pg_class c ON c.oid = a.attrelid
            JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE n.nspname = %s AND c.relname = %s AND a.attnum > 0 AND NOT a.attisdropped
            ORDER BY a.attnum
            """,
            (self.schema, table),
        ).fetchall()
        return {name: type_ for name, type_ in rows}

    def execute(self, query: Any, params: Any = None) -> psycopg.Cursor[Any]:
        """Run a statement (autocommit) and return the cursor."""
        return self.conn.execute(query, params)

    def server_version(self) -> int:
        """``server_version_num``, e.g. 150020 or 180001."""
        return self.conn.info.server_version


D = TypeVar("D", bound=CsvpgDb)


@contextlib.contextmanager
def fresh_schema(dsn: str, kind: type[D]) -> Iterator[D]:
    """A new schema on ``dsn`` for one test, dropped (with its tables) afterwards."""
    import psycopg
    from psycopg import sql

    schema = "t_" + uuid.uuid4().hex[:12]
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
        try:
            yield kind(dsn, schema, conn)
        finally:
            conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))


@pytest.fixture
def csvpg_db(csvpg_server: str) -> Iterator[CsvpgDb]:
    """A fresh schema on the server under test, dropped (with its tables) afterwards."""
    with fresh_schema(csvpg_server, CsvpgDb) as db:
        yield db


class JobRunner:
    """``csvpg_run``: write files and a job into a folder and run it against a schema."""

    def __init__(self, db: CsvpgDb, folder: Path) -> None:
        self.db = db
        self.folder = folder
        #: The job file of the last call, for ``csvpg check`` or a second run.
        self.job_path: Path | None = None

    def __call__(
        self,
        job: str | Mapping[str, Any] = "",
        files: Mapping[str, bytes | str] | None = None,
        plugins: Iterable[object] = (),
        **run_options: Any,
    ) -> RunSummary:
        """Run ``job`` (TOML text or a dict like the parsed TOML) and return its summary.

        ``files`` (name → content; ``str`` is written as UTF-8) go to ``files/`` beside
        the job; a job without ``[source]`` reads that folder. ``[job] name`` defaults to
        ``"test"``, and ``[database]`` always points at the test's schema. ``plugins``
        are registered for this run only (do not pass one that is installed: its keys
        would be registered twice). ``run_options`` go to :func:`csvpg.run` (``dry_run``,
        ``force``, ``dsn`` …).
        """
        import tomli_w

        from csvpg.api import run

        spec = dict(tomllib.loads(job) if isinstance(job, str) else job)
        data = self.folder / FILES_DIR
        data.mkdir(parents=True, exist_ok=True)
        for name, content in (files or {}).items():
            path = data / _relative(name)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(content.encode("utf-8") if isinstance(content, str) else content)
        spec["job"] = {"name": "test", **dict(spec.get("job") or {})}
        spec.setdefault("source", {"url": FILES_DIR})
        # `$` starts a ${VAR} in a job file: a password holding one must stay a `$`.
        spec["database"] = {"dsn": self.db.dsn.replace("$", "$$"), "schema": self.db.schema}
        self.job_path = self.folder / JOB_FILE
        self.job_path.write_text(tomli_w.dumps(spec), encoding="utf-8")
        return run(self.job_path, plugins=plugins, **run_options)


def _relative(name: str) -> Path:
    """A file name for ``files=``: relative, with no ``..``."""
    pure = PurePosixPath(name)
    if not name or pure.is_absolute() or ".." in pure.parts:
        raise ValueError(f"csvpg_run files: {name!r} must be a relative path without '..'")
    return Path(*pure.parts)


@pytest.fixture
def csvpg_run(csvpg_db: CsvpgDb, tmp_path: Path) -> JobRunner:
    """Run a job against ``csvpg_db``: ``csvpg_run(toml_or_dict, files={name: bytes},
    plugins=[...]) -> RunSummary``."""
    return JobRunner(csvpg_db, tmp_path)
