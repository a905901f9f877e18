"""``/runs``: start a run (202 at once), list the history, follow one run (live from its
events while it runs, from ``csvpg.runs`` afterwards), its rejects, its output, cancel."""

from __future__ import annotations

import re
import tempfile
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, HTTPException, Query, UploadFile
from fastapi.responses import FileResponse, Response

from csvpg import rates, replay
from csvpg.engine import pending
from csvpg.engine.plan import check_plugins
from csvpg.errors import CsvpgError
from csvpg.notify import masked
from csvpg.pg import history
from csvpg.pg.connect import connect
from csvpg.pg.schema import ensure_schema
from csvpg.serve import Server, ServerDep
from csvpg.serve.live import LiveRun, RunRequest
from csvpg.serve.models import (
    Cancelling,
    RateChange,
    RateState,
    Reject,
    Replayed,
    Run,
    RunLinks,
    RunListed,
    RunStarted,
    refusals,
)
from csvpg.serve.policy import check_inline, inside

router = APIRouter()

RUN_ID = re.compile(r"[0-9a-f]{32}")


def _recorded(server: Server, run_id: str) -> dict[str, Any] | None:
    """The run as the history holds it; None for an id that cannot be one."""
    return server.history(run_id) if RUN_ID.fullmatch(run_id) else None


@router.post("/runs", status_code=202, responses=refusals(400, 401, 403, 404, 413, 422))
def post_run(request: RunRequest, server: ServerDep) -> RunStarted:
    if request.spec is not None:
        check_inline(server.policy)
        job = server.from_http(request.spec)
    else:
        job = server.load(request.job or "")
    check_plugins(job, server.registry)  # a misspelt mode is a 422 now, not a failed run
    live = server.start(job, request)
    links = RunLinks(self=f"/runs/{live.run_id}", rejects=f"/runs/{live.run_id}/rejects")
    return RunStarted(run_id=live.run_id, status=live.status, links=links)


@router.get("/runs", responses=refusals(401, 422))
def list_runs(
    server: ServerDep,
    job: str | None = None,
    status: str | None = None,
    since: Annotated[str | None, Query(description="ISO 8601, e.g. 2026-01-31T00:00:00Z")] = None,
    limit: int = 50,
) -> list[RunListed]:
    limit = max(1, min(limit, 1000))
    try:  # not a datetime parameter: pydantic would take 0.5 for a time as well
        after = datetime.fromisoformat(since) if since is not None else None
    except ValueError:
        raise HTTPException(422, f"'since' must be an ISO 8601 time, not {since!r}") from None
    if "\x00" in (job or "") + (status or ""):  # PostgreSQL text cannot hold NUL
        return []
    with connect(server.dsn) as conn:
        ensure_schema(conn)
        pending.settle(conn)
        rows = history.runs(conn, job=job, status=status, since=after, limit=limit)
    return [RunListed(**r.listed()) for r in rows]


@router.get("/runs/{run_id}", responses=refusals(401, 404, 422))
def get_run(run_id: str, server: ServerDep) -> Run:
    return Run(**_run(run_id, server))


def _live(run_id: str, server: Server) -> LiveRun | None:
    """The run of this server's memory, or a queued one still going (followed now)."""
    return server.queued(run_id) if RUN_ID.fullmatch(run_id) else None


def _run(run_id: str, server: Server) -> dict[str, Any]:
    live = _live(run_id, server)
    if live is not None and live.summary is None:
        return live.to_dict()
    found = _recorded(server, run_id)
    if found is None:
        if live is not None:
            return live.to_dict()
        raise HTTPException(404, f"no run {run_id!r}")
    if live is not None and live.summary is not None:
        found["notifications"] = masked(live.summary.get("notifications", []))
    return found


@router.get("/runs/{run_id}/rejects", responses=refusals(401, 404, 422))
def get_rejects(run_id: str, server: ServerDep, limit: int = 1000, offset: int = 0) -> list[Reject]:
    if _recorded(server, run_id) is None:
        raise HTTPException(404, f"no run {run_id!r}")
    with connect(server.dsn) as conn:
        rows = history.rejects(
            conn, run_id, limit=max(1, min(limit, 10000)), offset=max(0, min(offset, 2**62))
        )
    return [Reject(**r.to_dict()) for r in rows]


@router.get(
    "/runs/{run_id}/rejects/export",
    response_class=Response,
    responses={**refusals(401, 404, 409, 422), 200: {"content": {"text/csv": {}}}},
)
def export_rejects(run_id: str, server: ServerDep, file: str | None = None) -> Response:
    """The run's open rejects of one file (``file``: needed when several have some) as
    ``csvpg rejects RUN --export`` writes them: in the file's own dialect and encoding,
    ``csvpg_reject_id`` first, formula-safe."""
    return exported(server, run_id, file)


@router.post("/runs/{run_id}/replay", responses=refusals(400, 401, 403, 404, 409, 413, 422))
def replay_rejects(
    run_id: str,
    server: ServerDep,
    fixed: Annotated[UploadFile, File(description="the fixed export")],
    file: Annotated[str | None, Form(description="the source file, when several")] = None,
) -> Replayed:
    """Load a fixed export of the run's rejects into the same table with its job's
    settings, as a replay run (``csvpg rejects RUN --replay``); answers when it is done."""
    done = replay_upload(server, run_id, fixed, file)
    return Replayed(
        run_id=done.run_id,
        replay_of=done.of_run,
        file=done.file,
        status=done.summary.status if done.summary else None,
        resolved=done.resolved,
        again=done.again,
        skipped=done.skipped,
        notes=done.notes,
    )


