"""Engine events: frozen, past tense, each fired through the ``track_event`` hook.

Whatever a user should see (progress, counts, failures) travels as one of these and a
reporter renders it; the engine itself never prints. No event carries a password.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class Event:
    run_id: str

    def to_dict(self) -> dict[str, Any]:
        return {"event": type(self).__name__, **asdict(self)}


@dataclass(frozen=True)
class JobStarted(Event):
    """Fires once the plan is made, before the first file is opened."""

    job: str
    files: int
    database: str  # masked


@dataclass(frozen=True)
class FileSkipped(Event):
    """Fires for a file the plan leaves out (e.g. no header, nothing to load)."""

    file: str
    reason: str


@dataclass(frozen=True)
class FileStarted(Event):
    """Fires when a file is opened and its transaction begins."""

    file: str
    table: str
    size: int | None


@dataclass(frozen=True)
class BytesRead(Event):
    """Fires as a file streams, at most once per MiB read (and once at its end)."""

    file: str
    bytes_read: int
    size: int | None


@dataclass(frozen=True)
class Warned(Event):
    """Fires for something a user should know that does not stop the load."""

    message: str
    file: str | None = None


@dataclass(frozen=True)
class RowsRejected(Event):
    """Fires when a file set rows aside (before its FileLoaded or FileFailed), with the
    first few of them; all are in ``csvpg.rejects``."""

    file: str
    count: int
    first: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class FileLoaded(Event):
    """Fires after a file's transaction committed."""

    file: str
    table: str
    rows_read: int
    inserted: int
    updated: int
    collapsed: int
    rejected: int
    seconds: float
    details: dict[str, Any] = field(default_factory=dict)
    unchanged: int = 0


@dataclass(frozen=True)
class FileFailed(Event):
    """Fires after a file's transaction rolled back; its table is as it was."""

    file: str
    table: str | None
    message: str
    hint: str | None
    seconds: float


@dataclass(frozen=True)
class JobFinished(Event):
    """Fires last, with the run's totals."""

    job: str
    status: str  # succeeded | failed | partial
    files_loaded: int
    files_failed: int
    files_skipped: int
    rows_read: int
    inserted: int
    updated: int
    collapsed: int
    rejected: int
    seconds: float
    unchanged: int = 0
