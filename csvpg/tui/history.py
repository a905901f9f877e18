"""What the dashboard reads of the past: ``csvpg.runs``, ``csvpg.run_files`` and
``csvpg.rejects``, and the jobs in a folder. Read when the user asks (opening the
dashboard, selecting a run, ``r``), never on a timer; a live run is shown from its events.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

#: The most rejects one file shows; csvpg.rejects holds them all.
REJECTS_SHOWN = 10_000


@dataclass(frozen=True)
class RunRow:
    id: str
    job: str
    status: str
    started_at: datetime
    seconds: float | None
    files: int
    files_failed: int
    rows_read: int
    inserted: int
    updated: int
    rejected: int


@dataclass(frozen=True)
class FileRow:
    file: str
    table: str | None
    status: str
    rows_read: int
    inserted: int
    updated: int
    collapsed: int
    rejected: int
    seconds: float | None
    error: str | None
    hint: str | None


@dataclass(frozen=True)
class JobEntry:
    path: Path
    name: str
    description: str
    error: str | None = None


class History(Protocol):
    """Where the dashboard reads past runs; :class:`PgHistory`, or a fixed one in tests."""

    def runs(self, limit: int = 200) -> list[RunRow]: ...

    def files(self, run_id: str) -> list[FileRow]: ...

    def rejects(self, run_id: str, file: str) -> list[dict[str, Any]]: ...


class PgHistory:
    """The run history in one PostgreSQL database; a connection per question."""

    def __init__(self, dsn: str) -> None:
        self.dsn = dsn

    def _query(self, query: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        from csvpg.pg.connect import connect

        with connect(self.dsn, connect_timeout=10) as conn:
            row = conn.execute("SELECT to_regclass('csvpg.runs') IS NOT NULL").fetchone()
            if not (row and row[0]):
                return []  # no run has written here yet
            return conn.execute(query.encode(), params).fetchall()

    def runs(self, limit: int = 200) -> list[RunRow]:
        rows = self._query(
            "SELECT id, job, status, started_at, seconds, files, files_failed, rows_read,"
            " inserted, updated, rejected FROM csvpg.runs"
            " ORDER BY started_at DESC, id LIMIT %s",
            (limit,),
        )
        return [RunRow(*r) for r in rows]

    def files(self, run_id: str) -> list[FileRow]:
        rows = self._query(
            "SELECT file, table_name, status, rows_read, inserted, updated, collapsed,"
            " rejected, seconds, error, hint FROM csvpg.run_files WHERE run_id = %s"
            " ORDER BY file",
            (run_id,),
        )
        return [FileRow(*r) for r in rows]

    def rejects(self, run_id: str, file: str) -> list[dict[str, Any]]:
        rows = self._query(
            "SELECT line, column_name, value, reason, sqlstate FROM csvpg.rejects"
            " WHERE run_id = %s AND file = %s ORDER BY line NULLS LAST, id LIMIT %s",
            (run_id, file, REJECTS_SHOWN),
        )
        keys = ("line", "column", "value", "reason", "sqlstate")
        return [dict(zip(keys, r, strict=True)) for r in rows]


def list_jobs(folder: Path) -> list[JobEntry]:
    """The ``*.toml`` jobs in ``folder``, each read and checked; a broken one is listed
    with its error rather than hidden."""
    import tomllib

    from csvpg.errors import CsvpgError
    from csvpg.spec import load_job

    entries = []
    for path in sorted(folder.glob("*.toml")) if folder.is_dir() else []:
        try:
            job = load_job(path)
        except CsvpgError as exc:
            entries.append(JobEntry(path, path.stem, "", error=exc.message))
            continue
        about = tomllib.loads(path.read_text(encoding="utf-8")).get("job", {})
        entries.append(JobEntry(path, job.name, str(about.get("description", ""))))
    return entries