def replay_upload(
    server: Server, run_id: str, fixed: UploadFile, file: str | None
) -> replay.Replayed:
    """The uploaded fixed export replayed with the run's job (of the jobs folder); a
    409 says why it cannot be (no ids, another run's ids, a file that did not load)."""
    found = _recorded(server, run_id)
    if found is None:
        raise HTTPException(404, f"no run {run_id!r}")
    job = server.load(str(found["job"]))
    with tempfile.TemporaryDirectory(prefix="csvpg-replay-") as folder:
        path = Path(folder) / "fixed.csv"
        with path.open("wb") as out:
            size = 0
            while chunk := fixed.file.read(1 << 20):
                size += len(chunk)
                if size > server.max_upload:
                    raise HTTPException(413, "the file is larger than the upload limit")
                out.write(chunk)
        try:
            return replay.replay(
                job, run_id, path, dsn=None if job.database.dsn else server.dsn, file=file
            )
        except CsvpgError as exc:
            raise HTTPException(409, _said(exc)) from None


def exported(server: Server, run_id: str, file: str | None) -> Response:
    """The run's open rejects of one file as an export (``csvpg rejects RUN --export``)."""
    if _recorded(server, run_id) is None:
        raise HTTPException(404, f"no run {run_id!r}")
    with tempfile.TemporaryDirectory(prefix="csvpg-export-") as folder:
        out = Path(folder) / "rejects.csv"
        try:
            source = replay.export(server.dsn, run_id, out, file)
        except CsvpgError as exc:
            raise HTTPException(409, _said(exc)) from None
        data = out.read_bytes()
    name = source.file.file.rsplit("/", 1)[-1].rsplit(".", 1)[0]
    return Response(
        data,
        media_type=f"text/csv; charset={source.dialect.encoding}",
        headers={
            "Content-Disposition": f'attachment; filename="rejects-{run_id[:8]}-{_safe(name)}.csv"'
        },
    )


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name)[:60] or "file"


def _said(exc: CsvpgError) -> str:
    return exc.message + (f" ({exc.hint})" if exc.hint else "")


@router.post("/runs/{run_id}/cancel", status_code=202, responses=refusals(401, 403, 404, 409, 422))
def cancel_run(run_id: str, server: ServerDep) -> Cancelling:
    """A queued run's tasks stop on whichever workers run them; its files in flight roll
    back and the run ends ``cancelled`` within seconds."""
    live = _live(run_id, server)
    if live is None:
        raise HTTPException(404, f"no run {run_id!r} is running here")
    cancel_live(live)
    return Cancelling(run_id=run_id, status="cancelling")


def cancel_live(live: LiveRun) -> None:
    """The API's cancel and the web app's: a 409 for a run that has ended."""
    if live.summary is not None:
        raise HTTPException(409, f"run {live.run_id} has already ended: {live.status}")
    try:
        live.handle.cancel()
    except CsvpgError as exc:  # it ended between the two looks
        raise HTTPException(409, exc.message) from exc


@router.get(
    "/runs/{run_id}/output",
    response_class=FileResponse,
    responses={
        200: {"description": "the file the run's sink wrote"},
        **refusals(401, 403, 404, 422),
    },
)
def get_output(run_id: str, server: ServerDep, file: str | None = None) -> FileResponse:
    if _recorded(server, run_id) is None:
        raise HTTPException(404, f"no run {run_id!r}")
    with connect(server.dsn) as conn:
        files = history.files(conn, run_id)
    # Every file of a merge names the one output: each is offered once.
    outputs = list(
        dict.fromkeys(Path(f.details["output"]) for f in files if f.details.get("output"))
    )
    if file:
        outputs = [p for p in outputs if p.name == file]
    if not outputs or not outputs[0].is_file():
        raise HTTPException(404, f"run {run_id} produced no output file")
    root = server.policy.root(server.jobs_dir)
    if not inside(outputs[0], root):  # a job may write anywhere; the API serves its root
        raise HTTPException(403, f"the output {outputs[0].name} lies outside the data root")
    return FileResponse(outputs[0], filename=outputs[0].name)


def _rate(run_id: str, server: Server) -> rates.Rate:
    live = server.live.get(run_id)
    if live is None or live.summary is not None:
        raise HTTPException(404 if live is None else 409, f"no run {run_id!r} is running here")
    rate = rates.lookup(run_id)
    if rate is None:
        mode = live.handle.job.sink.mode if live.handle.job else "another worker's"
        raise HTTPException(409, f"run {run_id}'s sink ({mode}) has no rate")
    return rate


@router.get("/runs/{run_id}/rate", responses=refusals(401, 404, 409, 422))
def get_rate(run_id: str, server: ServerDep) -> RateState:
    return RateState(run_id=run_id, rate_per_second=_rate(run_id, server).value)


@router.put("/runs/{run_id}/rate", responses=refusals(400, 401, 403, 404, 409, 413, 422))
def put_rate(run_id: str, change: RateChange, server: ServerDep) -> RateState:
    """The running sink takes the new rate at its next send."""
    rate = _rate(run_id, server)
    rate.set(change.rate_per_second)
    return RateState(run_id=run_id, rate_per_second=rate.value)
