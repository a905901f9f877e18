"""What the dashboard reads of the past: ``csvpg.runs``, ``csvpg.run_files`` and
``csvpg.rejects``, and the jobs in a folder. Read when the user asks (opening the
dashboard, selecting a run, ``r``), never on a timer; a live run is shown from its events.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from csvpg.pg.history import FileRow, RunRow

if TYPE_CHECKING:
    from collections.abc import Callable

    import psycopg

#: The most rejects one file shows; csvpg.rejects holds them all.
REJECTS_SHOWN = 10_000


@dataclass(frozen=True)
class JobEntry:
    path: Path
    name: str
    description: str
    error: str | None = None


class History(Protocol):
    """Where the dashboard reads past runs; :class:`PgHistory`, or a fixed one in tests.
    Rejects come as the dicts a RowsRejected event carries, as a live run shows them."""

    def runs(self, limit: int = 200) -> list[RunRow]: ...

    def files(self, run_id: str) -> list[FileRow]: ...

    def rejects(self, run_id: str, file: str) -> list[dict[str, Any]]: ...


class PgHistory:
    """The run history in one PostgreSQL database (read by :mod:`csvpg.pg.history`);
    a connection per question."""

    def __init__(self, dsn: str) -> None:
        self.dsn = dsn

    def _read(self, question: Callable[[psycopg.Connection[Any]], list[Any]]) -> list[Any]:
        from csvpg.pg import history
        from csvpg.pg.connect import connect

        with connect(self.dsn, connect_timeout=10) as conn:
            if not history.has_history(conn):
                return []  # no run has written here yet
            return question(conn)

    def runs(self, limit: int = 200) -> list[RunRow]:
        from csvpg.engine import pending
        from csvpg.pg import history

        def settled(conn: psycopg.Connection[Any]) -> list[RunRow]:
            pending.settle(conn)  # a killed run shows 'abandoned', as csvpg runs says
            return history.runs(conn, limit=limit)

        return self._read(settled)

    def files(self, run_id: str) -> list[FileRow]:
        from csvpg.pg import history

        return self._read(lambda conn: history.files(conn, run_id))

    def rejects(self, run_id: str, file: str) -> list[dict[str, Any]]:
        from csvpg.pg import history

        rows = self._read(
            lambda conn: history.rejects(conn, run_id, file=file, limit=REJECTS_SHOWN)
        )
        return [r.to_dict() for r in rows]


#: Words of a runs filter that name a status rather than a job.
STATUSES = (
    "succeeded",
    "failed",
    "partial",
    "cancelled",
    "abandoned",
    "running",
    "queued",
    "cancelling",
)


def run_matches(run: RunRow, query: str) -> bool:
    """Whether ``run`` passes the runs filter ``query``: its words all hold. A status
    (``failed``) matches the status, ``rejects`` a run with rejects, ``since:2026-03-01``
    and ``until:2026-03-31`` its start day, any other word a part of the job's name."""
    for word in query.lower().split():
        key, _, value = word.partition(":")
        if word in STATUSES:
            ok = run.status == word
        elif word == "rejects":
            ok = run.rejected > 0
        elif key in ("since", "until") and value:
            day = run.started_at.date().isoformat()
            ok = day >= value if key == "since" else day <= value
        else:
            ok = word in run.job.lower()
        if not ok:
            return False
    return True


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
