"""The jobs pages: every job of the jobs folder with its last run; one job's spec,
editor, pre-flight check, run and upload."""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.datastructures import UploadFile

from csvpg.engine.plan import check_plugins, resolve_url
from csvpg.errors import CsvpgError, SpecError
from csvpg.masking import mask_text
from csvpg.pg import history, queue
from csvpg.preflight import check
from csvpg.serve import JOB_NAME, Server, ServerDep
from csvpg.serve.jobs import send_test_record, sends_records
from csvpg.serve.live import RunRequest
from csvpg.serve.policy import MARK
from csvpg.serve.uploads import store
from csvpg.serve.web.masked import masked, unmasked
from csvpg.serve.web.records import reading
from csvpg.serve.web.render import page
from csvpg.serve.web.session import OperatorForm, OperatorHeader, PageSession, Session
from csvpg.serve.web.watch import watch
from csvpg.spec import parse_toml

router = APIRouter(include_in_schema=False)


@dataclass
class JobEntry:
    """A job as the jobs page lists it: valid or not, and its last run."""

    name: str
    error: CsvpgError | None = None
    source: str | None = None
    mode: str | None = None
    inbox: bool = False
    #: Its sink sends records elsewhere (a webhook): a test record can be sent.
    sends_records: bool = False
    #: When its [schedule] runs it next.
    next_run: Any = None
    last: Any = None
    running: str | None = None


def _entry(server: Server, name: str) -> JobEntry:
    entry = JobEntry(name)
    try:
        job = server.load(name)
        check_plugins(job, server.registry)
    except CsvpgError as exc:  # a spec error, or a plugin that is not installed
        entry.error = exc
        return entry
    source = resolve_url(job)
    entry.source, entry.mode, entry.inbox = mask_text(source), job.sink.mode, Path(source).is_dir()
    entry.sends_records = sends_records(server, job)
    entry.next_run = job.schedule.next_run()
    return entry


def _last_runs(server: Server, entries: list[JobEntry]) -> None:
    with reading(server) as conn:
        for entry in entries:
            found = history.runs(conn, job=entry.name, limit=1)
            entry.last = found[0] if found else None
    for live in list(server.live.values()):
        for entry in entries:
            if live.job == entry.name and live.summary is None:
                entry.running = live.run_id
    for entry in entries:
        if entry.running is None and entry.last and entry.last.status in queue.UNFINISHED:
            entry.running = entry.last.id  # a queued run, from anywhere: followed when opened


def _names(server: Server) -> list[str]:
    return [p.stem for p in sorted(server.jobs_dir.glob("*.toml")) if JOB_NAME.fullmatch(p.stem)]


@router.get("/", response_class=HTMLResponse)
def jobs_page(request: Request, server: ServerDep, session: PageSession) -> HTMLResponse:
    entries = [_entry(server, name) for name in _names(server)]
    _last_runs(server, entries)
    return page(request, "jobs.html", session, jobs=entries, jobs_dir=server.jobs_dir)


def _job_text(server: Server, name: str) -> str:
    path = server.job_path(name)
    if not path.is_file():
        raise HTTPException(404, f"no job named {name!r}")
    # The mark of a job written over HTTP is csvpg's, not the user's: kept, not shown.
    return path.read_text(encoding="utf-8", errors="replace").removeprefix(MARK)


def _job_page(
    request: Request,
    server: Server,
    session: Session,
    name: str,
    *,
    text: str | None = None,
    status_code: int = 200,
    **more: Any,
) -> HTMLResponse:
    saved = _job_text(server, name)
    entry = _entry(server, name)
    _last_runs(server, [entry])
    return page(
        request,
        "job.html",
        session,
        status_code=status_code,
        job=entry,
        saved=masked(saved),
        text=masked(saved) if text is None else text,
        **more,
    )


@router.get("/app/jobs/{name}", response_class=HTMLResponse)
def job_page(name: str, request: Request, server: ServerDep, session: PageSession) -> HTMLResponse:
    return _job_page(request, server, session, name)


