"""How a run ends, whatever happens to it: a signal cancels it cleanly, a closed stdout
does not stop it, a failure before any file is in the history with its error and hint,
a database away longer than the retries still ends it 'failed', a live run that lost its
lock takes it again, and a file another worker held is waited for."""

from __future__ import annotations

import contextlib
import io
import json
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
import pytest

from csvpg import hookimpl
from csvpg.api import run
from csvpg.builtin.source_fsspec import FsspecSource
from csvpg.cli.main import main
from csvpg.cli.runs import list_runs
from csvpg.engine.run import Engine
from csvpg.events import BytesRead, FilePhase, FileStarted
from csvpg.plugins import get_plugin_manager
from csvpg.spec import load_job
from tests.conftest import REPO, job_toml


def wait_until(what: str, check: Callable[[], Any], deadline: float = 60.0) -> Any:
    """Poll ``check`` until it is truthy (a generous deadline: this is no timing test)."""
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        found = check()
        if found:
            return found
        time.sleep(0.05)
    raise AssertionError(f"never happened: {what}")


def run_row(db: Any, job: str) -> tuple[str, str, str | None, str | None]:
    row = db.execute(
        "SELECT id, status, error, hint FROM csvpg.runs WHERE job = %s"
        " ORDER BY started_at DESC LIMIT 1",
        (job,),
    ).fetchone()
    assert row is not None, f"no run of {job} in csvpg.runs"
    return row


def lock_waiters(db: Any, locktype: str) -> int:
    """Backends of csvpg waiting for a lock of this type (a table's, an advisory one)."""
    row = db.execute(
        "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a USING (pid)"
        " WHERE NOT l.granted AND l.locktype = %s AND a.application_name = 'csvpg'",
        (locktype,),
    ).fetchone()
    return int(row[0])


def csvpg_process(job: Path, *args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "csvpg", "run", str(job), *args],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def existing_table(db: Any, rows: int = 3) -> None:
    db.execute(f'CREATE TABLE "{db.schema}".t (id integer PRIMARY KEY, name text, amount numeric)')
    db.execute(
        f'INSERT INTO "{db.schema}".t SELECT g, %s, 1 FROM generate_series(1, %s) g',
        ("before", rows),
    )


def export(path: Path, rows: int) -> None:
    path.write_text(
        "id,name,amount\n" + "".join(f"{i},name {i},{i % 997}.25\n" for i in range(1, rows + 1))
    )


# -- 11: a signal cancels the run ---------------------------------------------------------


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_signal_cancels_the_run_and_leaves_nothing_behind(db, tmp_path, signum, code) -> None:
    """Mid-load (a split upsert waiting on the server), SIGTERM or Ctrl-C cancels the
    run at once: the statement is interrupted, the file rolls back, the scratch schema
    is dropped, csvpg.runs says cancelled, and the exit code is 128 + the signal."""
    existing_table(db)
    export(tmp_path / "big.csv", 80_000)  # about 2 MiB: split over 2 connections
    name = f"signal-{signum}"
    job = tmp_path / "job.toml"
    job.write_text(
        job_toml(
            db,
            str(tmp_path / "big.csv"),
            sink='mode = "upsert"\ntable = "t"\nprimary_key = ["id"]',
            # A value converted in SQL: an upsert COPY could stage typed does not split.
            extra="[run]\nworkers = 2\nsplit_mb = 1\n"
            '[columns]\namount = { type = "numeric", thousands = "," }\n',
        ).replace('name = "test"', f'name = "{name}"')
    )
    with psycopg.connect(db.dsn) as holder:
        # Another session holds the table: the run's upsert waits on the server.
        holder.execute(f'LOCK TABLE "{db.schema}".t IN ACCESS EXCLUSIVE MODE')
        proc = csvpg_process(job)
        try:
            wait_until("the run waits for the table", lambda: lock_waiters(db, "relation"))
            scratch = db.execute(
                "SELECT count(*) FROM pg_namespace WHERE nspname LIKE 'csvpg\\_split\\_%'"
            ).fetchone()
            proc.send_signal(signum)
            out, err = proc.communicate(timeout=60)  # while the table is still locked
        finally:
            if proc.poll() is None:
                proc.kill()
    assert scratch[0] >= 1, "the file was split: it had a scratch schema"
    assert proc.returncode == code, err.decode()
    run_id, status, _, _ = run_row(db, name)
    assert status == "cancelled"
    assert (
        db.execute(
            "SELECT count(*) FROM pg_namespace WHERE nspname LIKE %s", (f"csvpg_split_{run_id}%",)
        ).fetchone()[0]
        == 0
    )
    assert db.execute(f'SELECT count(*), min(name) FROM "{db.schema}".t').fetchone() == (
        3,
        "before",
    )
    assert b"cancelled big.csv" in out, out.decode()
    assert db.execute(
        "SELECT status FROM csvpg.run_files WHERE run_id = %s", (run_id,)
    ).fetchall() == [("cancelled",)]


