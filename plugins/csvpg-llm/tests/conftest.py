"""A loopback server that speaks OpenAI's ``/v1/chat/completions`` (canned answers)."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

#: The server stops by itself after this long, whatever the test does.
LIFETIME = 60.0


@dataclass
class ChatServer:
    url: str = ""
    requests: list[dict[str, Any]] = field(default_factory=list)
    #: request body (parsed) → (status, body, seconds to wait before answering)
    respond: Callable[[dict[str, Any]], tuple[int, bytes, float]] = lambda body: (
        200,
        b'{"choices": [{"message": {"role": "assistant", "content": "{}"}}]}',
        0.0,
    )


@pytest.fixture
def chat_server() -> Iterator[ChatServer]:
    state = ChatServer()
    stop = threading.Event()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length))
            state.requests.append(
                {"path": self.path, "headers": dict(self.headers.items()), "body": body}
            )
            status, payload, delay = state.respond(body)
            if delay:
                stop.wait(delay)
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
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
        stop.set()
        watchdog.cancel()
        server.shutdown()
        server.server_close()
        thread.join(5)
