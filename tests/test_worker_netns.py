"""Three workers on three "machines" (network namespaces that reach PostgreSQL only over
their own veth link) share one queued run: every file loads once, the run succeeds, and
each machine did part of it."""

from __future__ import annotations

from contextlib import ExitStack
from pathlib import Path

import pytest
import tomli_w

from csvpg.cli.main import main
from tests import netns
from tests.test_worker import ROWS, files_of, rows_and_keys, write_files
from tests.workers import ended, unique, wait_for, workers

WHY_NOT = netns.unusable()


@pytest.mark.skipif(WHY_NOT is not None, reason=f"no network namespaces: {WHY_NOT}")
def test_three_machines_share_a_run(db, tmp_path: Path, capsys) -> None:
    write_files(tmp_path / "data", 30)
    name, queue = unique("netns"), unique("q")
    job = tmp_path / "job.toml"
    # No [database] dsn: each worker loads into the database it reaches, over its link.
    spec = {
        "job": {"name": name},
        "database": {"schema": db.schema},
        "source": {"url": str(tmp_path / "data")},
        "sink": {"mode": "append", "table": "parts"},
        "columns": {"id": "bigint"},
    }
    job.write_text(tomli_w.dumps(spec))
    capsys.readouterr()
    assert main(["run", str(job), "--queue-name", queue, "--dsn", db.dsn]) == 0
    run_id = capsys.readouterr().out.strip()
    with netns.machines(3, db.dsn) as hosts, ExitStack() as stack:
        started = []
        for host in hosts:
            # Each worker names only its machine's link to the server.
            (tmp_path / host.name).mkdir()
            one = workers(tmp_path / host.name, host.dsn, queue, 1, prefixes=[host.prefix])
            started += stack.enter_context(one)
        status = wait_for("the run's end", lambda: ended(db.dsn, run_id))
        logs = [w.log() for w in started]
        relayed = [h.relay.accepted for h in hosts]
    assert status == "succeeded"
    files = files_of(db.dsn, run_id)
    assert len(files) == 30 and set(files.values()) == {"loaded"}
    count, distinct = rows_and_keys(db)
    assert (count, distinct) == (30 * ROWS, 30 * ROWS)
    assert all(n > 0 for n in relayed), f"each machine reached the server over its link: {relayed}"
    took = [log.count("worker: took") for log in logs]
    assert sum(took) >= 30 and all(n > 0 for n in took), f"files taken per machine: {took}"
