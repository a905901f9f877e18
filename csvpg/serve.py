"""``csvpg serve``: an HTTP API over the same ``run()``, for n8n, cron and CI.

Every route but ``/health`` needs ``Authorization: Bearer $CSVPG_API_TOKEN``. Runs start
in a bounded background pool and answer 202 at once; their state is live while they
run (from engine events, no polling) and comes from ``csvpg.runs`` afterwards.
Database passwords never appear in a response.
"""

from __future__ import annotations

import hmac
import re
import threading
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import tomli_w
from fastapi import Depends, FastAPI, File, Form, HTTPException, Request, UploadFile
from fastapi.responses import FileResponse, JSONResponse, PlainTextResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, Field

from csvpg import __version__
from csvpg import events as ev
from csvpg.api import RunHandle, prepare
from csvpg.engine import pending
from csvpg.engine.plan import check_plugins, resolve_url
from csvpg.errors import CsvpgError, SpecError
from csvpg.hookspecs import hookimpl
from csvpg.masking import mask_value
from csvpg.notify import Webhook, deliver, masked
from csvpg.pg import history
from csvpg.pg.connect import connect
from csvpg.pg.schema import ensure_schema
from csvpg.plugins import Registry, get_plugin_manager
from csvpg.spec import Job, job_from_dict, parse_toml
from csvpg.summary import RunSummary

#: Finished runs kept in memory (for their webhook deliveries, and dry runs, which the
#: history does not hold); older ones are answered from the history alone.
KEEP_FINISHED = 100

#: Module level: FastAPI reads the dependency from the annotations (strings here).
BEARER = HTTPBearer(auto_error=False)
JOB_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
UNSAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")


class RunRequest(BaseModel):
    job: str | None = Field(None, description="the name of a job in the jobs directory")
    spec: dict[str, Any] | None = Field(None, description="an inline job spec (as TOML → JSON)")
    callback_url: str | None = Field(None, description="POST the summary here when it ends")
    force: bool = False
    dry_run: bool = False


@dataclass
class LiveRun:
    """A run started here: its state from engine events, until it ends."""

    run_id: str
    job: str
    handle: RunHandle
    status: str = "queued"
    started_at: str = field(default_factory=lambda: datetime.now().astimezone().isoformat())
    files: dict[str, dict[str, Any]] = field(default_factory=dict)
    summary: dict[str, Any] | None = None
    error: str | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    @hookimpl
    def track_event(self, event: ev.Event) -> None:
        with self.lock:
            if isinstance(event, ev.JobStarted):
                self.status = "running"
            elif isinstance(event, ev.FileStarted):
                self.files[event.file] = {
                    "file": event.file,
                    "table": event.table,
                    "status": "loading",
                    "bytes_read": 0,
                }
            elif isinstance(event, ev.BytesRead):
                self.files.setdefault(event.file, {"file": event.file})["bytes_read"] = (
                    event.bytes_read
                )
            elif isinstance(event, ev.FileLoaded):
                self.files[event.file] = {
                    "file": event.file,
                    "table": event.table,
                    "status": "loaded",
                    "rows_read": event.rows_read,
                    "inserted": event.inserted,
                    "updated": event.updated,
                    "unchanged": event.unchanged,
                    "collapsed": event.collapsed,
                    "rejected": event.rejected,
                    "seconds": round(event.seconds, 3),
                }
            elif isinstance(event, ev.FileFailed):
                self.files[event.file] = {
                    "file": event.file,
                    "table": event.table,
                    "status": "failed",
                    "error": event.message,
                }
            elif isinstance(event, ev.FileCancelled):
                self.files[event.file] = {
                    "file": event.file,
                    "table": event.table,
                    "status": "cancelled",
                    "seconds": round(event.seconds, 3),
                }
            elif isinstance(event, ev.FileSkipped):
                self.files[event.file] = {
                    "file": event.file,
                    "status": "skipped",
                    "reason": event.reason,
                }

    def to_dict(self) -> dict[str, Any]:
        with self.lock:
            if self.summary is not None:
                return {**self.summary, "live": False}
            return {
                "run_id": self.run_id,
                "job": self.job,
                "status": self.status,
                "started_at": self.started_at,
                "error": self.error,
                "live": True,
                "files": list(self.files.values()),
            }


