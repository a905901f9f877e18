"""The dashboard's commands: ``run --tui`` and ``dashboard`` want a terminal, and
``dashboard --web`` serves the app to a browser on the loopback address."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
import pytest

from csvpg.api import run
from csvpg.cli.main import main
from tests.conftest import job_toml


def test_tui_and_dashboard_need_a_terminal(tmp_path: Path, capsys) -> None:
    # pytest's captured stdin and stdout are no terminal
    assert main(["run", str(tmp_path / "job.toml"), "--tui"]) == 2
    assert main(["dashboard"]) == 2
    err = capsys.readouterr().err
    assert "error: --tui needs a terminal" in err
    assert "error: csvpg dashboard needs a terminal" in err


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def first_screen(port: int, words: list[str], timeout: float = 30) -> str:
    """Open a browser session over textual-serve's websocket; the screen it draws."""
    got = ""
    deadline = time.monotonic() + timeout
    async with (
        aiohttp.ClientSession() as session,
        session.ws_connect(f"http://127.0.0.1:{port}/ws") as ws,
    ):
        await ws.send_str(json.dumps(["resize", {"width": 120, "height": 36}]))
        while not all(w in got for w in words) and time.monotonic() < deadline:
            try:
                msg = await asyncio.wait_for(ws.receive(), deadline - time.monotonic())
            except TimeoutError:
                break
            if msg.type == aiohttp.WSMsgType.BINARY:
                got += msg.data.decode("utf-8", "replace")
            elif msg.type == aiohttp.WSMsgType.TEXT:
                got += msg.data
            else:
                break
    return got


def test_dashboard_web_serves_the_app_on_loopback(db, tmp_path: Path) -> None:
    pytest.importorskip("textual_serve")
    (tmp_path / "a.csv").write_text("id\n1\n")
    jobs = tmp_path / "jobs"
    jobs.mkdir()
    (jobs / "web-job.toml").write_text(job_toml(db, "../a.csv"))
    run(jobs / "web-job.toml")
    port = free_port()
    command = ["dashboard", "--web", "--port", str(port), "--dsn", db.dsn, "--jobs", str(jobs)]
    server = subprocess.Popen(
        [sys.executable, "-m", "csvpg", *command],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert server.stdout is not None
        assert server.stdout.readline().startswith(f"csvpg dashboard on http://127.0.0.1:{port}")
        for _ in range(100):  # the server binds after its banner
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.05)
        screen = asyncio.run(first_screen(port, ["Runs", "Jobs"]))
        assert "Runs" in screen and "Jobs" in screen
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def test_dashboard_web_off_loopback_needs_a_token(monkeypatch, capsys) -> None:
    pytest.importorskip("textual_serve")
    monkeypatch.delenv("CSVPG_API_TOKEN", raising=False)
    for host in ("0.0.0.0", "192.0.2.1", "example.com"):
        assert main(["dashboard", "--web", "--host", host, "--port", "1"]) == 2
        err = capsys.readouterr().err
        assert f"error: csvpg dashboard --web on {host} needs a token in CSVPG_API_TOKEN" in err


def test_the_web_dashboard_asks_browsers_for_the_token() -> None:
    """What ``--host`` off loopback serves, in-process on loopback: nothing without the
    token; the token once in the address becomes a cookie, and the address loses it."""
    pytest.importorskip("textual_serve")
    from aiohttp.test_utils import TestClient, TestServer

    from csvpg.tui.web import COOKIE, TokenServer

    async def visit() -> None:
        server = TokenServer("true", token="s3cret", host="127.0.0.1", port=0)
        async with TestClient(TestServer(await server._make_app())) as browser:
            for path in ("/", "/ws", "/static/x", "/?token=wrong"):
                answer = await browser.get(path)
                assert answer.status == 401, path
            answer = await browser.get("/?token=s3cret&x=1", allow_redirects=False)
            assert answer.status == 302 and answer.headers["Location"] == "/?x=1"
            cookie = answer.cookies[COOKIE]
            assert (
                cookie.value == "s3cret" and cookie["httponly"] and cookie["samesite"] == "Strict"
            )
            assert (await browser.get("/")).status == 200, "the cookie is enough"

    asyncio.run(visit())
