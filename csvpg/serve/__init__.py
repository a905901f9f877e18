"""``csvpg serve``: an HTTP API over the same ``run()``, for n8n, cron and CI.

Every route but ``/health`` needs ``Authorization: Bearer $CSVPG_API_TOKEN``. A run is
queued (one task a file, :func:`csvpg.worker.enqueue_run`) and answers 202 at once; the
server's own worker (``--workers N``, files at once; 0: none, ``csvpg worker`` processes
elsewhere take them) loads it like any other. Its state is live while it runs (read from
the database, :mod:`.queued`) and comes from ``csvpg.runs`` afterwards. A dry run is a
preview: it runs here, in a small pool, and the history does not keep it. Database
passwords never appear in a response.

This module holds the server's state (:class:`Server`, shared by every route through the
:data:`ServerDep` dependency) and :func:`make_app`; the routes are in one module an area:
:mod:`.health` (health, metrics), :mod:`.jobs`, :mod:`.runs`, :mod:`.uploads`.
"""

from __future__ import annotations

import re
import threading
import uuid
from collections import deque
from collections.abc import AsyncIterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from starlette.routing import Match

from csvpg import __version__, rates
from csvpg.api import RunHandle, prepare
from csvpg.engine import pending
from csvpg.errors import CsvpgError, SpecError
from csvpg.masking import mask_text
from csvpg.notify import Webhook, deliver, masked
from csvpg.pg import history, queue
from csvpg.pg.connect import connect
from csvpg.pg.schema import ensure_schema
from csvpg.plugins import Registry, get_plugin_manager
from csvpg.serve.auth import authorised
from csvpg.serve.limits import ACCESS, AccessLog, BodyLimit
from csvpg.serve.live import LiveRun, QueuedHandle, RunRequest
from csvpg.serve.policy import MARK, Policy, check_variables, confine
from csvpg.serve.queued import Follower, LocalEvents
from csvpg.spec import Job, job_from_dict, parse_toml
from csvpg.summary import RunSummary
from csvpg.worker.app import DEFAULT_QUEUE
from csvpg.worker.enqueue import Carried, enqueue_run
from csvpg.worker.inprocess import InProcessWorker

__all__ = ["KEEP_FINISHED", "LiveRun", "RunRequest", "Server", "ServerDep", "make_app"]

#: Finished runs kept in memory (for their webhook deliveries, and dry runs, which the
#: history does not hold); older ones are answered from the history alone.
KEEP_FINISHED = 100

JOB_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
#: Dry runs at once (previews, run in the server's process).
DRY_RUNS = 2


