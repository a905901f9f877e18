"""A loopback server that speaks OpenAI's ``/v1/chat/completions`` (canned answers)."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

#: The server stops by itself after this long, whatever the test does.
LIFETIME = 60.0

#: What ``respond`` returns: (status, body, seconds to wait before answering) and,
#: optionally, response headers.
Reply = tuple[int, bytes, float] | tuple[int, bytes, float, dict[str, str]]


@dataclass
class ChatServer:
    url: str = ""
    requests: list[dict[str, Any]] = field(default_factory=list)
    #: request body (parsed) → a Reply
    respond: Callable[[dict[str, Any]], Reply] = lambda body: (
        200,
        b'{"choices": [{"message": {"role": "assistant", "content": "{}"}}]}',
        0.0,
    )
    #: Set when the test ends: a handler waiting on it gives up.
    stop: threading.Event = field(default_factory=threading.Event)


@pytest.fixture(autouse=True)
def llm_cache(monkeypatch, tmp_path: Path) -> Path:
    """Every test stores answers in its own folder, never the user's."""
    folder = tmp_path / "llm-cache"
    monkeypatch.setenv("CSVPG_LLM_CACHE", str(folder))
    return folder


@pytest.fixture
def chat_server() -> Iterator[ChatServer]:
    state = ChatServer()
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length))
            with lock:
                state.requests.append(
                    {"path": self.path, "headers": dict(self.headers.items()), "body": body}
                )
            status, payload, delay, *extra = state.respond(body)
            if delay:
                state.stop.wait(delay)
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                for name, value in (extra[0] if extra else {}).items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(payload)
            except OSError:  # the client gave up waiting
                pass

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    watchdog = threading.Timer(LIFETIME, server.shutdown)
    watchdog.daemon = True
    watchdog.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}/v1"
    try:
        yield state
    finally:
        state.stop.set()
        watchdog.cancel()
        server.shutdown()
        server.server_close()
        thread.join(5)
