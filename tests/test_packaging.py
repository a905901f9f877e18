"""What installing csvpg brings: the loader's dependencies, and nothing of its
development (``uv tool install .`` and ``pipx install .`` install these alone)."""

from __future__ import annotations

import importlib.metadata
import tomllib

from packaging.requirements import Requirement

from tests.conftest import REPO

#: Tools of csvpg's development and tests: never installed with the loader.
DEVELOPMENT = {
    "pytest",
    "hypothesis",
    "mypy",
    "ruff",
    "nox",
    "schemathesis",
    "playwright",
    "import-linter",
    "pytest-textual-snapshot",
    "httpx",
    "jsonschema-rs",
}


def _installed() -> list[Requirement]:
    return [Requirement(r) for r in importlib.metadata.requires("csvpg") or []]


def test_installing_csvpg_brings_none_of_its_development_tools() -> None:
    required = {r.name for r in _installed() if r.marker is None}
    assert required, "csvpg has dependencies"
    assert not required & DEVELOPMENT
    assert "fastapi" not in required, "the HTTP API is the 'serve' extra"


def test_every_development_tool_is_in_the_dev_group_the_test_command_installs() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    dev = {Requirement(r).name for r in project["dependency-groups"]["dev"]}
    assert dev >= DEVELOPMENT
    serve = {r.name for r in _installed() if r.marker and "serve" in str(r.marker)}
    assert {"fastapi", "uvicorn", "jinja2"} <= serve