class Server:
    def __init__(
        self,
        *,
        jobs_dir: Path,
        dsn: str | None,
        workers: int,
        max_upload: int,
        policy: Policy | None = None,
        keep_uploads_days: int = 30,
        queue_name: str = DEFAULT_QUEUE,
    ) -> None:
        self.jobs_dir = jobs_dir
        self._dsn = dsn
        self.max_upload = max_upload
        self.policy = policy or Policy()
        self.keep_uploads_days = keep_uploads_days
        self.workers = workers
        self.queue_name = queue_name
        self.pool = ThreadPoolExecutor(max_workers=DRY_RUNS, thread_name_prefix="csvpg-serve")
        self.live: dict[str, LiveRun] = {}
        self.followers: dict[str, Follower] = {}
        self._worker: InProcessWorker | None = None
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
        """The job file ``name``; one written over HTTP is held to :mod:`.policy`'s rules."""
        from csvpg.spec import load_job

        path = self.job_path(name)
        if not path.is_file():
            raise HTTPException(404, f"no job named {name!r}")
        text = path.read_text(encoding="utf-8", errors="replace")
        if not text.startswith(MARK):
            return load_job(path)
        return self.from_http(parse_toml(text, path.name), path=path)

    def from_http(self, raw: dict[str, Any], *, path: Path | None = None) -> Job:
        """A job from a spec sent over HTTP: ``${VAR}`` only as ``--env-allow`` says,
        paths under the data root, the server's database (else a 403)."""
        check_variables(raw, self.policy)
        job = job_from_dict(
            raw, path=path, env=self.policy.environment(), allow_env=self.policy.env_allow
        )
        confine(job, self.policy, jobs_dir=self.jobs_dir, server_dsn=self.dsn)
        return job

    # -- runs ----------------------------------------------------------------------

    def start_worker(self) -> None:
        """The server's own worker (``--workers``), once; none with ``--workers 0``."""
        if self.workers < 1:
            return
        with self.lock:
            if self._worker is None:
                from csvpg.worker.process import WorkerOptions

                options = WorkerOptions(dsn=self.dsn, queues=[self.queue_name])
                options.name += "-serve"
                options.concurrency = self.workers
                self._worker = InProcessWorker(options, [LocalEvents(self.followers)])
        self._worker.start()

    def stop_worker(self) -> None:
        if self._worker is not None:
            self._worker.stop()

    def start(self, job: Job, request: RunRequest) -> LiveRun:
        """The run queued (a dry run: started here); its live state at once."""
        if request.dry_run:
            return self._start_here(job, request)
        run_id = uuid.uuid4().hex
        callbacks = [request.callback_url] if request.callback_url else []
        live = LiveRun(run_id, job.name, QueuedHandle(run_id, self.dsn, job, callbacks))
        self._remember(live, job)
        try:
            enqueue_run(
                job,
                self.dsn,
                queue_name=self.queue_name,
                force=request.force,
                run_id=run_id,
                carried=self._carried(job, request, callbacks),
            )
        except CsvpgError as exc:  # failed in the history, its webhooks told
            found = self.history(run_id) or {"run_id": run_id, "job": job.name, "files": []}
            self._ended(live, {**found, "status": "failed", "error": exc.message})
            return live
        self.start_worker()
        self.follow(live)
        return live

    def _carried(self, job: Job, request: RunRequest, callbacks: list[str]) -> Carried:
        """A job sent over HTTP (inline, or a file ``PUT /jobs`` wrote) reaches the
        workers with the only ``${VAR}`` this server allows (``--env-allow``)."""
        text = None
        if request.spec is not None:
            import tomli_w

            try:
                text = MARK + tomli_w.dumps(request.spec)
            except (TypeError, ValueError) as exc:  # JSON null has no TOML form
                raise HTTPException(422, f"the job cannot be written as TOML: {exc}") from exc
        marked = job.path is not None and job.path.read_text("utf-8").startswith(MARK)
        allow = tuple(sorted(self.policy.env_allow)) if text or marked else None
        return Carried(text=text, callbacks=tuple(callbacks), env_allow=allow)

    def follow(self, live: LiveRun) -> None:
        assert isinstance(live.handle, QueuedHandle)
        follower = Follower(live, live.handle, self.history, self._ended)
        with self.lock:
            self.followers[live.run_id] = follower
        follower.start()

    def queued(self, run_id: str) -> LiveRun | None:
        """A run of this server's memory, else a queued run still going (queued by
        ``csvpg run --queue``, a schedule, another server): followed from now on."""
        live = self.live.get(run_id)
        if live is not None:
            return live
        with connect(self.dsn) as conn:
            ensure_schema(conn)
            run = queue.queued_run(conn, run_id)
        if run is None or run.finished:
            return None
        live = LiveRun(run_id, run.job, QueuedHandle(run_id, self.dsn, None, []))
        live.status = run.status
        with self.lock:
            if run_id in self.live:  # another request was first
                return self.live[run_id]
            self.live[run_id] = live
        self.follow(live)
        return live

    def _remember(self, live: LiveRun, job: Job) -> None:
        sink = self.registry.sinks.get(job.sink.mode)
        if sink is not None and "rate_per_second" in sink.cls.options:  # changeable live
            initial = job.sink.options.get("rate_per_second", 0)
            rates.rate_for(live.run_id, float(initial) if isinstance(initial, int | float) else 0)
        with self.lock:
            self.live[live.run_id] = live

    def _start_here(self, job: Job, request: RunRequest) -> LiveRun:
        handle = prepare(
            job,
            dsn=None if job.database.dsn else self.dsn,
            dry_run=request.dry_run,
            force=request.force,
            callbacks=[request.callback_url] if request.callback_url else [],
        )
        live = LiveRun(handle.run_id, job.name, handle)
        handle.pm.register(live)
        self._remember(live, job)
        self.pool.submit(self._run, live)
        return live

    def _run(self, live: LiveRun) -> None:
        assert isinstance(live.handle, RunHandle)
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
        self._ended(live, data)

    def _ended(self, live: LiveRun, data: dict[str, Any]) -> None:
        with live.lock:
            live.summary = data
            live.status = data["status"]
        rates.forget(live.run_id)
        with self.lock:  # a server that runs for months must not grow with every run
            self.followers.pop(live.run_id, None)
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


@asynccontextmanager
async def _worker_lifespan(app: FastAPI) -> AsyncIterator[None]:
    """The server's own worker takes tasks from the start (runs queued elsewhere too),
    and finishes its files in flight when the server stops."""
    server: Server = app.state.server
    server.start_worker()
    yield
    server.stop_worker()


