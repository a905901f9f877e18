"""Engine events: frozen, past tense, each fired through the ``track_event`` hook.

Whatever a user should see (progress, counts, failures) travels as one of these and a
reporter renders it; the engine itself never prints. No event carries a password.

Each has a stable ``name`` (snake case, kept when a class is renamed: log shippers and
dashboards match on it) and ``created``, the time it was made (``time.time()``).
Every end of a file has its own event: FileLoaded, FileFailed, FileCancelled, FileSkipped.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar


@dataclass(frozen=True)
class Event:
    name: ClassVar[str] = "event"

    run_id: str
    #: Keyword-only, last in ``__init__``; not compared: two events alike but for their
    #: time are the same event.
    created: float = field(default_factory=time.time, kw_only=True, compare=False)

    def to_dict(self) -> dict[str, Any]:
        return {"event": type(self).__name__, "name": self.name, **asdict(self)}


@dataclass(frozen=True)
class JobStarted(Event):
    """Fires once the plan is made, before the first file is opened."""

    name: ClassVar[str] = "job_started"

    job: str
    files: int
    database: str  # masked
    #: Each file is loaded, then rolled back: reporters say "would load".
    dry_run: bool = False
    #: The bytes of all the run's files, when every size is known: the overall bar's total.
    bytes: int | None = None
    #: Seconds PostgreSQL writes after a file is read, per byte, as the job's last runs
    #: took it (None before its first): the time left counts the write phase with it.
    write_per_byte: float | None = None


@dataclass(frozen=True)
class FileSkipped(Event):
    """Fires for a file the plan leaves out (e.g. no header, nothing to load)."""

    name: ClassVar[str] = "file_skipped"

    file: str
    reason: str


@dataclass(frozen=True)
class FileStarted(Event):
    """Fires when a file is opened and its transaction begins."""

    name: ClassVar[str] = "file_started"

    file: str
    table: str
    size: int | None


@dataclass(frozen=True)
class BytesRead(Event):
    """Fires as a file streams, at most once per MiB read (and once at its end)."""

    name: ClassVar[str] = "bytes_read"

    file: str
    bytes_read: int
    size: int | None


@dataclass(frozen=True)
class FilePhase(Event):
    """Fires when a file's load enters a phase its bytes do not show: ``checking bad
    rows`` (the careful path reads the file again, record by record). Reading, and
    PostgreSQL writing once every byte is read, show in BytesRead."""

    name: ClassVar[str] = "file_phase"

    file: str
    phase: str


@dataclass(frozen=True)
class Warned(Event):
    """Fires for something a user should know that does not stop the load."""

    name: ClassVar[str] = "warned"

    message: str
    file: str | None = None


@dataclass(frozen=True)
class RowsRejected(Event):
    """Fires when a file set rows aside (before its FileLoaded or FileFailed), with the
    first few of them; all are in ``csvpg.rejects``."""

    name: ClassVar[str] = "rows_rejected"

    file: str
    count: int
    first: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class FileLoaded(Event):
    """Fires after a file's transaction committed."""

    name: ClassVar[str] = "file_loaded"

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
    """Fires after a file's transaction rolled back because of an error; its table is as
    it was."""

    name: ClassVar[str] = "file_failed"

    file: str
    table: str | None
    message: str
    hint: str | None
    seconds: float


@dataclass(frozen=True)
class FileCancelled(Event):
    """Fires after a file's transaction rolled back because the run was cancelled
    (``csvpg.engine.run.Engine.cancel``, a signal, the dashboard); its table is as it was."""

    name: ClassVar[str] = "file_cancelled"

    file: str
    table: str | None
    seconds: float


@dataclass(frozen=True)
class JobFinished(Event):
    """Fires last, with the run's totals."""

    name: ClassVar[str] = "job_finished"

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
