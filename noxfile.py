"""Developer sessions. Each runs in the project's uv environment (``uv.lock``)."""

from __future__ import annotations

from pathlib import Path

import nox

nox.options.default_venv_backend = "none"
nox.options.sessions = ["lint", "typecheck", "tests"]


@nox.session
def tests(session: nox.Session) -> None:
    """The test suite; set CSVPG_TEST_DSN to also test against another server."""
    session.run("uv", "run", "--frozen", "pytest", *session.posargs, external=True)


@nox.session
def lint(session: nox.Session) -> None:
    session.run("uv", "run", "--frozen", "ruff", "check", ".", external=True)
    session.run("uv", "run", "--frozen", "ruff", "format", "--check", ".", external=True)
    session.run("uv", "run", "--frozen", "lint-imports", external=True)  # pyproject contracts


#: Each plugin's package: typed against csvpg's public API as a third party's would be.
PLUGIN_PACKAGES = sorted(str(p.parent) for p in Path().glob("*/*/csvpg_*/__init__.py"))


@nox.session
def typecheck(session: nox.Session) -> None:
    """``mypy --strict`` (pyproject's [tool.mypy]) on csvpg and on every plugin package."""
    session.run("uv", "run", "--frozen", "mypy", "csvpg", *PLUGIN_PACKAGES, external=True)


@nox.session
def bench(session: nox.Session) -> None:
    """csvpg against psql \\copy and other loaders (tests/benchmark.py; DuckDB and sling from
    the ``bench`` dependency group, pgloader from the system).

    Options after ``--``: ``--rows N`` (default 1 000 000), ``--runs N`` (3), ``--keep``.
    Data, a private embedded cluster and ``results.json`` go to ``bench-data/``.
    """
    session.run(
        "uv",
        "run",
        "--frozen",
        "--group",
        "bench",
        "python",
        "-m",
        "tests.benchmark",
        *session.posargs,
        external=True,
    )
