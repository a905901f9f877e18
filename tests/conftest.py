from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest

pytest_plugins = ["tests.fix_pg", "tests.fix_sftp", "tests.fix_http"]

REPO = Path(__file__).resolve().parent.parent
#: Public CSV files with their licenses (tests/data/corpus/SOURCES.md).
CORPUS = REPO / "tests" / "data" / "corpus"


@pytest.fixture
def write_job(tmp_path: Path):
    """Write a job TOML (dedented) into tmp_path; returns its path."""

    def write(text: str, name: str = "job.toml") -> Path:
        path = tmp_path / name
        path.write_text(textwrap.dedent(text), encoding="utf-8")
        return path

    return write


def job_toml(db: Any, source: str, *, sink: str = "", extra: str = "", fmt: str = "") -> str:
    """A job for ``db`` reading ``source``; the sections given are added as written."""
    return textwrap.dedent(
        f"""
        [job]
        name = "test"

        [database]
        dsn = "{db.dsn}"
        schema = "{db.schema}"

        [source]
        url = "{source}"

        [format]
        {fmt}

        [sink]
        {sink}
        """
    ) + textwrap.dedent(extra)


def source_job(
    path: Path,
    db: Any,
    name: str,
    source: dict[str, Any],
    sink: dict[str, Any],
    extra: dict[str, Any] | None = None,
) -> Path:
    """A job reading ``source`` into ``db``'s schema, written at ``path``; a failed
    transfer is retried at once (``retry_delay``), unless ``extra`` says otherwise."""
    import tomli_w

    job: dict[str, Any] = {
        "job": {"name": name},
        "database": {"dsn": db.dsn, "schema": db.schema},
        "source": source,
        "sink": sink,
        "run": {"retry_delay": 0.02},
        **(extra or {}),
    }
    path.write_text(tomli_w.dumps(job))
    return path