def validate(server: Server, path: Path, text: str) -> None:
    """The job text as a run would take it: held, as every spec sent over HTTP is, to
    the server's rules (``${VAR}`` only as ``--env-allow`` says, paths under the data
    root, the server's database). Its SpecError (or PluginError) if not."""
    spec = parse_toml(text, path.name)
    try:
        job = server.from_http(spec, path=path)
    except HTTPException as exc:  # a rule of the server's: said as the key's error
        raise SpecError(str(exc.detail), hint="see 'Security of csvpg serve'") from exc
    check_plugins(job, server.registry)


@router.post("/app/jobs/{name}", response_class=HTMLResponse)
def save_job(
    name: str,
    request: Request,
    server: ServerDep,
    session: OperatorForm,
    text: Annotated[str, Form()],
) -> Response:
    path = server.job_path(name)
    text = unmasked(text.replace("\r\n", "\n"), _job_text(server, name))
    try:
        validate(server, path, text)
    except CsvpgError as exc:
        return _job_page(request, server, session, name, text=text, status_code=422, spec_error=exc)
    # Marked as written over HTTP: every run holds it to the same rules again.
    path.write_text(MARK + text.removeprefix(MARK), encoding="utf-8")
    return RedirectResponse(f"/app/jobs/{name}?saved=1", status_code=303)


@router.post("/app/jobs/{name}/test-record", response_class=HTMLResponse)
def test_record(
    name: str, request: Request, server: ServerDep, session: OperatorForm
) -> HTMLResponse:
    """One marked record through the job's sink settings; the page says what came back."""
    delivery = send_test_record(server, name, {"csvpg_test": "true"})
    return _job_page(request, server, session, name, test_delivery=delivery)


@router.get("/app/jobs/{name}/check", response_class=HTMLResponse)
def check_job(name: str, request: Request, server: ServerDep, session: PageSession) -> Response:
    """``csvpg check`` for the saved job: the files found, their tables and columns."""
    path = server.job_path(name)
    _job_text(server, name)
    out = io.StringIO()
    try:
        # As Server.start runs it: the job's own [database], else the server's.
        dsn = None if server.load(name).database.dsn else server.dsn
        ok = check(str(path), dsn=dsn, out=out) == 0
    except CsvpgError as exc:
        ok = False
        out.write(f"PROBLEM: {exc.message}\n" + (f"hint: {exc.hint}\n" if exc.hint else ""))
    return _job_page(request, server, session, name, plan=out.getvalue(), plan_ok=ok)


@router.post("/app/jobs/{name}/run")
def run_job(
    name: str,
    request: Request,
    server: ServerDep,
    session: OperatorForm,
    force: Annotated[bool, Form()] = False,
    dry_run: Annotated[bool, Form()] = False,
) -> Response:
    try:
        job = server.load(name)
        check_plugins(job, server.registry)
    except CsvpgError as exc:
        return _job_page(request, server, session, name, status_code=422, spec_error=exc)
    live = server.start(
        job, RunRequest(job=name, spec=None, callback_url=None, force=force, dry_run=dry_run)
    )
    watch(request, live)
    return RedirectResponse(f"/app/runs/{live.run_id}", status_code=303)


@router.post("/app/jobs/{name}/upload")
async def upload(
    name: str, request: Request, server: ServerDep, session: OperatorHeader
) -> JSONResponse:
    """The page sends one file a request, each with its own progress bar. Its size is
    known before the body is read (a browser always says it): too large, refused at once."""
    length = request.headers.get("content-length", "")
    if not length.isdigit():
        raise HTTPException(411, "the upload must say its length")
    if int(length) > server.max_upload + (1 << 20):
        raise HTTPException(413, f"larger than the upload limit ({server.max_upload >> 20} MiB)")
    form = await request.form(max_files=100)
    files = [f for f in form.getlist("files") if isinstance(f, UploadFile)]
    if not files:
        raise HTTPException(422, "no file in the upload")
    saved = await store(server, name, files)
    return JSONResponse({"saved": saved})
