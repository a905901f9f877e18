"""``/runs``: start a run (202 at once), list the history, follow one run (live from its
events while it runs, from ``csvpg.runs`` afterwards), its rejects, its output, cancel."""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path
from typing import Any

from fastapi import APIRouter, HTTPException
from fastapi.responses import FileResponse

from csvpg.engine import pending
from csvpg.engine.plan import check_plugins
from csvpg.notify import masked
from csvpg.pg import history
from csvpg.pg.connect import connect
from csvpg.pg.schema import ensure_schema
from csvpg.serve import Server, ServerDep
from csvpg.serve.live import RunRequest
from csvpg.spec import job_from_dict

router = APIRouter()

RUN_ID = re.compile(r"[0-9a-f]{32}")


def _recorded(server: Server, run_id: str) -> dict[str, Any] | None:
    """The run as the history holds it; None for an id that cannot be one."""
    return server.history(run_id) if RUN_ID.fullmatch(run_id) else None


@router.post("/runs", status_code=202)
def post_run(request: RunRequest, server: ServerDep) -> dict[str, Any]:
    if (request.job is None) == (request.spec is None):
        raise HTTPException(422, "give either 'job' (a name) or 'spec' (an inline job)")
    if request.callback_url is not None and not re.match(
        r"https?://[^/\s]", request.callback_url, re.IGNORECASE
    ):
        raise HTTPException(422, "'callback_url' must be an http:// or https:// URL")
    job = server.load(request.job) if request.job else job_from_dict(request.spec or {})
    check_plugins(job, server.registry)  # a misspelt mode is a 422 now, not a failed run
    live = server.start(job, request)
    return {
        "run_id": live.run_id,
        "status": live.status,
        "links": {"self": f"/runs/{live.run_id}", "rejects": f"/runs/{live.run_id}/rejects"},
    }


@router.get("/runs")
def list_runs(
    server: ServerDep,
    job: str | None = None,
    status: str | None = None,
    since: datetime | None = None,
    limit: int = 50,
) -> list[dict[str, Any]]:
    limit = max(1, min(limit, 1000))
    if "\x00" in (job or "") + (status or ""):  # PostgreSQL text cannot hold NUL
        return []
    with connect(server.dsn) as conn:
        ensure_schema(conn)
        pending.settle(conn)
        rows = history.runs(conn, job=job, status=status, since=since, limit=limit)
    return [r.listed() for r in rows]


@router.get("/runs/{run_id}")
def get_run(run_id: str, server: ServerDep) -> dict[str, Any]:
    live = server.live.get(run_id)
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


@router.get("/runs/{run_id}/rejects")
def get_rejects(
    run_id: str, server: ServerDep, limit: int = 1000, offset: int = 0
) -> list[dict[str, Any]]:
    if _recorded(server, run_id) is None:
        raise HTTPException(404, f"no run {run_id!r}")
    with connect(server.dsn) as conn:
        rows = history.rejects(
            conn, run_id, limit=max(1, min(limit, 10000)), offset=max(0, min(offset, 2**62))
        )
    return [r.to_dict() for r in rows]


@router.post("/runs/{run_id}/cancel", status_code=202)
def cancel_run(run_id: str, server: ServerDep) -> dict[str, Any]:
    live = server.live.get(run_id)
    if live is None:
        raise HTTPException(404, f"no run {run_id!r} is running here")
    if live.summary is not None:
        raise HTTPException(409, f"run {run_id} has already ended: {live.status}")
    live.handle.cancel()
    return {"run_id": run_id, "status": "cancelling"}


@router.get("/runs/{run_id}/output")
def get_output(run_id: str, server: ServerDep, file: str | None = None) -> FileResponse:
    if _recorded(server, run_id) is None:
        raise HTTPException(404, f"no run {run_id!r}")
    with connect(server.dsn) as conn:
        files = history.files(conn, run_id)
    outputs = [Path(f.details["output"]) for f in files if f.details.get("output")]
    if file:
        outputs = [p for p in outputs if p.name == file]
    if not outputs or not outputs[0].is_file():
        raise HTTPException(404, f"run {run_id} produced no output file")
    return FileResponse(outputs[0], filename=outputs[0].name)
