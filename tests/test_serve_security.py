"""``csvpg serve``'s security, tried the way an attacker holding a valid token would:
the read-only token, specs sent over HTTP (inline or ``PUT /jobs``) that reach for the
server's files, secrets or other databases, oversized bodies and non-data uploads.

Real servers on loopback (``tests.test_serve.serve``), a real PostgreSQL; every answer is
checked for the database password by the client."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from psycopg.conninfo import make_conninfo

from csvpg import __version__
from csvpg.serve.auth import role_for
from csvpg.serve.policy import MARK
from tests.test_notify import unique
from tests.test_serve import DSN_VAR, GOOD, PASSWORD, TOKEN, VIEWER, client, serve


@dataclass
class Site:
    url: str
    root: Path  # the data root
    jobs: Path
    log: Path
    operator: httpx.Client
    viewer: httpx.Client

    def spec(self, db: Any, **sections: Any) -> dict[str, Any]:
        """A job inside the rules: the data root's good.csv into the test's schema."""
        return {
            "job": {"name": unique("sec")},
            "database": {"dsn": f"${{{DSN_VAR}}}", "schema": db.schema},
            "source": {"url": str(self.root / "in" / "good.csv")},
            **sections,
        }


def site_at(tmp: Path, pg_server: str, *args: str) -> Iterator[Site]:
    root, jobs = tmp / "root", tmp / "root" / "jobs"
    (root / "in").mkdir(parents=True)
    jobs.mkdir()
    (root / "in" / "good.csv").write_text(GOOD)
    with_password = make_conninfo(pg_server, password=PASSWORD)  # the log must mask it
    with (
        serve(jobs, with_password, "--env-allow", DSN_VAR, *args) as url,
        client(url) as operator,
        client(url, token=VIEWER) as viewer,
    ):
        port = url.rsplit(":", 1)[1]
        yield Site(url, root, jobs, tmp / "root" / f"serve-{port}.log", operator, viewer)


@pytest.fixture(scope="module")
def strict(pg_server: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    """The defaults: no inline specs, JSON bodies of 4 KiB at most here."""
    yield from site_at(tmp_path_factory.mktemp("strict"), pg_server, "--max-json-kb", "4")


@pytest.fixture(scope="module")
def inline(pg_server: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    yield from site_at(
        tmp_path_factory.mktemp("inline"),
        pg_server,
        "--allow-inline-specs",
        *("--cors-origin", "https://app.example"),
    )


def refused(answer: httpx.Response, *words: str) -> str:
    assert answer.status_code == 403, answer.text
    detail: str = answer.json()["detail"]
    assert "\n" not in detail
    for word in words:
        assert word in detail, detail
    return detail


# -- 1. roles ---------------------------------------------------------------------------


def test_role_for_tells_the_tokens_apart() -> None:
    state = SimpleNamespace(token="full", read_only_token="view")
    assert role_for(state, "full") == "operator"
    assert role_for(state, "view") == "viewer"
    assert role_for(state, "") is None and role_for(state, "ful") is None
    assert role_for(SimpleNamespace(token="full", read_only_token=None), "") is None
    assert role_for(SimpleNamespace(token=None, read_only_token=None), "") == "operator"


def test_a_viewer_reads_but_cannot_change_anything(strict: Site, db) -> None:
    name = unique("viewed")
    answer = strict.operator.put(f"/jobs/{name}", json=strict.spec(db))
    assert answer.status_code == 201, answer.text
    run_id = strict.operator.post("/runs", json={"job": name}).json()["run_id"]
    v = strict.viewer
    assert v.get("/jobs").status_code == 200 and v.get(f"/jobs/{name}").status_code == 200
    assert v.get(f"/runs/{run_id}").status_code == 200
    assert v.get("/runs").status_code == 200 and v.get("/metrics").status_code == 200
    attempts = [
        v.post("/runs", json={"job": name}),
        v.put(f"/jobs/{name}", json=strict.spec(db)),
        v.delete(f"/jobs/{name}"),
        v.post(f"/runs/{run_id}/cancel"),
        v.post("/uploads", data={"job": name}, files={"files": ("a.csv", b"id\n1\n")}),
    ]
    for answer in attempts:
        refused(answer, "read-only token", "operator token")
    assert v.get(f"/jobs/{name}").status_code == 200, "the job is still there"
    with client(strict.url, token=VIEWER + "x") as wrong:
        assert wrong.get("/jobs").status_code == 401


# -- 12. inline specs and ${VAR} --------------------------------------------------------


def test_inline_specs_are_off_unless_allowed(strict: Site, inline: Site, db) -> None:
    refused(strict.operator.post("/runs", json={"spec": strict.spec(db)}), "--allow-inline-specs")
    answer = inline.operator.post("/runs", json={"spec": inline.spec(db, sink={"table": "ok"})})
    assert answer.status_code == 202, answer.text


def test_no_secret_comes_out_of_the_servers_environment(inline: Site, db) -> None:
    hook = {"url": "http://127.0.0.1:9/hook?t=${CSVPG_API_TOKEN}"}
    spec = inline.spec(db, notify=[hook])
    for answer in (
        inline.operator.post("/runs", json={"spec": spec}),
        inline.operator.put(f"/jobs/{unique('leak')}", json=spec),
    ):
        refused(answer, "${CSVPG_API_TOKEN}", "--env-allow CSVPG_API_TOKEN")
        assert TOKEN not in answer.text

    # A job PUT wrote, changed on disk afterwards, is still held to the rules when it runs.
    name = unique("marked")
    assert inline.operator.put(f"/jobs/{name}", json=inline.spec(db)).status_code == 201
    path = inline.jobs / f"{name}.toml"
    assert path.read_text().startswith(MARK)
    path.write_text(path.read_text() + '\n[[notify]]\nurl = "http://h.example/${HOME}"\n')
    refused(inline.operator.post("/runs", json={"job": name}), "${HOME}")


# -- 13. paths and databases ------------------------------------------------------------


def test_specs_cannot_reach_outside_the_data_root(inline: Site, db, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.csv").write_text("id\n1\n")
    (inline.root / "link").symlink_to(outside, target_is_directory=True)
    attempts = {
        "/etc/passwd": inline.spec(db, source={"url": "/etc/passwd"}),
        "file:///etc/passwd": inline.spec(db, source={"url": "file:///etc/passwd"}),
        "link": inline.spec(db, source={"url": str(inline.root / "link")}),
        "relative": inline.spec(db, source={"url": "../../../../../../etc/passwd"}),
        "chained": inline.spec(db, source={"url": "simplecache::file:///etc/passwd"}),
        "pattern": inline.spec(db, source={"url": str(inline.root), "pattern": "../*.csv"}),
        "csv sink": inline.spec(db, sink={"mode": "csv", "options": {"path": "/tmp/x"}}),
    }
    for what, spec in attempts.items():
        for answer in (
            inline.operator.post("/runs", json={"spec": spec}),
            inline.operator.put(f"/jobs/{unique('out')}", json=spec),
        ):
            detail = refused(answer)
            assert "data root" in detail or "may not leave" in detail, (what, detail)
    assert sorted(p.name for p in inline.jobs.glob("out*.toml")) == [], "none was stored"

    # An upload into a job folder that is a symlink out of the root: refused, nothing saved.
    name = unique("linked")
    (inline.jobs / f"{name}.toml").write_text(  # hand-written: its source is the operator's
        f'[job]\nname = "{name}"\n[source]\nurl = "{inline.root / "link"}"\n'
    )
    files = {"files": ("evil.csv", b"id\n1\n")}
    refused(inline.operator.post("/uploads", data={"job": name}, files=files), "data root")
    assert sorted(p.name for p in outside.iterdir()) == ["secret.csv"]


def test_specs_use_the_servers_own_database(inline: Site, db) -> None:
    foreign = f"postgresql://etl:{PASSWORD}@10.255.255.1:5432/erp"
    for section in ("database", "history"):
        spec = inline.spec(db)
        spec[section] = {**spec.get(section, {}), "dsn": foreign}
        refused(
            inline.operator.post("/runs", json={"spec": spec}), f"'{section}.dsn'", "--allow-dsn"
        )
    # The server's own, however it is written: accepted.
    answer = inline.operator.post("/runs", json={"spec": inline.spec(db, sink={"table": "own"})})
    assert answer.status_code == 202, answer.text


# -- 14. bodies and uploads ---------------------------------------------------------------


def test_json_bodies_are_capped(strict: Site) -> None:
    big = {"job": "x", "pad": "y" * 5000}
    answer = strict.operator.post("/runs", json=big)
    assert answer.status_code == 413
    assert answer.json()["detail"] == "the request body is larger than the limit (4 KiB)"
    body = json.dumps(big).encode()
    chunks = (body[i : i + 1000] for i in range(0, len(body), 1000))  # no Content-Length
    answer = strict.operator.post(
        "/runs", content=chunks, headers={"Content-Type": "application/json"}
    )
    assert answer.status_code == 413


def test_uploads_take_data_files_and_are_removed_when_old(strict: Site, db) -> None:
    inbox = strict.root / "inbox"
    inbox.mkdir()
    name = unique("inbox")
    (strict.jobs / f"{name}.toml").write_text(
        f'[job]\nname = "{name}"\n[source]\nurl = "{inbox}"\n'
    )
    for bad in ("run.sh", "x.csv.exe", "README", "a.toml"):
        answer = strict.operator.post(
            "/uploads", data={"job": name}, files={"files": (bad, b"id\n")}
        )
        assert answer.status_code == 415 and ".csv" in answer.json()["detail"], answer.text
    assert list(inbox.iterdir()) == []
    for good in ("a.csv", "b.csv.gz", "c.parquet", "D.CSV"):
        answer = strict.operator.post("/uploads", data={"job": name}, files={"files": (good, b"x")})
        assert answer.status_code == 201, (good, answer.text)

    old = time.time() - 31 * 86400  # past --keep-uploads-days (30)
    os.utime(inbox / "a.csv", (old, old))
    (inbox / "mine.csv").write_text("id\n")  # put there by hand: never removed
    os.utime(inbox / "mine.csv", (old, old))
    ledger = strict.jobs / ".csvpg-uploads.jsonl"
    lines = [json.loads(line) for line in ledger.read_text().splitlines()]
    for entry in lines:
        if entry["path"].endswith("a.csv"):
            entry["saved"] = old
    ledger.write_text("".join(json.dumps(e) + "\n" for e in lines))
    answer = strict.operator.post("/uploads", data={"job": name}, files={"files": ("e.csv", b"x")})
    assert answer.status_code == 201
    assert sorted(p.name for p in inbox.iterdir()) == [
        "D.CSV",
        "b.csv.gz",
        "c.parquet",
        "e.csv",
        "mine.csv",
    ]


# -- 4. the log and CORS ----------------------------------------------------------------


def test_the_log_has_a_startup_line_and_a_line_a_request(strict: Site) -> None:
    strict.viewer.get("/jobs")
    time.sleep(0.2)  # the line is written as the answer goes out
    text = strict.log.read_text()
    first = text.splitlines()[0]
    where = f"csvpg serve {__version__} on {strict.url}: jobs {strict.jobs.resolve()}"
    assert f"{where}, database " in first, first
    assert first.endswith("password=***"), first
    assert PASSWORD not in text and TOKEN not in text and VIEWER not in text
    assert any(" GET /jobs 200 " in line and line.endswith("viewer") for line in text.splitlines())


def test_cors_only_for_the_origins_given(strict: Site, inline: Site) -> None:
    preflight = {"Origin": "https://app.example", "Access-Control-Request-Method": "GET"}
    allowed = inline.operator.options("/jobs", headers=preflight)
    assert allowed.headers.get("access-control-allow-origin") == "https://app.example"
    other = inline.operator.get("/jobs", headers={"Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in other.headers
    off = strict.operator.get("/jobs", headers={"Origin": "https://app.example"})
    assert "access-control-allow-origin" not in off.headers
