"""The runs pages: the history with its filters, one run (live while it runs, by
server-sent events), its rejects as CSV, its output, and cancelling it."""

from __future__ import annotations

import asyncio
import csv
import io
import re
from collections.abc import AsyncIterator
from datetime import date, datetime, time, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, HTTPException, Query, Request, UploadFile
from fastapi.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse

from csvpg import rates
from csvpg.notify import masked
from csvpg.pg import history
from csvpg.rejectfile import spreadsheet_safe
from csvpg.serve import JOB_NAME, Server, ServerDep
from csvpg.serve.web.records import reading
from csvpg.serve.web.render import page, templates
from csvpg.serve.web.session import OperatorForm, PageSession
from csvpg.serve.web.watch import watch

router = APIRouter(include_in_schema=False)

RUN_ID = re.compile(r"[0-9a-f]{32}")
STATUSES = (
    "queued",
    "running",
    "cancelling",
    "succeeded",
    "partial",
    "failed",
    "cancelled",
    "abandoned",
)
#: Rejects shown on a run's page; the CSV has them all.
REJECTS_SHOWN = 200
#: One event stream's longest life: the browser opens the next at once, and a server
#: that stops never waits longer than this for a page left open.
STREAM_SECONDS = 300.0


def _day(text: str | None) -> datetime | None:
    """A date field of the filter form, as the start of that day here."""
    if not text:
        return None
    try:
        return datetime.combine(date.fromisoformat(text), time()).astimezone()
    except ValueError:
        return None


@router.get("/app/runs", response_class=HTMLResponse)
def history_page(
    request: Request,
    server: ServerDep,
    session: PageSession,
    job: str = "",
    status: str = "",
    rejects: str = "",
    since: str = "",
    until: str = "",
) -> HTMLResponse:
    last_day = _day(until)
    with reading(server) as conn:
        history.reap(conn)
        runs = history.runs(
            conn,
            job=job if JOB_NAME.fullmatch(job) else None,
            status=status if status in STATUSES else None,
            since=_day(since),
            until=last_day + timedelta(days=1) if last_day else None,
            rejects={"yes": True, "no": False}.get(rejects),
            limit=200,
        )
    jobs = sorted({p.stem for p in server.jobs_dir.glob("*.toml")} | {r.job for r in runs})
    filters = {"job": job, "status": status, "rejects": rejects, "since": since, "until": until}
    return page(
        request, "runs.html", session, runs=runs, jobs=jobs, statuses=STATUSES, filters=filters
    )


def _recorded(server: Server, run_id: str) -> dict[str, Any] | None:
    """The run, its files (with their output) and first rejects, as the history has them."""
    with reading(server) as conn:
        row = history.run(conn, run_id)
        if row is None:
            return None
        files = history.files(conn, run_id)
        rejects = history.rejects(conn, run_id, limit=REJECTS_SHOWN + 1)
        #: The files whose rejects are open: each can be exported, fixed and replayed.
        fixable = history.open_reject_files(conn, run_id)
    return {
        "fixable": fixable,
        "run": row.to_dict(),
        "files": [{**f.to_dict(), "output": f.details.get("output")} for f in files],
        "notifications": [n.to_dict() for n in row.notifications],
        "rejects": [r.to_dict() for r in rejects],
    }


def _remembered(summary: dict[str, Any]) -> dict[str, Any]:
    """A finished run the history does not hold (a dry run, a run that could not start)."""
    return {
        "run": {**summary, **summary.get("totals", {})},
        "files": summary.get("files", []),
        "notifications": masked(summary.get("notifications", [])),
        "rejects": [],
        "fixable": [],
    }


@router.get("/app/runs/{run_id}", response_class=HTMLResponse)
def run_page(run_id: str, request: Request, server: ServerDep, session: PageSession) -> Response:
    if not RUN_ID.fullmatch(run_id):
        raise HTTPException(404, f"no run {run_id!r}")
    live = server.queued(run_id)
    if live is not None and live.summary is None:
        progress = watch(request, live).snapshot()
        rate = rates.lookup(run_id)  # a record sink's rate, changeable while it runs
        return page(
            request, "live.html", session, run_id=run_id, live=live, progress=progress, rate=rate
        )
    found = _recorded(server, run_id)
    if found is None and live is not None and live.summary is not None:
        found = _remembered(live.summary)
    if found is None:
        raise HTTPException(404, f"no run {run_id!r}")
    if live is not None and live.summary is not None:  # webhook deliveries of this server
        found["notifications"] = masked(live.summary.get("notifications", []))
    more = len(found["rejects"]) > REJECTS_SHOWN
    found["rejects"] = found["rejects"][:REJECTS_SHOWN]
    return page(request, "run.html", session, run_id=run_id, more_rejects=more, **found)


