"""A real HTTP server on loopback for the tests: Python's ``http.server`` serving a
temporary directory (with its directory listing as the index page, or an
``index.html`` the test writes), and switches for what remote servers do: a bearer
token it requires (401 without it), the next N requests answered with a status (503
for retries, with a Retry-After), gzip transfer encoding, a body cut off after some
bytes, and bodies sent without a Content-Length."""

from __future__ import annotations

import gc
import gzip
import shutil
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest


@dataclass
class HttpServer:
    """The server's state, which tests change while it runs."""

    root: Path
    port: int = 0
    #: Required ``Authorization: Bearer <token>``; None: open to all.
    token: str | None = None
    #: Statuses to answer the next requests with, one per request (e.g. [503, 503]).
    failures: list[int] = field(default_factory=list)
    #: Serve ``.csv`` files with ``Content-Encoding: gzip`` to clients that accept it.
    gzip_transfer: bool = False
    #: Send only this many bytes of the next file body, then close the connection.
    cut_next_after: int | None = None
    #: The same for every file body, until set back to None.
    cut_every_after: int | None = None
    #: Answer GETs of files without a Content-Length: the body ends when the connection
    #: closes (HEAD still says the length).
    omit_length: bool = False
    #: The ``Retry-After`` sent with the statuses of ``failures``.
    retry_after: str = "0"
    #: (method, path, headers) of every request.
    requests: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    _httpd: Any = None

    def url(self, path: str = "") -> str:
        return f"http://127.0.0.1:{self.port}/{path.lstrip('/')}"

    def fail_next(self, count: int, status: int = 503) -> None:
        with self.lock:
            self.failures = [status] * count

    def paths(self, method: str = "GET") -> list[str]:
        with self.lock:
            return [p for m, p, _ in self.requests if m == method]


class _Handler(SimpleHTTPRequestHandler):
    state: HttpServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _gate(self) -> bool:
        """Record the request; answer it here (True) when a switch says so."""
        state = self.state
        with state.lock:
            state.requests.append((self.command, self.path, dict(self.headers.items())))
            status = state.failures.pop(0) if state.failures else None
        if status is not None:
            self._answer(status, b"try again later\n", {"Retry-After": state.retry_after})
            return True
        if state.token is not None:
            given = self.headers.get("Authorization", "")
            if given != f"Bearer {state.token}":
                self._answer(401, b"unauthorized\n", {"WWW-Authenticate": "Bearer"})
                return True
        return False

    def _answer(self, status: int, body: bytes, headers: dict[str, str]) -> None:
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def do_HEAD(self) -> None:
        if not self._gate():
            self._file(head=True)

    def do_GET(self) -> None:
        if not self._gate():
            self._file(head=False)

    def _file(self, head: bool) -> None:
        state = self.state
        path = Path(self.translate_path(self.path))
        if path.is_dir() or not path.is_file() or not path.name.endswith(".csv"):
            # Directory listings, index.html and other files as http.server serves them.
            if head:
                super().do_HEAD()
            else:
                super().do_GET()
            return
        data = path.read_bytes()
        headers = {"Content-Type": "text/csv", "Last-Modified": self._modified(path)}
        accepts = "gzip" in self.headers.get("Accept-Encoding", "")
        if state.gzip_transfer and accepts:
            data = gzip.compress(data, mtime=0)
            headers["Content-Encoding"] = "gzip"
        self.send_response(200)
        for key, value in headers.items():
            self.send_header(key, value)
        if head or not state.omit_length:
            self.send_header("Content-Length", str(len(data)))
        else:
            self.send_header("Connection", "close")
        self.end_headers()
        if head:
            return
        with state.lock:
            cut, state.cut_next_after = state.cut_next_after, None
            cut = cut if cut is not None else state.cut_every_after
        if cut is None:
            self.wfile.write(data)
            if state.omit_length:
                self.wfile.flush()
                self.close_connection = True
            return
        self.wfile.write(data[:cut])
        self.wfile.flush()
        self.close_connection = True
        self.connection.shutdown(2)

    def _modified(self, path: Path) -> str:
        return self.date_time_string(int(path.stat().st_mtime))


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that hangs up early (a stream closed before its end) is no news.
        pass


def start_http_server(root: Path) -> HttpServer:
    state = HttpServer(root=root)
    handler = type("Handler", (_Handler,), {"state": state})
    httpd = _Server(("127.0.0.1", 0), partial(handler, directory=str(root)))
    state.port = httpd.server_address[1]
    state._httpd = httpd
    threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True).start()
    return state


@pytest.fixture
def http_server() -> Iterator[HttpServer]:
    """A server for one test, serving its own temporary directory (``root``)."""
    root = Path(tempfile.mkdtemp(prefix="csvpg-http-"))
    state = start_http_server(root)
    try:
        yield state
    finally:
        state._httpd.shutdown()
        state._httpd.server_close()
        shutil.rmtree(root, ignore_errors=True)
        gc.collect()  # close the test's client sessions now (see tests/fix_sftp.py)
