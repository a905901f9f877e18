"""Webhooks: [[notify]] and --callback-url POST the run's summary to a real HTTP receiver
on loopback, signed with HMAC-SHA256 when a secret is shared; a webhook that keeps
failing is recorded with the run and never fails the load."""

from __future__ import annotations

import hashlib
import hmac
import json
import socket
import textwrap
import threading
import uuid
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from csvpg import events as ev
from csvpg.api import run
from csvpg.cli.main import main
from csvpg.errors import SpecError
from csvpg.hookspecs import hookimpl
from csvpg.notify import SIGNATURE_HEADER, Webhook, deliver
from csvpg.spec import job_from_dict

SECRET = "s3cr3t-shared-with-the-receiver"
OK = {"status": "succeeded"}


@dataclass
class Hit:
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class Receiver:
    """A webhook receiver on 127.0.0.1: records every POST and answers ``status`` (the
    first requests with ``first``, one each, e.g. [409] as n8n's Wait node answers early)."""

    def __init__(self, status: int = 200, first: list[int] | None = None) -> None:
        self.status = status
        self.first = list(first or [])
        self.hits: list[Hit] = []
        self._cond = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with receiver._cond:
                    receiver.hits.append(Hit(self.path, dict(self.headers.items()), body))
                    receiver._cond.notify_all()
                    status = receiver.first.pop(0) if receiver.first else receiver.status
                answer = b'{"ok": true}'
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}{path}"

    def wait(self, count: int = 1, timeout: float = 15) -> list[Hit]:
        with self._cond:
            assert self._cond.wait_for(lambda: len(self.hits) >= count, timeout), self.hits
            return list(self.hits)

    def __enter__(self) -> Receiver:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


@pytest.fixture
def receiver():
    with Receiver() as r:
        yield r


@pytest.fixture
def failing_receiver():
    with Receiver(status=500) as r:
        yield r


def verify(secret: str, body: bytes, header: str | None) -> bool:
    """What a receiver does (the README's snippet): recompute and compare in constant time."""
    expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return header is not None and hmac.compare_digest(expected, header)


def unique(prefix: str) -> str:
    """Job names are unique per test: csvpg.runs is shared by every test of a server."""
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def write_job(db: Any, folder: Path, name: str, extra: str = "", files: dict | None = None) -> Path:
    data = folder / "data"
    data.mkdir(exist_ok=True)
    for file, text in (files or {"people.csv": "id,name\n1,Ada\n2,Grace\n"}).items():
        (data / file).write_text(text)
    path = folder / f"{name}.toml"
    path.write_text(
        textwrap.dedent(
            f"""
            [job]
            name = "{name}"

            [database]
            dsn = "{db.dsn}"
            schema = "{db.schema}"

            [source]
            url = "data"
            """
        )
        + textwrap.dedent(extra)
    )
    return path


class Recorder:
    def __init__(self) -> None:
        self.events: list[ev.Event] = []

    @hookimpl
    def track_event(self, event: ev.Event) -> None:
        self.events.append(event)


def test_notify_posts_the_summary_signed(db, tmp_path: Path, receiver: Receiver) -> None:
    name = unique("signed")
    job = write_job(
        db,
        tmp_path,
        name,
        f"""
        [[notify]]
        url = "{receiver.url("/hook")}"
        secret = "{SECRET}"
        headers = {{ X-Team = "etl" }}
        """,
    )
    summary = run(job)
    assert summary.status == "succeeded"
    assert summary.notifications == [
        {
            "url": receiver.url("/hook"),
            "status": "delivered",
            "attempts": 1,
            "http_status": 200,
            "error": None,
        }
    ]
    (hit,) = receiver.hits
    assert hit.path == "/hook"
    assert hit.headers["Content-Type"] == "application/json"
    assert hit.headers["X-Team"] == "etl"
    assert verify(SECRET, hit.body, hit.headers[SIGNATURE_HEADER])
    assert not verify("another secret", hit.body, hit.headers[SIGNATURE_HEADER])
    assert not verify(SECRET, hit.body + b" ", hit.headers[SIGNATURE_HEADER])
    body = hit.json()
    assert (body["run_id"], body["job"], body["status"]) == (summary.run_id, name, "succeeded")
    assert body["totals"]["rows_read"] == 2 and body["totals"]["inserted"] == 2
    (file,) = body["files"]
    assert Path(file["file"]).name == "people.csv" and file["status"] == "loaded"
    stored = db.execute(
        "SELECT notifications FROM csvpg.runs WHERE id = %s", (summary.run_id,)
    ).fetchone()[0]
    assert stored == summary.notifications


def test_on_picks_the_statuses_that_notify(db, tmp_path: Path, receiver: Receiver) -> None:
    job = write_job(
        db,
        tmp_path,
        unique("on"),
        f"""
        [[notify]]
        url = "{receiver.url("/failures")}"
        on = ["failed", "partial"]

        [[notify]]
        url = "{receiver.url("/successes")}"
        on = ["succeeded"]
        """,
    )
    summary = run(job)
    assert [(n["status"], n["attempts"]) for n in summary.notifications] == [
        ("skipped", 0),
        ("delivered", 1),
    ]
    assert [h.path for h in receiver.hits] == ["/successes"]
    assert SIGNATURE_HEADER not in receiver.hits[0].headers, "no secret, no signature"


