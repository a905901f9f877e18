"""``csvpg serve`` queues its runs: with ``--workers 0`` it only queues them, and a
``csvpg worker`` process elsewhere loads them; the API shows a queued run as such,
follows it to its end, cancels it on the worker, and lists the workers."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg.conninfo import make_conninfo

from csvpg.cli.main import main
from tests.test_serve import DSN_VAR, PASSWORD, TOKEN, VIEWER, Api, client, serve
from tests.test_worker import ROWS, copying, write_files
from tests.workers import PATIENCE, unique, wait_for, workers


@pytest.fixture
def site(pg_server: str, tmp_path: Path, monkeypatch) -> Iterator[tuple[Api, str, Path]]:
    """A server on its own queue, with no worker of its own. The jobs' ${VAR} secret is
    in the workers' environment too: each worker fills it in from its own."""
    monkeypatch.setenv(DSN_VAR, make_conninfo(pg_server, password=PASSWORD))
    jobs = tmp_path / "jobs"
    jobs.mkdir()
    queue = unique("q")
    with serve(jobs, pg_server, "--workers", "0", "--queue-name", queue) as url, client(url) as c:
        yield Api(url, jobs, c), queue, tmp_path


def test_a_run_waits_queued_for_a_worker_and_ends_when_one_loads_it(site, db, capsys) -> None:
    api, queue, tmp_path = site
    write_files(tmp_path / "data", 3, rows=100)
    name = unique("later")
    api.job(db, name, tmp_path / "data", '[sink]\ntable = "parts"\n')
    run_id = api.start(job=name)
    queued = api.client.get(f"/runs/{run_id}").json()
    assert queued["live"] and queued["status"] == "queued", queued
    capsys.readouterr()
    assert main(["runs", run_id, "--dsn", db.dsn]) == 0
    shown = capsys.readouterr().out
    assert f"run {run_id} of job {name}: queued" in shown
    assert f"queued for csvpg worker: 0 of 3 files done; csvpg runs {run_id[:8]} --cancel" in shown
    with client(api.url, VIEWER) as viewer:
        assert viewer.get("/workers").json() is not None
        assert not [w for w in viewer.get("/workers").json() if queue in w["queues"]]
        assert api.client.get(f"/runs/{run_id}").json()["status"] == "queued"  # no one took it
        with workers(tmp_path, db.dsn, queue, 1) as (worker,):
            wait_for("the worker's start", lambda: "worker: started" in worker.log())
            mine = [w for w in viewer.get("/workers").json() if queue in w["queues"]]
            done = api.wait(run_id, timeout=PATIENCE)
    assert len(mine) == 1 and mine[0]["pid"] == worker.process.pid
    assert mine[0]["name"] == "w0" and mine[0]["state"] == "alive" and mine[0]["host"]
    assert done["status"] == "succeeded", done
    assert sorted(f["status"] for f in done["files"]) == ["loaded"] * 3
    assert db.count("parts") == 300


def test_cancel_through_the_api_stops_the_file_on_the_worker(site, db) -> None:
    api, queue, tmp_path = site
    write_files(tmp_path / "data", 30)
    name = unique("stop")
    api.job(db, name, tmp_path / "data", '[sink]\ntable = "parts"\n')
    # The table is there, and another session holds it: the worker's first COPY waits
    # in flight (a file's COPY is over too soon to be seen for sure).
    db.execute(f'CREATE TABLE {db.schema}."parts" (id bigint, text text)')
    run_id = api.start(job=name)
    with psycopg.connect(db.dsn) as holder, workers(tmp_path, db.dsn, queue, 1):
        holder.execute(f'LOCK TABLE {db.schema}."parts" IN ACCESS EXCLUSIVE MODE')
        wait_for("a file loading", lambda: copying(db.dsn))

        def tasks() -> list[str]:
            found = api.client.get("/workers").json()
            return [t for w in found if queue in w["queues"] for t in w["tasks"] if run_id in t]

        doing = wait_for("the worker's task in GET /workers", tasks)
        answer = api.client.post(f"/runs/{run_id}/cancel")
        assert answer.status_code == 202, answer.text
        wait_for("the COPY in flight cancelled", lambda: not copying(db.dsn))
        holder.rollback()
        done = api.wait(run_id, timeout=PATIENCE)
    assert done["status"] == "cancelled", done
    assert doing[0].startswith("csvpg.load_file run=") and "file=" in doing[0], doing
    statuses = [f["status"] for f in done["files"]]
    assert (
        len(statuses) == 30
        and "cancelled" in statuses
        and set(statuses)
        <= {
            "loaded",
            "cancelled",
        }
    )
    loaded = statuses.count("loaded")
    assert db.count("parts") == loaded * ROWS, "a cancelled file left no row"
    assert api.client.post(f"/runs/{run_id}/cancel").status_code == 409


def test_the_viewer_reads_workers_but_cannot_cancel(site) -> None:
    api, _, _ = site
    with client(api.url, VIEWER) as viewer:
        assert viewer.get("/workers").status_code == 200
        assert viewer.post(f"/runs/{'0' * 32}/cancel").status_code == 403
    with client(api.url, None) as anonymous:
        assert anonymous.get("/workers").status_code == 401
    assert TOKEN  # the operator's client is api.client
