"""The web app as a person meets it: ``csvpg serve``'s app under uvicorn on a free
loopback port (in a thread, so a test can give it a read-only token), the embedded
PostgreSQL, a scratch jobs folder, and Debian's Chromium driven by Playwright."""

from __future__ import annotations

import os
import socket
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from csvpg.testing import CsvpgDb, fresh_schema

CHROMIUM = Path("/usr/bin/chromium")
TOKEN = "op-" + uuid.uuid4().hex
READ_ONLY_TOKEN = "ro-" + uuid.uuid4().hex
#: ``CSVPG_SCREENSHOTS=1 uv run pytest tests/web`` takes the README's screenshots anew;
#: otherwise they go to a scratch folder, and the tracked ones stay as they are.
SCREENSHOTS = (
    Path(__file__).resolve().parents[2] / "docs" / "screenshots"
    if os.environ.get("CSVPG_SCREENSHOTS")
    else Path(tempfile.gettempdir()) / "csvpg-screenshots"
)
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@dataclass
class Site:
    url: str
    jobs: Path
    inbox: Path
    db: CsvpgDb
    app: Any

    def job(self, name: str, source: str, extra: str = "") -> Path:
        """A job file in the served folder, loading into the test's schema."""
        path = self.jobs / f"{name}.toml"
        path.write_text(
            f'[job]\nname = "{name}"\n\n[database]\ndsn = "{self.db.dsn}"\n'
            f'schema = "{self.db.schema}"\n\n[source]\nurl = "{source}"\n{extra}',
            encoding="utf-8",
        )
        return path


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def serving(app: Any) -> Iterator[str]:
    """``app`` under uvicorn on a free loopback port; its base URL once it listens."""
    import uvicorn

    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            app, host="127.0.0.1", port=port, log_level="warning", timeout_graceful_shutdown=2
        )
    )
    thread = threading.Thread(target=server.run, name="web-uvicorn", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(15)


@pytest.fixture(scope="module")
def site(pg_server: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    from csvpg.serve import make_app

    root = tmp_path_factory.mktemp("web")
    jobs, inbox = root / "jobs", root / "inbox"
    jobs.mkdir()
    inbox.mkdir()
    app = make_app(
        jobs_dir=jobs, dsn=pg_server, token=TOKEN, read_only_token=READ_ONLY_TOKEN, workers=2
    )
    with serving(app) as url, fresh_schema(pg_server, CsvpgDb) as db:
        yield Site(url, jobs, inbox, db, app)


# Module-scoped: Playwright's sync API keeps an event loop running in the main thread
# while it is open, and other tests (the dashboard's) start loops of their own.
@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        pytest.skip(
            f"the browser tests need Debian's Chromium at {CHROMIUM} (apt-get install chromium)"
        )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


def new_page(browser: Any, site: Site, *, width: int = 1400) -> Any:
    context = browser.new_context(
        base_url=site.url,
        viewport={"width": width, "height": 900 if width >= 1400 else 768},
        color_scheme="light",  # a test switches with page.emulate_media
        accept_downloads=True,
    )
    page = context.new_page()
    page.set_default_timeout(30_000)
    return page


def sign_in(page: Any, token: str = TOKEN) -> None:
    page.goto("/")
    page.fill("input[name=token]", token)
    page.click("button:has-text('Sign in')")
    page.wait_for_url("**/")


@pytest.fixture
def operator(browser: Any, site: Site) -> Iterator[Any]:
    page = new_page(browser, site)
    sign_in(page)
    yield page
    page.context.close()


def shoot(page: Any, name: str, *, full_page: bool = True) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    if full_page:  # the sticky header is drawn where the window was scrolled to
        page.evaluate("window.scrollTo(0, 0)")
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=full_page)


class SlowCsv:
    """A loopback HTTP server that sends one large CSV slowly (a run that lasts until
    it is cancelled), and stops by itself after ``seconds``."""

    def __init__(self, rows: int = 6_000_000, seconds: float = 120) -> None:
        self.body_line = b"1,slow\n"
        self.rows = rows
        self.seconds = seconds
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_HEAD(self) -> None:
                self._head()

            def _head(self) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "text/csv")
                self.send_header("Content-Length", str(outer.size))
                self.end_headers()

            def do_GET(self) -> None:
                self._head()
                outer.send(self.wfile)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/slow.csv"

    @property
    def size(self) -> int:
        return len(b"id,name\n") + self.rows * len(self.body_line)

    def send(self, out: Any) -> None:
        chunk = self.body_line * 20_000  # 140 kB, ten times a second
        sent, deadline = 0, time.monotonic() + self.seconds
        try:
            out.write(b"id,name\n")
            while sent < self.rows and time.monotonic() < deadline:
                out.write(chunk)
                sent += 20_000
                time.sleep(0.1)
        except OSError:  # the run was cancelled: the reader went away
            return

    def __enter__(self) -> SlowCsv:
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
