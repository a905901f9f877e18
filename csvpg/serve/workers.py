"""``GET /workers``: the workers of the server's queue database, alive or stalled, and
what each is doing (the data of ``csvpg workers``)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Query

from csvpg.pg import queue
from csvpg.pg.connect import connect
from csvpg.serve import ServerDep
from csvpg.serve.models import Worker, refusals
from csvpg.worker.app import prepare_queue

router = APIRouter()


@router.get("/workers", responses=refusals(401, 422))
def list_workers(
    server: ServerDep,
    stalled_after: Annotated[
        float, Query(gt=0, description="seconds without a heartbeat that make a worker stalled")
    ] = queue.STALLED_AFTER,
) -> list[Worker]:
    prepare_queue(server.dsn)
    with connect(server.dsn) as conn:
        found = queue.workers(conn)
    now = datetime.now(UTC)
    return [
        Worker(
            worker_id=w.worker_id,
            name=w.name,
            host=w.host,
            pid=w.pid,
            queues=[q for q in w.queues.split(",") if q],
            started_at=w.started_at,
            last_heartbeat=w.last_heartbeat,
            state=w.state(now, stalled_after),  # type: ignore[arg-type]
            tasks=list(w.tasks),
        )
        for w in found
    ]