class Server:
    def __init__(self, *, jobs_dir: Path, dsn: str | None, workers: int, max_upload: int) -> None:
        self.jobs_dir = jobs_dir
        self._dsn = dsn
        self.max_upload = max_upload
        self.pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="csvpg-serve")
        self.live: dict[str, LiveRun] = {}
        self._finished: deque[str] = deque()
        self.registry = Registry(get_plugin_manager())
        self.lock = threading.Lock()

    @property
    def dsn(self) -> str:
        """The database for history (and for jobs that name none): --dsn or embedded."""
        if not self._dsn:
            from csvpg import embedded

            self._dsn = embedded.start()
        return self._dsn

    # -- jobs ----------------------------------------------------------------------

    def job_path(self, name: str) -> Path:
        if not JOB_NAME.fullmatch(name) or name.endswith(".toml"):
            raise HTTPException(404, f"no job named {name!r}")
        return self.jobs_dir / f"{name}.toml"

    def load(self, name: str) -> Job:
        from csvpg.spec import load_job

        path = self.job_path(name)
        if not path.is_file():
            raise HTTPException(404, f"no job named {name!r}")
        return load_job(path)

    # -- runs ----------------------------------------------------------------------

    def start(self, job: Job, request: RunRequest) -> LiveRun:
        handle = prepare(
            job,
            dsn=None if job.database.dsn else self.dsn,
            dry_run=request.dry_run,
            force=request.force,
            callbacks=[request.callback_url] if request.callback_url else [],
        )
        live = LiveRun(handle.run_id, job.name, handle)
        handle.pm.register(live)
        with self.lock:
            self.live[live.run_id] = live
        self.pool.submit(self._run, live)
        return live

    def _run(self, live: LiveRun) -> None:
        summary: RunSummary | None = None
        try:
            summary = live.handle.run()
            data = summary.to_dict()
        except CsvpgError as exc:  # the engine has told the webhooks already
            data = {
                "run_id": live.run_id,
                "job": live.job,
                "status": "failed",
                "error": exc.message,
                "hint": exc.hint,
                "files": [],
                "notifications": live.handle.early_notifications,
            }
        except Exception as exc:  # a bug: kept in the run's state for the caller to see
            data = {
                "run_id": live.run_id,
                "job": live.job,
                "status": "failed",
                "error": f"internal error: {type(exc).__name__}: {exc}",
                "files": [],
            }
        if "notifications" not in data and not live.handle.dry_run:  # a bug ended it early
            try:
                data["notifications"] = _notify_early_failure(live.handle, data)
            except Exception as exc:  # never leave the run looking live
                data["notifications"] = masked([{"status": "failed", "error": f"{exc!r}"}])
        with live.lock:
            live.summary = data
            live.status = data["status"]
        with self.lock:  # a server that runs for months must not grow with every run
            self._finished.append(live.run_id)
            while len(self._finished) > KEEP_FINISHED:
                self.live.pop(self._finished.popleft(), None)

    def history(self, run_id: str) -> dict[str, Any] | None:
        with connect(self.dsn) as conn:
            ensure_schema(conn)
            pending.settle(conn)
            run = history.run(conn, run_id)
            if run is None:
                return None
            files = history.files(conn, run_id)
        return {**run.to_dict(), "live": False, "files": [f.to_dict() for f in files]}


def _notify_early_failure(run: RunHandle, data: dict[str, Any]) -> list[dict[str, Any]]:
    """A run that failed before loading anything (no files, database down) still ends:
    its callback and [[notify]] webhooks hear so, or a caller would wait forever."""
    hooks = [Webhook(**entry) for entry in run.job.notify]
    hooks += [Webhook(url=url) for url in run.callbacks]
    return [deliver(hook, data).to_dict() for hook in hooks]


def _masked_spec(data: dict[str, Any]) -> dict[str, Any]:
    """A spec as stored, with what could be a secret masked (see :mod:`csvpg.masking`)."""
    return {k: mask_value(v, k) for k, v in data.items()}


class BodyLimit:
    """Refuses a request to ``path`` whose body is over ``limit`` bytes with a 413 while it
    streams in (by its Content-Length, or by counting a chunked one), before the form
    parser spools it to disk."""

    def __init__(self, app: Any, *, path: str, limit: int) -> None:
        self.app = app
        self.path = path
        self.limit = limit

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["path"] != self.path:
            await self.app(scope, receive, send)
            return
        detail = f"the upload is larger than the limit ({(self.limit >> 20) - 1} MiB of files)"
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.limit:
            await JSONResponse({"detail": detail}, status_code=413)(scope, receive, send)
            return
        received = 0

        async def counted() -> Any:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.limit:
                raise HTTPException(413, detail)
            return message

        await self.app(scope, counted, send)