@router.get("/app/runs/{run_id}/events")
async def run_events(
    run_id: str, request: Request, server: ServerDep, session: PageSession
) -> StreamingResponse:
    """The live page's table, rendered here as it changes, as server-sent events; an
    ``end`` event when the run is over (the page then loads its result)."""
    live = server.queued(run_id) if RUN_ID.fullmatch(run_id) else None
    if live is None:
        raise HTTPException(404, f"no run {run_id!r} is running here")
    progress = watch(request, live)

    async def stream() -> AsyncIterator[str]:
        version = -1
        until = asyncio.get_running_loop().time() + STREAM_SECONDS
        while not await request.is_disconnected() and asyncio.get_running_loop().time() < until:
            snapshot = progress.snapshot()
            if snapshot["version"] != version:
                version = snapshot["version"]
                html = templates.get_template("_progress.html").render(progress=snapshot)
                yield _event("progress", html)
            if snapshot["ended"]:
                yield _event("end", f"/app/runs/{run_id}")
                return
            await asyncio.to_thread(progress.wait, version, 0.5)

    return StreamingResponse(
        stream(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


def _event(name: str, data: str) -> str:
    lines = "".join(f"data: {line}\n" for line in data.splitlines() or [""])
    return f"event: {name}\n{lines}\n"


@router.post("/app/runs/{run_id}/cancel")
def cancel_run(run_id: str, server: ServerDep, session: OperatorForm) -> Response:
    from csvpg.serve.runs import cancel_live

    live = server.queued(run_id) if RUN_ID.fullmatch(run_id) else None
    if live is None or live.summary is not None:
        raise HTTPException(409, f"run {run_id} is not running here")
    cancel_live(live)
    return RedirectResponse(f"/app/runs/{run_id}", status_code=303)


@router.post("/app/runs/{run_id}/rate")
def set_rate(
    run_id: str,
    server: ServerDep,
    session: OperatorForm,
    rate_per_second: Annotated[float, Form(ge=0, le=1_000_000)],
) -> Response:
    """The running record sink's rate (``PUT /runs/{run_id}/rate``), from the live page."""
    live, rate = server.live.get(run_id), rates.lookup(run_id)
    if live is None or live.summary is not None or rate is None:
        raise HTTPException(409, f"run {run_id} is not a running job with a rate")
    rate.set(rate_per_second)
    return RedirectResponse(f"/app/runs/{run_id}", status_code=303)


@router.get("/app/runs/{run_id}/rejects.csv")
def rejects_csv(
    run_id: str,
    server: ServerDep,
    session: PageSession,
    file: Annotated[str | None, Query()] = None,
) -> Response:
    if not RUN_ID.fullmatch(run_id):
        raise HTTPException(404, f"no run {run_id!r}")
    with reading(server) as conn:
        if history.run(conn, run_id) is None:
            raise HTTPException(404, f"no run {run_id!r}")
        rows = history.rejects(conn, run_id, file=file)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["file", "line", "column", "value", "reason", "raw"])
    for r in rows:
        writer.writerow(
            [spreadsheet_safe(v) for v in (r.file, r.line, r.column, r.value, r.reason, r.raw)]
        )
    return Response(
        out.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="rejects-{run_id[:8]}.csv"'},
    )


@router.get("/app/runs/{run_id}/rejects/export")
def rejects_export(
    run_id: str,
    server: ServerDep,
    session: PageSession,
    file: Annotated[str | None, Query()] = None,
) -> Response:
    """The open rejects of one file, to fix and replay (``csvpg rejects RUN --export``)."""
    from csvpg.serve.runs import exported

    if not RUN_ID.fullmatch(run_id):
        raise HTTPException(404, f"no run {run_id!r}")
    return exported(server, run_id, file)


@router.post("/app/runs/{run_id}/replay")
def replay_fixed(
    run_id: str,
    server: ServerDep,
    session: OperatorForm,
    fixed: Annotated[UploadFile, File()],
    file: Annotated[str | None, Form()] = None,
) -> Response:
    """The run page's replay: the fixed export loaded as a replay run, whose page opens."""
    from csvpg.serve.runs import replay_upload

    if not RUN_ID.fullmatch(run_id):
        raise HTTPException(404, f"no run {run_id!r}")
    done = replay_upload(server, run_id, fixed, file)
    return RedirectResponse(f"/app/runs/{done.run_id or run_id}", status_code=303)


@router.get("/app/runs/{run_id}/output")
def run_output(
    run_id: str, server: ServerDep, session: PageSession, file: str | None = None
) -> Response:
    """The run's output file, as ``GET /runs/{id}/output`` gives it to a script."""
    from csvpg.serve.runs import get_output

    return get_output(run_id, server, file)
