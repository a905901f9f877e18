"""csvpg.pg.history's reads: one row shape a kind (runs, files, rejects, webhook
deliveries) for ``csvpg runs``, the dashboard and ``csvpg serve``; the same statuses
and the same masking in all three."""

from __future__ import annotations

import io
import json
import uuid
from dataclasses import fields
from typing import Any

from csvpg import events as ev
from csvpg.cli.runs import list_runs, show_run
from csvpg.pg import history
from csvpg.pg.schema import ensure_schema
from csvpg.serve import LiveRun
from csvpg.tui.history import PgHistory
from tests.test_serve import Api, api  # noqa: F401 (the fixture)

PASSWORD = "Hunter2pw"
TOKEN = "S3cretTok"


def columns(db: Any, table: str) -> set[str]:
    rows = db.execute(
        "SELECT column_name FROM information_schema.columns"
        " WHERE table_schema = 'csvpg' AND table_name = %s",
        (table,),
    ).fetchall()
    return {name for (name,) in rows}


def test_every_column_of_the_history_has_its_field(db) -> None:
    """A column added to csvpg.runs (or run_files, rejects) fails here until its row
    shape has it, and then every front end has it."""
    ensure_schema(db.conn)
    counted = {"rejects_open", "rejects_resolved"}  # counted from csvpg.rejects
    assert columns(db, "runs") == {f.name for f in fields(history.RunRow)} - counted
    named = {"table_name": "table", "column_name": "column"}
    file_columns = {named.get(c, c) for c in columns(db, "run_files")} - {"run_id"}
    assert file_columns == {f.name for f in fields(history.FileRow)}
    reject_columns = {named.get(c, c) for c in columns(db, "rejects")}
    assert reject_columns - {"run_id", "created_at"} == {f.name for f in fields(history.RejectRow)}


def a_dead_run(db: Any, job: str) -> str:
    """A run left 'running' by a process that is gone (no lock held), whose error,
    webhook and file error hold secrets, as rows written before csvpg masked them."""
    ensure_schema(db.conn)
    run_id = uuid.uuid4().hex
    dsn = f"postgresql://etl:{PASSWORD}@db.internal/warehouse"
    hook = {
        "url": f"https://hooks.example/x?token={TOKEN}",
        "status": "failed",
        "attempts": 3,
        "http_status": 500,
        "error": f"500 from https://hooks.example/x?token={TOKEN}",
    }
    db.execute(
        "INSERT INTO csvpg.runs (id, job, spec_hash, status, database, error, notifications)"
        " VALUES (%s, %s, 'h', 'running', %s, %s, %s::jsonb)",
        (run_id, job, dsn, f"cannot reach {dsn}", json.dumps([hook])),
    )
    db.execute(
        "INSERT INTO csvpg.run_files (run_id, file, table_name, status, rows_read, error)"
        " VALUES (%s, '/in/a.csv', 's.a', 'failed', 3, %s)",
        (run_id, f"lost {dsn}"),
    )
    db.execute(
        "INSERT INTO csvpg.rejects (run_id, file, line, column_name, value, reason, sqlstate)"
        " VALUES (%s, '/in/a.csv', 2, 'id', 'x', 'not an integer', '22P02')",
        (run_id,),
    )
    return run_id


def test_a_dead_run_reads_abandoned_and_masked_everywhere(db, api: Api) -> None:  # noqa: F811
    job = f"dead-{uuid.uuid4().hex[:8]}"
    run_id = a_dead_run(db, job)

    answer = api.client.get("/runs", params={"job": job})
    assert answer.status_code == 200, answer.text
    (listed,) = answer.json()
    assert listed["run_id"] == run_id and listed["status"] == "abandoned"
    assert set(listed) == set(history.LISTED)
    got = api.client.get(f"/runs/{run_id}").json()
    assert got["status"] == "abandoned" and got["live"] is False
    assert got["error"] == "cannot reach postgresql://etl:***@db.internal/warehouse"
    assert got["notifications"] == [
        {
            "url": "https://hooks.example/x?token=***",
            "status": "failed",
            "attempts": 3,
            "http_status": 500,
            "error": "500 from https://hooks.example/x?token=***",
        }
    ]
    (file,) = got["files"]
    assert (
        file["table"] == "s.a"
        and file["error"] == "lost postgresql://etl:***@db.internal/warehouse"
    )
    rejects = api.client.get(f"/runs/{run_id}/rejects").json()
    assert rejects == [
        {
            "file": "/in/a.csv",
            "line": 2,
            "column": "id",
            "value": "x",
            "reason": "not an integer",
            "raw": None,
            "id": rejects[0]["id"],
            "byte_offset": None,
            "byte_length": None,
            "resolved_by": None,
            "resolved_at": None,
            "replayed_by": None,
        }
    ]

    out = io.StringIO()
    assert show_run(db.dsn, run_id[:12], out, rejects=True) == 0
    shown = out.getvalue()
    assert f"run {run_id} of job {job}: abandoned" in shown
    assert "webhook https://hooks.example/x?token=***: failed after 3 tries" in shown
    assert "/in/a.csv, line 2, column id: not an integer ('x')" in shown
    out = io.StringIO()
    assert list_runs(db.dsn, out, job=job) == 0
    assert f"{run_id}  {job}  abandoned" in out.getvalue()

    dashboard = PgHistory(db.dsn)
    (row,) = [r for r in dashboard.runs() if r.id == run_id]
    assert row.status == "abandoned" and row.database.endswith(":***@db.internal/warehouse")
    assert [f.status for f in dashboard.files(run_id)] == ["failed"]
    assert dashboard.rejects(run_id, "/in/a.csv")[0]["reason"] == "not an integer"

    everything = json.dumps(got) + json.dumps(rejects) + shown + repr(row)
    assert PASSWORD not in everything and TOKEN not in everything


def test_a_live_run_shows_a_cancelled_file_as_cancelled() -> None:
    """``GET /runs/{id}`` while the run ends: a file that rolled back because the run
    was cancelled is 'cancelled', not 'failed'."""
    live = LiveRun("r1", "nightly", handle=None)  # type: ignore[arg-type]
    live.track_event(ev.FileStarted("r1", "/in/big.csv", "s.big", 10))
    live.track_event(ev.FileCancelled("r1", "/in/big.csv", "s.big", 1.25))
    (file,) = live.to_dict()["files"]
    assert file == {"file": "/in/big.csv", "table": "s.big", "status": "cancelled", "seconds": 1.25}
