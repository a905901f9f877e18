"""The API's request and response bodies, typed: what ``/openapi.json`` documents and
what every route answers (FastAPI checks each answer against its model).

``run_id`` is the one name of a run's id everywhere. Answers keep fields a newer csvpg
adds (``extra="allow"``), so that a client written today still reads tomorrow's."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Phase = Literal["queued", "planning", "loading", "finishing", "ended"]


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")


class Error(BaseModel):
    """Every refusal: ``detail`` says what and why in one line (for a request FastAPI
    could not read: a list of what was wrong where), ``hint`` what to do."""

    detail: str | list[Any]
    hint: str | None = None
    key: str | None = Field(None, description="the spec key at fault (a bad spec)")


_WHY = {
    400: "a csvpg error other than a bad spec",
    401: "no bearer token, or a wrong one",
    403: "the token may not do this (read-only), or the server's rules refuse it",
    404: "no such job, run or file",
    409: "the run or job is not in a state that allows this",
    413: "the request body is larger than the limit",
    415: "not a data file",
    422: "the request or the spec is not valid",
    502: "the endpoint could not be reached",
}


def refusals(*codes: int) -> dict[int | str, dict[str, Any]]:
    """``responses=`` for the refusals a route can answer, each with its body model."""
    return {code: {"model": Error, "description": _WHY[code]} for code in codes}


class Notification(_Open):
    """One webhook delivery (a ``[[notify]]`` hook or the callback): URL masked."""

    url: str | None = None
    status: str
    attempts: int = 0
    http_status: int | None = None
    error: str | None = None


class LiveState(BaseModel):
    """How far a run (or one of its files) is while it runs; None where unknown."""

    phase: Phase
    size: int | None = Field(None, description="bytes to read, as far as known")
    bytes_read: int = 0
    percent: float | None = None
    bytes_per_second: float | None = None
    rows_per_second: float | None = Field(None, description="rows of the files loaded so far")
    seconds_left: float | None = None
    files_total: int | None = None
    files_done: int = 0


class FileResult(_Open):
    """One file of a run: its counts once it ended, its progress while it loads."""

    file: str
    table: str | None = None
    status: str
    rows_read: int | None = None
    inserted: int | None = None
    updated: int | None = None
    unchanged: int | None = None
    collapsed: int | None = None
    rejected: int | None = None
    seconds: float | None = None
    error: str | None = None
    hint: str | None = None
    drift: dict[str, Any] | None = Field(
        None,
        description="what the load changed in its table or left out ([sink] schema): "
        "added [{column, type}], widened [{column, from, to}], discarded and missing [names]",
    )
    reason: str | None = None
    bytes_read: int | None = None
    size: int | None = None
    percent: float | None = None


class Run(_Open):
    """A run: live (``live`` true, with ``progress``) while it runs here, from the
    history (``csvpg.runs``) afterwards; a dry run's summary has ``totals``."""

    run_id: str
    job: str
    status: str
    live: bool
    started_at: datetime | str | None = None
    finished_at: datetime | str | None = None
    seconds: float | None = None
    database: str | None = None
    dry_run: bool | None = None
    error: str | None = None
    hint: str | None = None
    files: list[FileResult] = []
    notifications: list[Notification] = []
    totals: dict[str, int] | None = None
    progress: LiveState | None = None
    rejects_open: int | None = Field(None, description="rejects no replay has loaded yet")
    rejects_resolved: int | None = Field(None, description="rejects a replay loaded")
    replay_of: str | None = Field(None, description="a replay run: the run it replays")


class RunListed(_Open):
    """A run as ``GET /runs`` lists it."""

    run_id: str
    job: str
    status: str
    started_at: datetime | str | None = None
    finished_at: datetime | str | None = None
    files: int = 0
    files_failed: int = 0
    rows_read: int = 0
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: int = 0
    rejects_open: int = 0
    rejects_resolved: int = 0
    replay_of: str | None = None
    seconds: float | None = None


class RunLinks(BaseModel):
    self: str
    rejects: str


class RunStarted(BaseModel):
    run_id: str
    status: str
    links: RunLinks


class Cancelling(BaseModel):
    run_id: str
    status: Literal["cancelling"]


class Reject(BaseModel):
    """A row set aside: where it was, the value and why (``csvpg.rejects``)."""

    file: str
    line: int | None = None
    column: str | None = None
    value: str | None = None
    reason: str
    raw: str | None = Field(None, description="the record as the file has it")
    id: int | None = Field(None, description="csvpg_reject_id of an export is R and this")
    byte_offset: int | None = Field(None, description="where the record's bytes start")
    byte_length: int | None = None
    resolved_by: str | None = Field(None, description="the replay run that loaded it")
    resolved_at: datetime | None = None
    replayed_by: str | None = Field(None, description="the last replay it failed again in")


class Replayed(BaseModel):
    """A replay of fixed rejects (``POST /runs/{run_id}/replay``)."""

    run_id: str | None = Field(description="the replay run; null when nothing was loaded")
    replay_of: str
    file: str
    status: str | None = None
    resolved: int = Field(description="rows that loaded: their rejects are resolved")
    again: int = Field(description="rows rejected again: open, with the new reason")
    skipped: int = Field(description="rows of rejects resolved before: not loaded again")
    notes: list[str] = []


class JobName(BaseModel):
    name: str
    next_run: datetime | None = Field(
        None, description="when its [schedule] runs it next (csvpg worker --jobs)"
    )


class Job(BaseModel):
    """A job file as stored, secrets masked (TOML tables as JSON objects)."""

    name: str
    spec: dict[str, Any]


class Saved(BaseModel):
    name: str
    bytes: int


class Uploaded(BaseModel):
    job: str
    saved: list[Saved]
    run_id: str | None = Field(None, description="the run started with run=true")


class JobSpec(_Open):
    """A job as TOML tables in JSON (see the README's job reference): [job] and [source]
    at least; the sections' keys are checked as ``csvpg check`` checks them (a 422
    naming the key, with the nearest valid one)."""

    job: dict[str, Any] = Field(description='{"name": "…"}')
    source: dict[str, Any] = Field(description='{"url": "…"}, a path or URL')


class RateState(BaseModel):
    """The rate a running job's sink sends at (requests a second; 0: no limit)."""

    run_id: str
    rate_per_second: float


class RateChange(BaseModel):
    rate_per_second: float = Field(ge=0, le=1_000_000, description="0: no limit")


class TestRecord(BaseModel):
    record: dict[str, str | None] = Field(
        default_factory=lambda: dict[str, str | None](csvpg_test="true"),
        description="the record to send (values as text, as a load sends them)",
    )


class TestDelivery(BaseModel):
    """What became of the test record: the endpoint's answer (its URL without query)."""

    url: str
    delivered: bool
    http_status: int | None = None
    reason: str
    attempts: int


class Worker(_Open):
    """A worker taking queued files (``csvpg worker``, or a server's own), as
    ``csvpg workers`` lists it."""

    worker_id: int
    name: str
    host: str
    pid: int
    queues: list[str]
    started_at: datetime
    last_heartbeat: datetime
    state: Literal["alive", "stalled"] = Field(
        description="stalled: no heartbeat for stalled_after seconds; its tasks are retried"
    )
    tasks: list[str] = Field(description="what it is doing: 'task run=… file=…' each")