class CountedSource(FsspecSource):
    """Local files under ``counted://``, recording how many bytes each open read."""

    schemes = ("counted",)
    reads: list[list[int]] = []

    def __init__(self, *, url: str, options: dict[str, Any]) -> None:
        super().__init__(url=url.removeprefix("counted://"), options=options)

    def open(self, ref: Any) -> Any:
        stream, read = super().open(ref), [0]
        CountedSource.reads.append(read)
        inner = stream.read

        def counted(size: int = -1) -> bytes:
            data = inner(size)
            read[0] += len(data)
            return data

        stream.read = counted  # type: ignore[method-assign]
        return stream


class CancelWhenCheckingBadRows:
    """Cancels the run as the careful path starts, as Ctrl-C or the dashboard's q would."""

    engine: Any = None

    @hookimpl
    def register_sources(self) -> list[type[Any]]:
        return [CountedSource]

    @hookimpl
    def track_event(self, event: Any) -> None:
        if isinstance(event, FilePhase) and event.phase == "checking bad rows":
            self.engine.cancel()


def test_a_cancel_while_bad_rows_are_checked_stops_reading_the_file_again(db, tmp_path) -> None:
    """The careful path (an upsert's bad rows) reads the file a second time; a cancel
    stops that read at once (within its first MiB), not after the whole file was
    parsed again."""
    db.execute(f'CREATE TABLE "{db.schema}".t (id integer PRIMARY KEY, name text, amount numeric)')
    db.execute(f"INSERT INTO \"{db.schema}\".t VALUES (-1, 'before', 1), (-2, 'before', 1)")
    export(tmp_path / "big.csv", 400_000)  # about 9 MiB
    with (tmp_path / "big.csv").open("a") as out:
        out.write("400001,the last row is bad,not a number\n")
    size = (tmp_path / "big.csv").stat().st_size
    job = tmp_path / "job.toml"
    sink = 'mode = "upsert"\ntable = "t"\nprimary_key = ["id"]'
    job.write_text(job_toml(db, f"counted://{tmp_path}/big.csv", sink=sink))
    watcher = CancelWhenCheckingBadRows()
    CountedSource.reads = []
    engine = Engine(load_job(job), get_plugin_manager([watcher]), db.dsn)
    watcher.engine = engine
    summary = engine.run()

    assert summary.status == "cancelled", summary.files[0].error
    first, again = CountedSource.reads
    assert first[0] == size, "the fast path read the whole file and failed on its last row"
    assert again[0] <= 2 << 20, (
        f"the careful path read {again[0]:,} of {size:,} bytes after the cancel"
    )
    assert db.execute(f'SELECT count(*), min(name) FROM "{db.schema}".t').fetchone() == (
        2,
        "before",
    )


# -- 15: the reader of stdout leaves ------------------------------------------------------


def test_a_closed_stdout_does_not_stop_the_run(db, tmp_path) -> None:
    """``csvpg run job.toml | head -1``: the first line is read, the pipe closed; the run
    loads its file all the same, ends 'succeeded' and exits 0."""
    existing_table(db, rows=0)
    export(tmp_path / "a.csv", 1000)
    job = tmp_path / "job.toml"
    job.write_text(
        job_toml(db, str(tmp_path / "a.csv"), sink='table = "t"').replace(
            'name = "test"', 'name = "pipe"'
        )
    )
    with psycopg.connect(db.dsn) as holder:
        # The load waits on the table until the reader has gone.
        holder.execute(f'LOCK TABLE "{db.schema}".t IN ACCESS EXCLUSIVE MODE')
        proc = csvpg_process(job)
        assert proc.stdout is not None
        first = proc.stdout.readline()
        proc.stdout.close()
        wait_until("the run waits for the table", lambda: lock_waiters(db, "relation"))
    err = proc.communicate(timeout=120)[1]
    assert b" job pipe: 1 file" in first, first  # after the line's time
    assert proc.returncode == 0, err.decode()
    assert b"Traceback" not in err, err.decode()
    assert run_row(db, "pipe")[1] == "succeeded"
    assert db.count("t") == 1000


# -- 13: a run that fails before its files ------------------------------------------------


