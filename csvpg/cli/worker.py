"""``csvpg worker``, ``csvpg workers`` and ``csvpg schedules``: the queue, as text."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TextIO

from csvpg.cli.runs import _table_lines
from csvpg.pg import queue
from csvpg.pg.connect import connect
from csvpg.worker.app import prepare_queue
from csvpg.worker.schedule import scheduled_jobs


def list_workers(dsn: str, out: TextIO) -> int:
    prepare_queue(dsn)
    with connect(dsn) as conn:
        found = queue.workers(conn)
    if not found:
        print("no live worker", file=out)
        return 0
    now = datetime.now(UTC)
    rows = [["ID", "NAME", "HOST", "PID", "QUEUES", "STARTED", "HEARTBEAT", "STATE", "DOING"]]
    for w in found:
        rows.append(
            [
                str(w.worker_id),
                w.name,
                w.host,
                str(w.pid),
                w.queues,
                w.started_at.strftime("%Y-%m-%d %H:%M:%S"),
                f"{(now - w.last_heartbeat).total_seconds():.0f} s ago",
                w.state(now, queue.STALLED_AFTER),
                "; ".join(w.tasks) or "-",
            ]
        )
    for line in _table_lines(rows):
        print(line, file=out)
    return 0


def list_schedules(folder: str, out: TextIO) -> int:
    found = scheduled_jobs(folder)
    if not found:
        print(f"no job in {folder} has a [schedule] cron", file=out)
        return 0
    rows = [["JOB", "CRON", "TIMEZONE", "NEXT RUN"]]
    for s in found:
        rows.append([s.job.name, s.cron, s.timezone, s.next_run().isoformat(timespec="seconds")])
    for line in _table_lines(rows):
        print(line, file=out)
    return 0
