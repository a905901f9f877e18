"""``csvpg serve`` as a user meets it: a real server process on loopback, driven with
httpx. Jobs write into the test's schema; history and ``csvpg.*`` live on the same server.

Every response any client here receives is checked for the database password."""

from __future__ import annotations

import ctypes
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import tomllib
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from psycopg.conninfo import make_conninfo

from csvpg.cli.main import main
from tests.test_notify import SECRET, Receiver, unique, verify

TOKEN = "tok-" + uuid.uuid4().hex
VIEWER = "view-" + uuid.uuid4().hex
PASSWORD = "pw-" + uuid.uuid4().hex  # in every job's DSN; never in a response
DSN_VAR = "CSVPG_TEST_SECRET_DSN"
WATCHDOG_SECONDS = 300
GOOD = "id,name\n1,Ada\n2,Grace\n"
DIRTY = "id,name\n3,Alan\nx,Bad\n4,Barbara\n"

try:  # the child gets SIGTERM when the test process dies (Linux), so no server outlives it
    _prctl = ctypes.CDLL(None, use_errno=True).prctl
except (OSError, AttributeError):  # pragma: no cover - not Linux
    _prctl = None


def _die_with_parent() -> None:
    if _prctl is not None:
        _prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _no_password(response: httpx.Response) -> None:
    response.read()
    assert PASSWORD not in response.text, f"{response.request.url} answered the password"


def client(url: str, token: str | None = TOKEN) -> httpx.Client:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.Client(
        base_url=url, headers=headers, timeout=30, event_hooks={"response": [_no_password]}
    )