def test_a_run_failing_before_its_files_is_in_the_history(db, tmp_path, capsys) -> None:
    job = tmp_path / "job.toml"
    job.write_text(
        job_toml(db, str(tmp_path / "missing")).replace('name = "test"', 'name = "early"')
    )
    assert main(["run", str(job)]) != 0
    said = capsys.readouterr().err
    _, status, error, hint = run_row(db, "early")
    assert status == "failed"
    assert error and "missing" in error and error in said
    assert hint and hint in said
    assert main(["runs", "--dsn", db.dsn, "--job", "early"]) == 0
    listed = capsys.readouterr().out
    assert "failed" in listed and f"error: {error}" in listed and f"hint: {hint}" in listed


# -- 12: the database goes away -------------------------------------------------------------


class Proxy:
    """A TCP relay to PostgreSQL on loopback that can go away (every connection cut,
    none accepted) and come back on the same port: a server restart, a network cut."""

    def __init__(self, dsn: str) -> None:
        info = psycopg.conninfo.conninfo_to_dict(dsn)
        host, port = str(info.get("host") or "127.0.0.1"), int(info.get("port") or 5432)
        #: Where the server listens: its socket file, or a host and port.
        self.target: str | tuple[str, int] = (
            f"{host}/.s.PGSQL.{port}" if host.startswith("/") else (host, port)
        )
        self.dsn_info = info
        probe = socket.socket()
        probe.bind(("127.0.0.1", 0))
        self.port = probe.getsockname()[1]
        probe.close()
        self.sockets: list[socket.socket] = []
        self.listener: socket.socket | None = None
        self.up()

    @property
    def dsn(self) -> str:
        return psycopg.conninfo.make_conninfo(
            psycopg.conninfo.make_conninfo(**self.dsn_info), host="127.0.0.1", port=self.port
        )

    def up(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self.listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def down(self) -> None:
        assert self.listener is not None
        # Shut down first: a close alone leaves the accept() waiting in its thread.
        self.listener.shutdown(socket.SHUT_RDWR)
        self.listener.close()
        self.listener = None
        for s in self.sockets:
            _shut(s)
            s.close()
        self.sockets.clear()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            if isinstance(self.target, str):
                server = socket.socket(socket.AF_UNIX)
                server.connect(self.target)
            else:
                server = socket.create_connection(self.target)
            self.sockets += [client, server]
            for a, b in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(a: socket.socket, b: socket.socket) -> None:
        try:
            while data := a.recv(65536):
                b.sendall(data)
        except OSError:
            pass
        finally:
            for s in (a, b):
                _shut(s)


def _shut(s: socket.socket) -> None:
    with contextlib.suppress(OSError):  # already shut, or closed
        s.shutdown(socket.SHUT_RDWR)


def test_a_database_away_longer_than_the_retries_ends_the_run_failed(db, tmp_path) -> None:
    """The server goes away as the file starts, for longer than the retries: the file
    fails, the run cannot write its end; once the server is back, the next run finds it
    'failed' (not 'running', not 'abandoned')."""
    proxy = Proxy(db.dsn)
    (tmp_path / "a.csv").write_text("id\n1\n")
    job = tmp_path / "job.toml"
    job.write_text(
        job_toml(db, str(tmp_path / "a.csv"))
        .replace(db.dsn, proxy.dsn)
        .replace('name = "test"', 'name = "away"')
        + "[run]\nmax_retries = 0\n"
    )

    class Cut:
        @hookimpl
        def track_event(self, event):
            if isinstance(event, FileStarted):
                proxy.down()

    try:
        summary = run(job, plugins=[Cut()])
    finally:
        if proxy.listener is None:
            proxy.up()
    assert summary.status == "failed"
    assert run_row(db, "away")[1] == "running", "the history could not be told"
    (tmp_path / "b.csv").write_text("id\n1\n")
    job.write_text(job.read_text().replace("a.csv", "b.csv"))
    assert run(job).status == "succeeded"
    first = db.execute(
        "SELECT status, files, files_failed FROM csvpg.runs WHERE id = %s", (summary.run_id,)
    ).fetchone()
    assert first == ("failed", 1, 1)


def test_a_run_that_lost_its_lock_takes_it_again(db, tmp_path) -> None:
    """An administrator (or a restart) ends the session holding a live run's lock: the
    run takes it again, and csvpg runs shows it running, never abandoned."""
    (tmp_path / "a.csv").write_text("id\n1\n")
    job = tmp_path / "job.toml"
    job.write_text(
        job_toml(db, str(tmp_path / "a.csv")).replace('name = "test"', 'name = "relock"')
    )
    seen: list[str] = []

    def holders(run_id: str) -> list[int]:
        rows = db.execute(
            "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted"
            " AND objsubid = 2"
            " AND classid = (hashtext('csvpg.run')::bigint & 4294967295)::oid"
            " AND objid = (hashtext(%s)::bigint & 4294967295)::oid",
            (run_id,),
        ).fetchall()
        return [pid for (pid,) in rows]

    class Terminate:
        @hookimpl
        def track_event(self, event):
            if isinstance(event, FileStarted):
                (pid,) = holders(event.run_id)
                db.execute("SELECT pg_terminate_backend(%s, 10000)", (pid,))
                wait_until("the lock is taken again", lambda: holders(event.run_id))
                out = io.StringIO()
                list_runs(db.dsn, out, job="relock")
                seen.append(out.getvalue())

    summary = run(job, plugins=[Terminate()])
    assert summary.status == "succeeded"
    (listed,) = seen
    assert f"{summary.run_id}  relock  running" in listed, listed
    assert run_row(db, "relock")[1] == "succeeded"


# -- 14: a file another worker holds ----------------------------------------------------


def claim_lock(conn: psycopg.Connection[Any], job: str, url: str) -> None:
    """What a worker loading the file holds (csvpg.pg.manifest.claim)."""
    conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s), hashtext(%s))", (job, url))


