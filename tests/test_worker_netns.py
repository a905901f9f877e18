"""Three workers on three "machines" (network namespaces that reach PostgreSQL only over
their own veth link) share one queued run: every file loads once, the run succeeds, and
each machine did part of it; one machine's link cut in the middle of a COPY loses
nothing and loads nothing twice."""

from __future__ import annotations

import hashlib
import re
from contextlib import ExitStack
from pathlib import Path

import pytest
import tomli_w

from csvpg.cli.main import main
from tests import netns
from tests.test_worker import ROWS, copying, files_of, rows_and_keys, write_files
from tests.workers import ended, query, unique, wait_for, workers

WHY_NOT = netns.unusable()


def queue_parts(tmp_path: Path, db, name: str, queue: str, capsys) -> str:
    """Queue a run appending ``tmp_path/data`` to ``parts``; its id."""
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
    return capsys.readouterr().out.strip()


@pytest.mark.skipif(WHY_NOT is not None, reason=f"no network namespaces: {WHY_NOT}")
def test_three_machines_share_a_run(db, tmp_path: Path, capsys) -> None:
    write_files(tmp_path / "data", 30)
    name, queue = unique("netns"), unique("q")
    run_id = queue_parts(tmp_path, db, name, queue, capsys)
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


def reference_md5(files: int) -> str:
    """What ``parts`` holds when each of ``write_files``' rows loaded once."""
    lines = [f"{f * 1_000_000 + i},{'x' * 40}" for f in range(files) for i in range(ROWS)]
    return hashlib.md5("\n".join(lines).encode()).hexdigest()


def loaded_md5(db) -> str:
    rows = query(
        db.dsn,
        "SELECT md5(string_agg(id::text || ',' || text, E'\\n' ORDER BY id))"
        f' FROM {db.schema}."parts"',
    )
    return str(rows[0][0])


@pytest.mark.skipif(WHY_NOT is not None, reason=f"no network namespaces: {WHY_NOT}")
def test_a_machine_cut_off_mid_copy_loses_nothing_and_loads_nothing_twice(
    db, tmp_path: Path, capsys
) -> None:
    """One machine's link (slowed down) goes down while its worker copies a file: no
    reset reaches either side. Its heartbeat stops; another worker ends its sessions
    (the open COPY rolls back) and takes its file again."""
    files = 40
    write_files(tmp_path / "data", files)
    name, queue = unique("cut"), unique("q")
    run_id = queue_parts(tmp_path, db, name, queue, capsys)
    with netns.machines(3, db.dsn) as hosts, ExitStack() as stack:
        hosts[0].throttle("8mbit")  # its COPY of a file lasts a second: long enough to cut
        started = []
        for host in hosts:
            (tmp_path / host.name).mkdir()
            one = workers(tmp_path / host.name, host.dsn, queue, 1, prefixes=[host.prefix])
            started += stack.enter_context(one)
        first = started[0]
        took = re.compile(r"worker: took .* task=(\d+)")

        def copying_on_first() -> int | None:
            """The task whose COPY the first machine's worker has in flight."""
            tasks = took.findall(first.log())
            if tasks and copying(db.dsn, f"csvpg task {tasks[-1]}"):
                return int(tasks[-1])
            return None

        task = wait_for("a COPY of the first machine's worker", copying_on_first)
        hosts[0].cut()
        status = wait_for("the run's end", lambda: ended(db.dsn, run_id))
        others = "".join(w.log() for w in started[1:])
        cut_off = first.log()
    assert status == "succeeded"
    outcome = files_of(db.dsn, run_id)
    assert len(outcome) == files and set(outcome.values()) == {"loaded"}
    assert rows_and_keys(db) == (files * ROWS, files * ROWS)
    assert loaded_md5(db) == reference_md5(files)
    said = f"{cut_off[-1500:]}\n---\n{others[-3000:]}"
    # (Its open COPY is ended by the worker that retries it, unless the server or the
    # relay has dropped the session already.)
    assert f"task={task}" in others and "retried stalled" in others, (
        f"its file went back to the queue: {said}"
    )