def _notify_early_failure(run: RunHandle, data: dict[str, Any]) -> list[dict[str, Any]]:
    """A run that failed before loading anything (no files, database down) still ends:
    its callback and [[notify]] webhooks hear so, or a caller would wait forever."""
    hooks = [Webhook(**entry) for entry in run.job.notify]
    hooks += [Webhook(url=url) for url in run.callbacks]
    return [deliver(hook, data).to_dict() for hook in hooks]


# -- dependencies: the app's one Server and its token, from app.state ---------------------


def get_server(request: Request) -> Server:
    server: Server = request.app.state.server
    return server


ServerDep = Annotated[Server, Depends(get_server)]


def _answer_errors(app: FastAPI) -> None:
    """csvpg's own errors as JSON with their hint: a bad spec is a 422, the rest a 400."""

    @app.exception_handler(SpecError)
    def spec_error(_: Request, exc: SpecError) -> JSONResponse:
        return JSONResponse(
            {"detail": exc.message, "hint": exc.hint, "key": exc.key}, status_code=422
        )

    @app.exception_handler(405)
    def wrong_method(request: Request, exc: Exception) -> JSONResponse:
        # Starlette names only the first route's methods; a path has one route a method.
        allowed: set[str] = set()
        for route in app.router.routes:
            if isinstance(route, APIRoute) and route.matches(request.scope)[0] != Match.NONE:
                allowed |= route.methods or set()
        return JSONResponse(
            {"detail": "Method Not Allowed"},
            status_code=405,
            headers={"Allow": ", ".join(sorted(allowed))},
        )

    @app.exception_handler(CsvpgError)
    def csvpg_error(_: Request, exc: CsvpgError) -> JSONResponse:
        return JSONResponse({"detail": exc.message, "hint": exc.hint}, status_code=400)


def make_app(
    *,
    jobs_dir: Path,
    dsn: str | None = None,
    token: str | None = None,
    read_only_token: str | None = None,
    workers: int = 1,
    queue_name: str = DEFAULT_QUEUE,
    max_upload_mb: int = 100,
    max_json_kb: int = 1024,
    keep_uploads_days: int = 30,
    cors_origins: Sequence[str] = (),
    policy: Policy | None = None,
) -> FastAPI:
    """The API; ``token`` None means no authentication (loopback only: the CLI checks).
    ``read_only_token`` may read (GET) but not run, edit, upload or cancel; ``policy``
    holds specs sent over HTTP to the rules of :mod:`csvpg.serve.policy`; ``workers``
    is the server's own worker's files at once (0: no worker here)."""
    server = Server(
        jobs_dir=jobs_dir,
        dsn=dsn,
        workers=workers,
        queue_name=queue_name,
        max_upload=max_upload_mb << 20,
        policy=policy,
        keep_uploads_days=keep_uploads_days,
    )
    app = FastAPI(
        title="csvpg",
        version=__version__,
        description="Load CSV files into PostgreSQL: jobs, runs, uploads, history.",
        docs_url=None,  # served by the web app, from its vendored assets
        redoc_url=None,
        lifespan=_worker_lifespan,
    )
    app.state.server = server
    app.state.token = token
    app.state.read_only_token = read_only_token if token is not None else None
    # The files of one request, plus room for the form's other fields and framing.
    app.add_middleware(BodyLimit, uploads=server.max_upload + (1 << 20), json=max_json_kb << 10)
    if cors_origins:  # off by default: a browser page elsewhere gets no answer it may read
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(cors_origins),
            allow_methods=["GET", "POST", "PUT", "DELETE"],
            allow_headers=["Authorization", "Content-Type"],
        )
    app.add_middleware(AccessLog)
    _answer_errors(app)
    _routes(app)
    return app


def _routes(app: FastAPI) -> None:
    """Every route but /health needs a token; the web app's pages have their sign-in."""
    # Here, not at the top: the route modules take Server and the dependencies from here.
    from csvpg.serve import health, jobs, runs, uploads, web
    from csvpg.serve import workers as workers_api

    auth = [Depends(authorised)]
    app.include_router(health.router)
    routers = (jobs.router, runs.router, uploads.router, workers_api.router, health.metrics_router)
    for router in routers:
        app.include_router(router, dependencies=auth)
    uploads.prune(app.state.server)
    web.install(app)  # the pages at /, /docs and /redoc, and their assets


def started(app: FastAPI, url: str) -> None:
    """The line ``csvpg serve`` logs once it is set up: where, which jobs, which database."""
    server: Server = app.state.server
    database = mask_text(server._dsn) if server._dsn else "embedded PostgreSQL"
    ACCESS.info(
        "csvpg serve %s on %s: jobs %s, database %s",
        __version__,
        url,
        server.jobs_dir.resolve(),
        database,
    )