def test_a_failing_webhook_is_recorded_and_the_run_succeeds(
    db, tmp_path: Path, failing_receiver: Receiver, capsys
) -> None:
    job = write_job(
        db,
        tmp_path,
        unique("failing"),
        f"""
        [[notify]]
        url = "{failing_receiver.url()}"
        max_retries = 2
        retry_delay = 0.01
        """,
    )
    recorder = Recorder()
    summary = run(job, plugins=[recorder])
    assert summary.status == "succeeded" and summary.exit_code == 0
    (note,) = summary.notifications
    assert note["status"] == "failed"
    assert note["attempts"] == 3 and len(failing_receiver.hits) == 3
    assert note["http_status"] == 500 and note["error"].startswith("HTTP 500")
    warnings = [e.message for e in recorder.events if isinstance(e, ev.Warned)]
    assert any("failed after 3 tries" in w for w in warnings), warnings
    stored = db.execute(
        "SELECT status, notifications FROM csvpg.runs WHERE id = %s", (summary.run_id,)
    ).fetchone()
    assert stored == ("succeeded", summary.notifications)
    capsys.readouterr()
    assert main(["runs", summary.run_id, "--dsn", db.dsn]) == 0
    out = capsys.readouterr().out
    assert f"webhook {failing_receiver.url()}: failed after 3 tries" in out


def test_a_refused_webhook_is_not_retried(tmp_path: Path) -> None:
    with Receiver(status=403) as receiver:
        delivery = deliver(Webhook(url=receiver.url(), retry_delay=0.01), OK)
        assert (delivery.status, delivery.attempts, delivery.http_status) == ("failed", 1, 403)
        assert len(receiver.hits) == 1


def test_a_receiver_not_ready_yet_is_tried_again() -> None:
    """n8n answers 409 to a resume call that overtakes its Wait node; 429 is a rate limit."""
    with Receiver(first=[409, 429]) as receiver:
        delivery = deliver(Webhook(url=receiver.url(), retry_delay=0.01), OK)
    assert (delivery.status, delivery.attempts, delivery.http_status) == ("delivered", 3, 200)


def test_broken_webhooks_fail_quietly() -> None:
    """No listener, an answer that is not HTTP, a URL that is not http(s): each a failed
    delivery, never an exception that would lose the run's summary."""
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    d = deliver(Webhook(f"http://127.0.0.1:{port}/", max_retries=1, retry_delay=0.01), OK)
    assert (d.status, d.attempts, d.http_status) == ("failed", 2, None) and d.error

    with socket.socket() as garbage:
        garbage.bind(("127.0.0.1", 0))
        garbage.listen()

        def answer() -> None:
            for _ in range(2):
                conn, _ = garbage.accept()
                conn.recv(65536)
                conn.sendall(b"this is not HTTP\r\n\r\n")
                conn.close()

        thread = threading.Thread(target=answer, daemon=True)
        thread.start()
        url = f"http://127.0.0.1:{garbage.getsockname()[1]}/"
        d = deliver(Webhook(url, max_retries=1, retry_delay=0.01), OK)
        thread.join(5)
    assert (d.status, d.attempts) == ("failed", 2) and d.error

    for url in ("file:///etc/passwd", "not a url", "ftp://127.0.0.1/x"):
        d = deliver(Webhook(url, retry_delay=0.01), OK)
        assert d.status == "failed" and d.attempts == 0, (url, d)


def test_callback_url_from_the_command_line(db, tmp_path: Path, receiver: Receiver, capsys) -> None:
    job = write_job(db, tmp_path, unique("callback"))
    code = main(["run", str(job), "--json", "--callback-url", receiver.url("/cb")])
    assert code == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["notifications"][0]["status"] == "delivered"
    (hit,) = receiver.hits
    assert hit.path == "/cb" and SIGNATURE_HEADER not in hit.headers
    assert hit.json()["run_id"] == summary["run_id"]
    assert hit.json()["totals"]["inserted"] == 2


def test_a_bad_callback_url_does_not_fail_the_run(db, tmp_path: Path, capsys) -> None:
    job = write_job(db, tmp_path, unique("badcb"))
    assert main(["run", str(job), "--json", "--callback-url", "not-a-url"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["status"] == "succeeded"
    assert summary["notifications"][0]["status"] == "failed"


@pytest.mark.parametrize(
    ("entry", "message", "hint"),
    [
        ({"urll": "http://x"}, "unknown key 'notify[0].urll'", "did you mean 'url'?"),
        ({"url": "http://x", "on": ["done"]}, "'notify[0].on' names no run status", "partial"),
        ({"url": "http://x", "secret": 42}, "'notify[0].secret' must be", None),
        ({"secret": "x"}, "missing required key 'notify[0].url'", None),
        ({"url": "file:///etc/passwd"}, "'notify[0].url' must be an http:// or https:// URL", None),
    ],
)
def test_notify_entries_are_checked(entry: dict, message: str, hint: str | None) -> None:
    spec = {"job": {"name": "n"}, "source": {"url": "."}, "notify": [entry]}
    with pytest.raises(SpecError) as info:
        job_from_dict(spec)
    assert message in info.value.message
    if hint:
        assert hint in (info.value.hint or "")


def test_notify_must_be_an_array_of_tables() -> None:
    with pytest.raises(SpecError, match=r"\[\[notify\]\]"):
        job_from_dict({"job": {"name": "n"}, "source": {"url": "."}, "notify": {"url": "x"}})


def test_a_run_that_fails_before_its_files_still_calls_back(
    tmp_path: Path, receiver: Receiver, capsys
) -> None:
    """No source folder: the run fails at once, and the callback hears why."""
    job = tmp_path / "job.toml"
    job.write_text('[job]\nname = "early"\n[source]\nurl = "no/such/folder"\n')
    assert main(["run", str(job), "--callback-url", receiver.url("/cb")]) == 1
    assert "source not found" in capsys.readouterr().err
    (hit,) = receiver.hits
    body = hit.json()
    assert body["status"] == "failed" and body["files"] == []
    assert "source not found" in body["error"]