def test_a_file_whose_worker_died_is_loaded_by_the_run_that_waited(db, tmp_path) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    for name in ("a", "b"):
        (folder / f"{name}.csv").write_text("id\n1\n2\n")
    job = tmp_path / "job.toml"
    job.write_text(job_toml(db, str(folder), sink='mode = "append"\ntable = "t"'))
    summaries = []
    worker = psycopg.connect(db.dsn)
    claim_lock(worker, "test", str(folder / "a.csv"))  # another worker, loading a.csv
    loader = threading.Thread(target=lambda: summaries.append(run(job)))
    loader.start()
    wait_until("the run waits for a.csv", lambda: lock_waiters(db, "advisory"))
    # The other worker dies: its transaction rolls back, a.csv is not loaded.
    db.execute("SELECT pg_terminate_backend(%s)", (worker.info.backend_pid,))
    loader.join(120)
    worker.close()
    (summary,) = summaries
    assert summary.status == "succeeded"
    assert {Path(f.file).name: f.status for f in summary.files} == {
        "a.csv": "loaded",
        "b.csv": "loaded",
    }
    assert db.count("t") == 4


def test_a_file_another_worker_loaded_is_skipped_after_waiting(db, tmp_path) -> None:
    """Two runs of one job at once: the file the first one is loading, the second one
    waits for, then finds loaded. Both succeed; the rows are there once."""
    (tmp_path / "a.csv").write_text("id\n1\n2\n")
    job = tmp_path / "job.toml"
    job.write_text(job_toml(db, str(tmp_path / "a.csv"), sink='mode = "append"\ntable = "t"'))
    second: list[Any] = []

    class StartSecond:
        @hookimpl
        def track_event(self, event):
            if isinstance(event, BytesRead) and not second:
                # Inside the first run's transaction on a.csv: a second run waits for it.
                threading.Thread(target=lambda: second.append(run(job)), daemon=True).start()
                wait_until("the second run waits", lambda: lock_waiters(db, "advisory"))

    first = run(job, plugins=[StartSecond()])
    wait_until("the second run ends", lambda: second and second[0] is not None)
    (other,) = second
    assert (first.status, other.status) == ("succeeded", "succeeded")
    assert first.files[0].status == "loaded"
    assert other.files[0].status == "skipped"
    assert other.files[0].error == f"loaded by another worker (run {first.run_id[:8]})"
    assert db.count("t") == 2


def test_run_summary_json_survives_a_closed_pipe(db, tmp_path) -> None:
    """``csvpg run --json job.toml | head -c 1``: the summary is dropped, not a crash."""
    existing_table(db, rows=0)
    export(tmp_path / "a.csv", 10)
    job = tmp_path / "job.toml"
    job.write_text(
        job_toml(db, str(tmp_path / "a.csv"), sink='table = "t"').replace(
            'name = "test"', 'name = "pipejson"'
        )
    )
    with psycopg.connect(db.dsn) as holder:
        holder.execute(f'LOCK TABLE "{db.schema}".t IN ACCESS EXCLUSIVE MODE')
        proc = csvpg_process(job, "--json", "--log-format", "json")
        assert proc.stdout is not None and proc.stderr is not None
        started = json.loads(proc.stderr.readline())
        proc.stdout.close()
        wait_until("the run waits for the table", lambda: lock_waiters(db, "relation"))
    proc.communicate(timeout=120)
    assert started["event"] == "JobStarted"
    assert proc.returncode == 0
    assert run_row(db, "pipejson")[1] == "succeeded"
    assert db.count("t") == 10