def make_app(
    *,
    jobs_dir: Path,
    dsn: str | None = None,
    token: str | None = None,
    workers: int = 2,
    max_upload_mb: int = 100,
) -> FastAPI:
    """The API; ``token`` None means no authentication (loopback only: the CLI checks)."""
    server = Server(jobs_dir=jobs_dir, dsn=dsn, workers=workers, max_upload=max_upload_mb << 20)
    app = FastAPI(
        title="csvpg",
        version=__version__,
        description="Load CSV files into PostgreSQL: jobs, runs, uploads, history.",
    )
    app.state.server = server
    # The files of one request, plus room for the form's other fields and framing.
    app.add_middleware(BodyLimit, path="/uploads", limit=server.max_upload + (1 << 20))

    def authorised(
        cred: Annotated[HTTPAuthorizationCredentials | None, Depends(BEARER)],
    ) -> None:
        if token is None:
            return
        if cred is None or not hmac.compare_digest(cred.credentials.encode(), token.encode()):
            raise HTTPException(
                401, "a bearer token is required", headers={"WWW-Authenticate": "Bearer"}
            )

    auth = [Depends(authorised)]

    @app.exception_handler(SpecError)
    def spec_error(_: Request, exc: SpecError) -> JSONResponse:
        return JSONResponse(
            {"detail": exc.message, "hint": exc.hint, "key": exc.key}, status_code=422
        )

    @app.exception_handler(CsvpgError)
    def csvpg_error(_: Request, exc: CsvpgError) -> JSONResponse:
        return JSONResponse({"detail": exc.message, "hint": exc.hint}, status_code=400)

    @app.get("/health")
    def health() -> JSONResponse:
        try:
            with connect(server.dsn, connect_timeout=5) as conn:
                conn.execute("SELECT 1")
            return JSONResponse({"status": "ok", "version": __version__, "database": "reachable"})
        except CsvpgError as exc:
            return JSONResponse(
                {"status": "degraded", "version": __version__, "database": exc.message},
                status_code=503,
            )

    @app.get("/jobs", dependencies=auth)
    def list_jobs() -> list[dict[str, str]]:
        return [
            {"name": p.stem}
            for p in sorted(server.jobs_dir.glob("*.toml"))
            if JOB_NAME.fullmatch(p.stem)
        ]

    @app.get("/jobs/{name}", dependencies=auth)
    def get_job(name: str) -> dict[str, Any]:
        path = server.job_path(name)
        if not path.is_file():
            raise HTTPException(404, f"no job named {name!r}")
        # A file edited by hand may be broken: a 422 naming the line, not a 500.
        spec = parse_toml(path.read_text(encoding="utf-8", errors="replace"), path.name)
        return {"name": name, "spec": _masked_spec(spec)}

    @app.put("/jobs/{name}", dependencies=auth)
    def put_job(name: str, spec: dict[str, Any]) -> JSONResponse:
        path = server.job_path(name)
        # Checked as a run would check it, with ${VAR} left as written.
        check_plugins(job_from_dict(spec, path=path, env=_Permissive()), server.registry)
        try:
            text = tomli_w.dumps(spec)
        except (TypeError, ValueError) as exc:  # JSON null has no TOML form
            raise HTTPException(422, f"the job cannot be written as TOML: {exc}") from exc
        existed = path.exists()
        server.jobs_dir.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        return JSONResponse({"name": name}, status_code=200 if existed else 201)

    @app.delete("/jobs/{name}", dependencies=auth, status_code=204)
    def delete_job(name: str) -> Response:
        path = server.job_path(name)
        if not path.is_file():
            raise HTTPException(404, f"no job named {name!r}")
        path.unlink()
        return Response(status_code=204)

    @app.post("/runs", dependencies=auth, status_code=202)
    def post_run(request: RunRequest) -> dict[str, Any]:
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

    @app.get("/runs", dependencies=auth)
    def list_runs(
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

    @app.get("/runs/{run_id}", dependencies=auth)
    def get_run(run_id: str) -> dict[str, Any]:
        live = server.live.get(run_id)
        if live is not None and live.summary is None:
            return live.to_dict()
        found = server.history(run_id) if re.fullmatch(r"[0-9a-f]{32}", run_id) else None
        if found is None:
            if live is not None:
                return live.to_dict()
            raise HTTPException(404, f"no run {run_id!r}")
        if live is not None and live.summary is not None:
            found["notifications"] = masked(live.summary.get("notifications", []))
        return found

    @app.get("/runs/{run_id}/rejects", dependencies=auth)
    def get_rejects(run_id: str, limit: int = 1000, offset: int = 0) -> list[dict[str, Any]]:
        if not re.fullmatch(r"[0-9a-f]{32}", run_id) or server.history(run_id) is None:
            raise HTTPException(404, f"no run {run_id!r}")
        with connect(server.dsn) as conn:
            rows = history.rejects(
                conn, run_id, limit=max(1, min(limit, 10000)), offset=max(0, min(offset, 2**62))
            )
        return [r.to_dict() for r in rows]

    @app.post("/runs/{run_id}/cancel", dependencies=auth, status_code=202)
    def cancel_run(run_id: str) -> dict[str, Any]:
        live = server.live.get(run_id)
        if live is None:
            raise HTTPException(404, f"no run {run_id!r} is running here")
        if live.summary is not None:
            raise HTTPException(409, f"run {run_id} has already ended: {live.status}")
        live.handle.cancel()
        return {"run_id": run_id, "status": "cancelling"}

    @app.get("/runs/{run_id}/output", dependencies=auth)
    def get_output(run_id: str, file: str | None = None) -> FileResponse:
        found = server.history(run_id) if re.fullmatch(r"[0-9a-f]{32}", run_id) else None
        if found is None:
            raise HTTPException(404, f"no run {run_id!r}")
        with connect(server.dsn) as conn:
            files = history.files(conn, run_id)
        outputs = [Path(f.details["output"]) for f in files if f.details.get("output")]
        if file:
            outputs = [p for p in outputs if p.name == file]
        if not outputs or not outputs[0].is_file():
            raise HTTPException(404, f"run {run_id} produced no output file")
        return FileResponse(outputs[0], filename=outputs[0].name)

    @app.post("/uploads", dependencies=auth, status_code=201)
    async def upload(
        job: Annotated[str, Form()],
        files: Annotated[list[UploadFile], File()],
        run: Annotated[bool, Form()] = False,
    ) -> dict[str, Any]:
        spec = server.load(job)
        inbox = Path(resolve_url(spec))
        if not inbox.is_dir():
            raise HTTPException(
                409,
                f"job {job!r} does not read a local folder; "
                "uploads go to a job whose [source] url is a directory",
            )
        saved = []
        for upload in files:
            name = UNSAFE_NAME.sub("_", Path(upload.filename or "upload").name).lstrip(".")
            target = inbox / (name or "upload")
            size = 0
            with target.open("wb") as out:
                while chunk := await upload.read(1 << 20):
                    size += len(chunk)
                    if size > server.max_upload:
                        out.close()
                        target.unlink()
                        raise HTTPException(
                            413,
                            f"{name} is larger than the upload limit "
                            f"({server.max_upload >> 20} MiB)",
                        )
                    out.write(chunk)
            saved.append({"name": target.name, "bytes": size})
        answer: dict[str, Any] = {"job": job, "saved": saved}
        if run:
            answer["run_id"] = server.start(
                spec, RunRequest(job=job, spec=None, callback_url=None)
            ).run_id
        return answer

    @app.get("/metrics", dependencies=auth, response_class=PlainTextResponse)
    def metrics() -> str:
        with connect(server.dsn) as conn:
            ensure_schema(conn)
            totals = history.totals(conn)
        lines = [
            "# HELP csvpg_runs_total Runs by job and final status.",
            "# TYPE csvpg_runs_total counter",
            "# HELP csvpg_rows_read_total Rows read by finished runs.",
            "# TYPE csvpg_rows_read_total counter",
            "# HELP csvpg_files_total Files handled by runs.",
            "# TYPE csvpg_files_total counter",
            "# HELP csvpg_files_failed_total Files that failed.",
            "# TYPE csvpg_files_failed_total counter",
            "# HELP csvpg_run_seconds_total Time spent in runs.",
            "# TYPE csvpg_run_seconds_total counter",
        ]
        for t in totals:
            label = f'job="{_label(t.job)}",status="{_label(t.status)}"'
            lines += [
                f"csvpg_runs_total{{{label}}} {t.runs}",
                f"csvpg_rows_read_total{{{label}}} {t.rows_read}",
                f"csvpg_files_total{{{label}}} {t.files}",
                f"csvpg_files_failed_total{{{label}}} {t.files_failed}",
                f"csvpg_run_seconds_total{{{label}}} {float(t.seconds):.3f}",
            ]
        running = sum(1 for r in list(server.live.values()) if r.summary is None)
        lines += [
            "# HELP csvpg_runs_in_flight Runs started here that have not ended.",
            "# TYPE csvpg_runs_in_flight gauge",
            f"csvpg_runs_in_flight {running}",
        ]
        return "\n".join(lines) + "\n"

    return app


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


class _Permissive(dict[str, str]):
    """An environment in which every ${VAR} exists: a spec stored for later runs is
    checked for its shape, not for the variables of the server's own environment."""

    def __contains__(self, key: object) -> bool:
        return True

    def __getitem__(self, key: str) -> str:
        return "${" + key + "}"
