"""``/jobs``: the job files of the jobs directory, listed, read (secrets masked),
written (checked as a run would check them) and deleted."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import tomli_w
from fastapi import APIRouter, HTTPException
from fastapi.responses import JSONResponse, Response

from csvpg.engine.plan import check_plugins
from csvpg.errors import CsvpgError
from csvpg.masking import mask_value
from csvpg.options import validate
from csvpg.serve import JOB_NAME, Server, ServerDep
from csvpg.serve.models import Job, JobName, JobSpec, TestDelivery, TestRecord, refusals
from csvpg.serve.policy import MARK
from csvpg.spec import Job as LoadedJob
from csvpg.spec import parse_toml

router = APIRouter()


@router.get("/jobs", responses=refusals(401))
def list_jobs(server: ServerDep) -> list[JobName]:
    return [
        JobName(name=p.stem, next_run=_next_run(server, p.stem))
        for p in sorted(server.jobs_dir.glob("*.toml"))
        if JOB_NAME.fullmatch(p.stem)
    ]


def _next_run(server: Server, name: str) -> datetime | None:
    """A scheduled job's next run; None without a schedule, or for a job that does not
    read (``GET /jobs/{name}`` says why)."""
    try:
        return server.load(name).schedule.next_run()
    except (CsvpgError, HTTPException):
        return None


@router.get("/jobs/{name}", responses=refusals(401, 404, 422))
def get_job(name: str, server: ServerDep) -> Job:
    path = server.job_path(name)
    if not path.is_file():
        raise HTTPException(404, f"no job named {name!r}")
    # A file edited by hand may be broken: a 422 naming the line, not a 500.
    spec = parse_toml(path.read_text(encoding="utf-8", errors="replace"), path.name)
    return Job(name=name, spec=_masked_spec(spec))


@router.put(
    "/jobs/{name}",
    response_model=JobName,
    responses={
        201: {"model": JobName, "description": "a new job"},
        **refusals(400, 401, 403, 404, 413, 422),
    },
)
def put_job(name: str, body: JobSpec, server: ServerDep) -> JSONResponse:
    path = server.job_path(name)
    spec = body.model_dump()
    # Checked as a run would check it (and held to the rules for specs sent over HTTP);
    # stored with ${VAR} as written, and marked so that every run holds it to them again.
    check_plugins(server.from_http(spec, path=path), server.registry)
    try:
        text = tomli_w.dumps(spec)
    except (TypeError, ValueError) as exc:  # JSON null has no TOML form
        raise HTTPException(422, f"the job cannot be written as TOML: {exc}") from exc
    existed = path.exists()
    server.jobs_dir.mkdir(parents=True, exist_ok=True)
    path.write_text(MARK + text, encoding="utf-8")
    return JSONResponse({"name": name}, status_code=200 if existed else 201)


@router.delete("/jobs/{name}", status_code=204, responses=refusals(401, 403, 404))
def delete_job(name: str, server: ServerDep) -> Response:
    path = server.job_path(name)
    if not path.is_file():
        raise HTTPException(404, f"no job named {name!r}")
    path.unlink()
    return Response(status_code=204)


def _masked_spec(data: dict[str, Any]) -> dict[str, Any]:
    """A spec as stored, with what could be a secret masked (see :mod:`csvpg.masking`)."""
    return {k: mask_value(v, k) for k, v in data.items()}


@router.post("/jobs/{name}/test-record", responses=refusals(400, 401, 403, 404, 409, 413, 422))
def test_record(name: str, body: TestRecord, server: ServerDep) -> TestDelivery:
    """One record through the job's sink settings (its URL, headers, retries, rate),
    marked ``X-Csvpg-Test: 1``; the answer says whether it was delivered."""
    return TestDelivery(**send_test_record(server, name, body.record))


def sends_records(server: Server, job: LoadedJob) -> bool:
    """Whether the job's sink sends records elsewhere (a webhook) and can send a test one."""
    found = server.registry.sinks.get(job.sink.mode)
    return found is not None and hasattr(found.cls, "send_test")


def send_test_record(server: Server, name: str, record: dict[str, str | None]) -> dict[str, Any]:
    """One record through the job's sink settings (the API's and the web app's button)."""
    job = server.load(name)
    if not sends_records(server, job):
        raise HTTPException(409, f"job {name!r} has a {job.sink.mode} sink, which sends no records")
    sink_cls = server.registry.sinks[job.sink.mode].cls
    options = validate("sink.options", job.sink.options, sink_cls.options, base_dir=job.base_dir)
    result: dict[str, Any] = sink_cls(**options).send_test(record)  # type: ignore[attr-defined]
    return result