@contextmanager
def serve(jobs: Path, dsn: str, *args: str, token: str | None = TOKEN) -> Iterator[str]:
    """``csvpg serve`` in a subprocess on a free loopback port; its base URL once healthy."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {**os.environ, DSN_VAR: make_conninfo(dsn, password=PASSWORD)}
    env.pop("CSVPG_API_TOKEN", None)
    env.pop("CSVPG_API_READ_ONLY_TOKEN", None)
    if token:
        env["CSVPG_API_TOKEN"] = token
        env["CSVPG_API_READ_ONLY_TOKEN"] = VIEWER
    log = jobs.parent / f"serve-{port}.log"
    command = [sys.executable, "-m", "csvpg", "serve", "--host", "127.0.0.1", "--port", str(port)]
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [*command, "--jobs", str(jobs), "--dsn", dsn, *args],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            preexec_fn=_die_with_parent,
        )
    watchdog = threading.Timer(WATCHDOG_SECONDS, proc.kill)
    watchdog.daemon = True
    watchdog.start()
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120  # a busy machine starts Python slowly
        while True:
            assert proc.poll() is None, f"csvpg serve exited: {log.read_text()}"
            assert time.monotonic() < deadline, f"csvpg serve never got healthy: {log.read_text()}"
            try:
                if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        yield url
    finally:
        watchdog.cancel()
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@dataclass
class Api:
    url: str
    jobs: Path
    client: httpx.Client

    def job(self, db: Any, name: str, source: Path | str, extra: str = "") -> Path:
        """A job file in the server's jobs folder, loading into the test's schema."""
        path = self.jobs / f"{name}.toml"
        path.write_text(
            f'[job]\nname = "{name}"\n\n[database]\ndsn = "${{{DSN_VAR}}}"\n'
            f'schema = "{db.schema}"\n\n[source]\nurl = "{source}"\n\n{extra}'
        )
        return path

    def start(self, **request: Any) -> str:
        answer = self.client.post("/runs", json=request)
        assert answer.status_code == 202, answer.text
        run_id = answer.json()["run_id"]
        assert re.fullmatch(r"[0-9a-f]{32}", run_id)
        assert answer.json()["links"] == {
            "self": f"/runs/{run_id}",
            "rejects": f"/runs/{run_id}/rejects",
        }
        return run_id

    def wait(self, run_id: str, timeout: float = 30) -> dict[str, Any]:
        """Poll ``GET /runs/{id}`` until the run is no longer live."""
        deadline = time.monotonic() + timeout
        while True:
            answer = self.client.get(f"/runs/{run_id}")
            assert answer.status_code == 200, answer.text
            if not answer.json()["live"]:
                return answer.json()
            assert time.monotonic() < deadline, answer.json()
            time.sleep(0.05)


@pytest.fixture(scope="module")
def api(pg_server: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    jobs = tmp_path_factory.mktemp("serve") / "jobs"
    jobs.mkdir()
    trusting = [  # the tests' data lie in their own tmp_path folders, beside the jobs
        "--allow-inline-specs",
        *("--env-allow", DSN_VAR),
        *("--data-root", str(tmp_path_factory.getbasetemp())),
        *("--allow-dsn", "postgresql://etl@127.0.0.1:1/db"),
    ]
    with (
        serve(jobs, pg_server, "--max-upload-mb", "1", *trusting) as url,
        client(url) as http,
    ):
        yield Api(url, jobs, http)


@pytest.fixture
def data(tmp_path: Path) -> Path:
    folder = tmp_path / "data"
    folder.mkdir()
    (folder / "good.csv").write_text(GOOD)
    (folder / "dirty.csv").write_text(DIRTY)
    return folder


def by_name(files: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {Path(f["file"]).name: f for f in files}


def counts(file: dict[str, Any]) -> tuple[Any, ...]:
    return tuple(file[k] for k in ("status", "rows_read", "inserted", "updated", "rejected"))


def test_serve_refuses_to_start_without_a_token(monkeypatch, capsys) -> None:
    monkeypatch.delenv("CSVPG_API_TOKEN", raising=False)
    env = {k: v for k, v in os.environ.items() if k != "CSVPG_API_TOKEN"}
    done = subprocess.run(
        [sys.executable, "-m", "csvpg", "serve", "--port", "1"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert done.stderr.startswith("error: csvpg serve needs a bearer token in CSVPG_API_TOKEN")
    assert "hint: export CSVPG_API_TOKEN=…, or --no-auth on a loopback address" in done.stderr
    for host in ("0.0.0.0", "192.0.2.1", "example.com"):  # --no-auth is for loopback only
        assert main(["serve", "--no-auth", "--host", host, "--port", "1"]) == 2
        assert "needs a bearer token" in capsys.readouterr().err


def test_no_auth_on_loopback_serves_without_a_token(pg_server: str, tmp_path: Path) -> None:
    (tmp_path / "jobs").mkdir()
    with serve(tmp_path / "jobs", pg_server, "--no-auth", token=None) as url, client(url) as c:
        assert c.get("/jobs").json() == []


def test_health_is_open_and_everything_else_needs_the_token(api: Api) -> None:
    run = f"/runs/{'0' * 32}"
    routes = [
        r.split(" ")
        for r in f"GET /jobs,GET /jobs/x,PUT /jobs/x,DELETE /jobs/x,POST /runs,GET /runs,GET {run},"
        f"GET {run}/rejects,POST {run}/cancel,GET {run}/output,POST /uploads,GET /metrics".split(
            ","
        )
    ]
    with client(api.url, token=None) as anonymous, client(api.url, token="wrong") as wrong:
        health = anonymous.get("/health")
        assert health.status_code == 200
        assert health.json()["status"] == "ok" and health.json()["database"] == "reachable"
        for method, path in routes:
            for c, headers in [(anonymous, {}), (wrong, {}), (anonymous, {"Authorization": "x"})]:
                answer = c.request(method, path, json={}, headers=headers)
                assert answer.status_code == 401, (method, path, answer.text)
                assert answer.headers["WWW-Authenticate"] == "Bearer"
            basic = anonymous.request(method, path, headers={"Authorization": f"Basic {TOKEN}"})
            assert basic.status_code == 401
    assert api.client.get("/openapi.json").json()["info"]["title"] == "csvpg"
    assert "swagger" in api.client.get("/docs").text.lower()


def test_unknown_runs_and_jobs_are_404_bad_requests_422(api: Api, tmp_path: Path) -> None:
    c = api.client
    for path in [f"/runs/{'0' * 32}", "/runs/nope", f"/runs/{'0' * 32}/rejects", "/jobs/nope"]:
        assert c.get(path).status_code == 404, path
    assert c.get("/jobs/..%2Fetc").status_code == 404
    assert c.delete("/jobs/nope").status_code == 404
    assert c.post(f"/runs/{'0' * 32}/cancel").status_code == 404
    answer = c.post("/runs", json={"job": "nope"})
    assert answer.status_code == 404 and answer.json()["detail"] == "no job named 'nope'"
    answer = c.post("/uploads", data={"job": "nope"}, files={"files": ("a.csv", b"id\n1\n")})
    assert answer.status_code == 404
    assert c.post("/runs", json={}).status_code == 422, "neither job nor spec"
    both = {"job": "x", "spec": {"job": {"name": "x"}}}
    assert c.post("/runs", json=both).status_code == 422
    hook = {"job": "nope", "callback_url": "file:///etc/passwd"}
    refused = c.post("/runs", json=hook)
    assert refused.status_code == 422 and refused.json()["detail"][0]["loc"][-1] == "callback_url"


def test_a_bad_spec_is_422_with_a_readable_message(api: Api, tmp_path: Path) -> None:
    name = unique("bad")
    base = {"job": {"name": name}, "source": {"url": str(tmp_path)}}

    def put(**sections: Any) -> dict[str, Any]:
        answer = api.client.put(f"/jobs/{name}", json={**base, **sections})
        assert answer.status_code == 422, answer.text
        return answer.json()

    answer = put(sink={"mode": "apend"})
    assert answer["key"] == "sink.mode" and "'sink.mode'" in answer["detail"]
    assert "did you mean 'append'?" in answer["hint"]
    answer = put(sink={"mode": "upsert", "primry_key": ["id"]})
    assert answer["detail"] == "unknown key 'sink.primry_key'"
    assert answer["hint"] == "did you mean 'primary_key'?"
    assert put(sorce={"url": "x"})["hint"] == "did you mean 'source'?"
    assert put(sink={"mode": "upsert"})["key"] == "sink.primary_key"
    assert put(notify=[{"url": "http://x", "on": ["done"]}])["key"] == "notify[0].on"
    assert "cannot be written as TOML" in put(source={"url": ".", "options": {"x": None}})["detail"]
    assert api.client.get(f"/jobs/{name}").status_code == 404, "nothing was written"
    inline = api.client.post("/runs", json={"spec": {**base, "sink": {"mode": "apend"}}})
    assert inline.status_code == 422 and "did you mean 'append'?" in inline.json()["hint"]


def test_jobs_round_trip(api: Api, db, data: Path, monkeypatch, capsys) -> None:
    name = unique("roundtrip")
    spec = {
        "job": {"name": name},
        "database": {"dsn": f"${{{DSN_VAR}}}", "schema": db.schema},
        "source": {"url": str(data), "pattern": "good*.csv"},
        "sink": {"mode": "upsert", "primary_key": ["id"]},
        "columns": {"id": "integer"},
        "notify": [{"url": "http://127.0.0.1:9/hook", "on": ["failed"]}],
    }
    answer = api.client.put(f"/jobs/{name}", json=spec)
    assert (answer.status_code, answer.json()) == (201, {"name": name})
    assert api.client.get(f"/jobs/{name}").json() == {"name": name, "spec": spec}
    assert {"name": name, "next_run": None} in api.client.get("/jobs").json()  # no schedule
    spec["sink"]["max_rejects"] = "2%"
    assert api.client.put(f"/jobs/{name}", json=spec).status_code == 200
    path = api.jobs / f"{name}.toml"
    assert tomllib.loads(path.read_text()) == spec, "${VAR} is kept as written"

    monkeypatch.setenv(DSN_VAR, make_conninfo(db.dsn, password=PASSWORD))
    assert main(["run", str(path)]) == 0, "csvpg run accepts what PUT wrote"
    assert "loaded  good.csv" in capsys.readouterr().out
    assert db.rows("good", order_by="id") == [(1, "Ada"), (2, "Grace")]

    assert api.client.delete(f"/jobs/{name}").status_code == 204
    assert not path.exists()
    assert api.client.get(f"/jobs/{name}").status_code == 404
    assert api.client.delete(f"/jobs/{name}").status_code == 404


def test_passwords_are_masked(api: Api, db, data: Path) -> None:
    name = unique("literal")
    path = api.job(db, name, data, 'pattern = "good.csv"')
    literal = make_conninfo(db.dsn, password=PASSWORD)  # written into the job as it is
    path.write_text(path.read_text().replace(f"${{{DSN_VAR}}}", literal))
    assert "password=***" in api.client.get(f"/jobs/{name}").json()["spec"]["database"]["dsn"]
    done = api.wait(api.start(job=name))
    assert done["status"] == "succeeded" and "password=***" in done["database"]
    unreachable = f"postgresql://etl:{PASSWORD}@127.0.0.1:1/db?connect_timeout=2"
    spec = {"job": {"name": unique("unreachable")}, "database": {"dsn": unreachable}}
    failed = api.wait(api.start(spec={**spec, "source": {"url": str(data)}}))
    assert failed["status"] == "failed"
    assert "cannot connect to PostgreSQL at postgresql://etl:***@127.0.0.1:1/db" in failed["error"]


def test_spec_errors_and_webhook_urls_are_masked(api: Api, db, data: Path) -> None:
    """(Every answer is also checked for the password by the client.)"""
    name = unique("secrets")
    base = {"job": {"name": name}, "source": {"url": str(data)}}
    bad = {**base, "database": {"dsn": [f"postgresql://etl:{PASSWORD}@db.example/erp"]}}
    for answer in (
        api.client.put(f"/jobs/{name}", json=bad),
        api.client.post("/runs", json={"spec": bad}),
    ):
        assert answer.status_code == 422
        assert answer.json()["detail"] == (
            "'database.dsn' must be a string, not ['postgresql://etl:***@db.example/erp']"
        )
    path = api.job(db, name, data, f'[[notify]]\nurl = "https://h.example/x?token={PASSWORD}"\n')
    assert PASSWORD in path.read_text()
    (hook,) = api.client.get(f"/jobs/{name}").json()["spec"]["notify"]
    assert hook["url"] == "https://h.example/x?token=***"


def test_run_a_job_and_receive_its_webhooks(api: Api, db, data: Path) -> None:
    name = unique("hooks")
    with Receiver() as receiver:
        notify = f'[[notify]]\nurl = "{receiver.url("/notify")}"\nsecret = "{SECRET}"\n'
        api.job(db, name, data, '[columns]\nid = "integer"\n[sink]\nmax_rejects = 1\n\n' + notify)
        run_id = api.start(job=name, callback_url=receiver.url("/callback"))
        done = api.wait(run_id)
        hits = {hit.path: hit for hit in receiver.wait(2)}
    assert done["run_id"] == run_id and done["job"] == name and done["status"] == "succeeded"
    files = by_name(done["files"])
    assert counts(files["good.csv"]) == ("loaded", 2, 2, 0, 0)
    assert counts(files["dirty.csv"]) == ("loaded", 3, 2, 0, 1)
    assert files["dirty.csv"]["table"] == f"{db.schema}.dirty"
    assert [n["status"] for n in done["notifications"]] == ["delivered", "delivered"]

    signed, callback = hits["/notify"], hits["/callback"]
    assert verify(SECRET, signed.body, signed.headers.get("X-Csvpg-Signature"))
    assert "X-Csvpg-Signature" not in callback.headers
    for hit in (signed, callback):
        assert hit.json()["run_id"] == run_id and hit.json()["totals"]["rejected"] == 1

    rejects = api.client.get(f"/runs/{run_id}/rejects").json()
    assert [(Path(r["file"]).name, r["line"], r["column"], r["value"]) for r in rejects] == [
        ("dirty.csv", 3, "id", "x")
    ]
    assert rejects[0]["raw"] == "x,Bad\n" and "integer" in rejects[0]["reason"]
    assert api.client.get(f"/runs/{run_id}/rejects", params={"offset": 1}).json() == []
    assert api.client.post(f"/runs/{run_id}/cancel").status_code == 409
    assert db.count("good") == 2 and db.count("dirty") == 2


def test_a_failing_webhook_is_recorded_and_the_run_succeeds(api: Api, db, data: Path, capsys):
    name = unique("failing")
    with Receiver(status=500) as receiver:
        notify = f'[[notify]]\nurl = "{receiver.url()}"\nmax_retries = 1\nretry_delay = 0.01\n'
        api.job(db, name, data, notify)
        done = api.wait(api.start(job=name))
    assert done["status"] == "succeeded"
    (note,) = done["notifications"]
    assert (note["status"], note["attempts"], note["http_status"]) == ("failed", 2, 500)
    assert main(["runs", done["run_id"], "--dsn", db.dsn]) == 0
    assert f"webhook {receiver.url()}: failed after 2 tries" in capsys.readouterr().out


def test_a_run_that_cannot_start_still_calls_back(api: Api, db, tmp_path: Path) -> None:
    """No files to read: the run fails before loading anything, and says so to its hooks."""
    name = unique("missing")
    with Receiver() as receiver:
        api.job(db, name, tmp_path / "no-such-folder", f'[[notify]]\nurl = "{receiver.url()}"\n')
        done = api.wait(api.start(job=name, callback_url=receiver.url("/callback")))
        hits = receiver.wait(2)
    assert done["status"] == "failed" and "no-such-folder" in done["error"]
    assert [n["status"] for n in done["notifications"]] == ["delivered", "delivered"]
    assert sorted(h.path for h in hits) == ["/callback", "/hook"]
    assert all(h.json()["status"] == "failed" for h in hits)


def test_run_filters_and_metrics(api: Api, db, data: Path) -> None:
    ok, bad, inline = unique("ok"), unique("bad"), unique("inline")
    began = time.time()
    api.job(db, ok, data, 'pattern = "good.csv"')
    api.job(
        db, bad, data, 'pattern = "dirty.csv"\n[columns]\nid = "integer"\n[sink]\nmax_rejects = 0'
    )
    ok_id, bad_id = api.wait(api.start(job=ok))["run_id"], api.wait(api.start(job=bad))["run_id"]
    spec = {
        "job": {"name": inline},
        "database": {"dsn": db.dsn, "schema": db.schema},
        "source": {"url": str(data / "good.csv")},
        "sink": {"table": "inline"},
    }
    inline_run = api.wait(api.start(spec=spec))
    assert inline_run["status"] == "succeeded" and db.count("inline") == 2

    def ids(**params: Any) -> list[str]:
        answer = api.client.get("/runs", params=params)
        assert answer.status_code == 200, answer.text
        return [r["run_id"] for r in answer.json()]

    assert ids(job=ok) == [ok_id]
    assert ids(job=bad, status="failed") == [bad_id]
    assert ids(job=bad, status="succeeded") == []
    assert bad_id in ids(status="failed") and ok_id not in ids(status="failed")
    assert ids(job=inline) == [inline_run["run_id"]]
    assert ids(job=ok, since="2000-01-01T00:00:00Z") == [ok_id]
    assert ids(job=ok, since="2999-01-01T00:00:00Z") == []
    assert ids(job="\x00") == []
    (row,) = api.client.get("/runs", params={"job": bad}).json()
    assert (row["files"], row["files_failed"], row["rows_read"]) == (1, 1, 0)

    metrics = api.client.get("/metrics")
    assert metrics.headers["content-type"].startswith("text/plain")
    lines = metrics.text.splitlines()
    assert "# TYPE csvpg_runs_total counter" in lines
    assert f'csvpg_runs_total{{job="{ok}",status="succeeded"}} 1' in lines
    assert f'csvpg_runs_total{{job="{bad}",status="failed"}} 1' in lines
    assert f'csvpg_rows_read_total{{job="{ok}",status="succeeded"}} 2' in lines
    assert f'csvpg_files_failed_total{{job="{bad}",status="failed"}} 1' in lines
    assert any(re.fullmatch(r"csvpg_runs_in_flight \d+", line) for line in lines)
    assert f'csvpg_rows_rejected_total{{job="{ok}",status="succeeded"}} 0' in lines
    (last,) = [
        line
        for line in lines
        if line.startswith(f'csvpg_last_success_timestamp_seconds{{job="{ok}"}}')
    ]
    assert began <= float(last.split()[-1]) <= time.time(), "when the ok run ended"
    assert not any(f'last_success_timestamp_seconds{{job="{bad}"}}' in line for line in lines)


def test_uploads_land_in_the_jobs_folder_only(api: Api, db, tmp_path: Path) -> None:
    inbox = tmp_path / "deep" / "down" / "inbox"  # ../../evil.csv would land in deep/
    inbox.mkdir(parents=True)
    name = unique("upload")
    api.job(db, name, inbox, '[columns]\nid = "integer"\n')
    files = [("files", ("people.csv", GOOD.encode())), ("files", ("../../evil.csv", b"id\n7\n"))]
    answer = api.client.post("/uploads", data={"job": name, "run": "true"}, files=files)
    assert answer.status_code == 201, answer.text
    body = answer.json()
    assert body["saved"] == [
        {"name": "people.csv", "bytes": len(GOOD)},
        {"name": "evil.csv", "bytes": 5},
    ]
    assert sorted(p.name for p in inbox.iterdir()) == ["evil.csv", "people.csv"]
    assert list(tmp_path.rglob("evil.csv")) == [inbox / "evil.csv"]
    done = api.wait(body["run_id"])
    assert counts(by_name(done["files"])["people.csv"]) == ("loaded", 2, 2, 0, 0)
    assert counts(by_name(done["files"])["evil.csv"]) == ("loaded", 1, 1, 0, 0)

    odd = [("files", ("..\\..\\win.csv", b"id\n")), ("files", (".hidden.csv", b"id\n"))]
    names = [
        s["name"]
        for s in api.client.post("/uploads", data={"job": name}, files=odd).json()["saved"]
    ]
    assert all("/" not in n and "\\" not in n and not n.startswith(".") for n in names), names
    assert all((inbox / n).is_file() for n in names)
    nameless = api.client.post("/uploads", data={"job": name}, files={"files": ("..", b"id\n")})
    assert nameless.status_code == 415, "'..' is no data file's name"

    big = b"id\n" + b"1\n" * (1 << 19)  # just over --max-upload-mb 1
    answer = api.client.post("/uploads", data={"job": name}, files={"files": ("big.csv", big)})
    assert answer.status_code == 413
    assert answer.json()["detail"] == "big.csv is larger than the upload limit (1 MiB)"
    assert not (inbox / "big.csv").exists()

    # Far over the limit: refused as it streams in, before anything is spooled.
    huge = b"id\n" + b"1\n" * (3 << 19)
    answer = api.client.post("/uploads", data={"job": name}, files={"files": ("huge.csv", huge)})
    assert answer.status_code == 413
    assert answer.json()["detail"] == "the upload is larger than the limit (1 MiB of files)"

    def chunked() -> Iterator[bytes]:  # no Content-Length: counted as it arrives
        yield b"--x\r\nContent-Disposition: form-data; name=job\r\n\r\n" + name.encode()
        yield b"\r\n--x\r\nContent-Disposition: form-data; name=files; filename=c.csv\r\n\r\n"
        for _ in range(3):
            yield b"1\n" * (1 << 19)

    answer = api.client.post(
        "/uploads",
        content=chunked(),
        headers={"Content-Type": "multipart/form-data; boundary=x"},
    )
    assert answer.status_code == 413, answer.text
    assert answer.json()["detail"] == "the upload is larger than the limit (1 MiB of files)"
    assert not (inbox / "huge.csv").exists() and not (inbox / "c.csv").exists()

    single = unique("single")
    api.job(db, single, inbox / "people.csv")
    answer = api.client.post("/uploads", data={"job": single}, files={"files": ("a.csv", b"id\n")})
    assert answer.status_code == 409 and "local folder" in answer.json()["detail"]


def test_a_long_running_server_keeps_only_recent_runs_in_memory(
    pg_server: str, db, data: Path, tmp_path: Path, monkeypatch
) -> None:
    """Finished runs past KEEP_FINISHED leave the server's memory; the history still
    answers for them."""
    from csvpg import serve as serve_module

    monkeypatch.setattr(serve_module, "KEEP_FINISHED", 2)
    jobs = tmp_path / "jobs"
    jobs.mkdir()
    (jobs / "nightly.toml").write_text(
        f'[job]\nname = "nightly"\n[database]\ndsn = "{db.dsn}"\nschema = "{db.schema}"\n'
        f'[source]\nurl = "{data / "good.csv"}"\n'
    )
    server = serve_module.Server(jobs_dir=jobs, dsn=pg_server, workers=1, max_upload=1 << 20)
    started = [
        server.start(server.load("nightly"), serve_module.RunRequest(job="nightly", force=True))
        for _ in range(4)
    ]
    runs = [live.run_id for live in started]
    try:
        for live in started:  # queued, and loaded by the server's own worker
            live.handle.result(timeout=120)
    finally:
        server.stop_worker()
    assert len(server.live) == 2 and set(server.live) < set(runs)
    assert not server.followers
    first = server.history(runs[0])
    assert first is not None and first["status"] == "succeeded"
    assert [(f["status"], f["inserted"]) for f in first["files"]] == [("loaded", 2)]
