"""``GET /health`` (open to all, for load balancers) and ``GET /metrics`` (Prometheus)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse, PlainTextResponse
from pydantic import BaseModel, Field

from csvpg import __version__
from csvpg.errors import CsvpgError
from csvpg.pg import history
from csvpg.pg.connect import connect
from csvpg.pg.schema import ensure_schema
from csvpg.serve import ServerDep

#: No authentication: the one route a load balancer or a container runtime asks.
router = APIRouter()
metrics_router = APIRouter()

_METRICS_HELP = [
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
    "# HELP csvpg_rows_rejected_total Rows set aside (csvpg.rejects) by runs.",
    "# TYPE csvpg_rows_rejected_total counter",
    "# HELP csvpg_last_success_timestamp_seconds When the job's last successful run ended.",
    "# TYPE csvpg_last_success_timestamp_seconds gauge",
]


class Health(BaseModel):
    status: str = Field(description="ok, or degraded when the database is not reachable")
    version: str
    database: str = Field(description="reachable, or why not")


@router.get("/health", response_model=Health, responses={503: {"model": Health}})
def health(server: ServerDep) -> JSONResponse:
    try:
        with connect(server.dsn, connect_timeout=5) as conn:
            conn.execute("SELECT 1")
        return JSONResponse({"status": "ok", "version": __version__, "database": "reachable"})
    except CsvpgError as exc:
        return JSONResponse(
            {"status": "degraded", "version": __version__, "database": exc.message},
            status_code=503,
        )


@metrics_router.get(
    "/metrics",
    response_class=PlainTextResponse,
    responses={
        401: {
            "description": "no bearer token, or a wrong one",
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
        }
    },
)
def metrics(server: ServerDep) -> str:
    with connect(server.dsn) as conn:
        ensure_schema(conn)
        totals = history.totals(conn)
    lines = list(_METRICS_HELP)
    for t in totals:
        label = f'job="{_label(t.job)}",status="{_label(t.status)}"'
        lines += [
            f"csvpg_runs_total{{{label}}} {t.runs}",
            f"csvpg_rows_read_total{{{label}}} {t.rows_read}",
            f"csvpg_files_total{{{label}}} {t.files}",
            f"csvpg_files_failed_total{{{label}}} {t.files_failed}",
            f"csvpg_run_seconds_total{{{label}}} {float(t.seconds):.3f}",
            f"csvpg_rows_rejected_total{{{label}}} {t.rejected}",
        ]
        if t.status == "succeeded" and t.last_at is not None:
            lines.append(
                f'csvpg_last_success_timestamp_seconds{{job="{_label(t.job)}"}} '
                f"{t.last_at.timestamp():.3f}"
            )
    running = sum(1 for r in list(server.live.values()) if r.summary is None)
    lines += [
        "# HELP csvpg_runs_in_flight Runs started here that have not ended.",
        "# TYPE csvpg_runs_in_flight gauge",
        f"csvpg_runs_in_flight {running}",
    ]
    return "\n".join(lines) + "\n"


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
