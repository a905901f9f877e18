"""Request body limits, enforced while the body streams in: uploads by ``--max-upload-mb``,
every other body (JSON) by ``--max-json-kb``; and the access log, a line a request."""

from __future__ import annotations

import logging
import time
from typing import Any

from fastapi import HTTPException
from fastapi.responses import JSONResponse

#: ``csvpg serve``'s own log: the startup line and a line a request.
ACCESS = logging.getLogger("csvpg.serve")


class AccessLog:
    """Logs each request once answered: client, method, path (no query: it may hold a
    token), status, milliseconds and the caller's role."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        began = time.perf_counter()
        status = 500  # what the client gets if the app raises before it answers

        async def noted(message: Any) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, noted)
        finally:
            client = scope.get("client") or ("-", 0)
            role = scope.get("state", {}).get("role", "-")
            ACCESS.info(
                "%s %s %s %d %.1f ms %s",
                client[0],
                scope["method"],
                scope["path"],
                status,
                (time.perf_counter() - began) * 1000,
                role,
            )


class BodyLimit:
    """Refuses a request whose body is over its limit with a 413 while it streams in (by
    its Content-Length, or by counting a chunked one), before a parser holds it in memory
    or spools it to disk. ``uploads`` bytes for ``/uploads``, ``json`` for the rest."""

    def __init__(self, app: Any, *, uploads: int, json: int) -> None:
        self.app = app
        self.uploads = uploads
        self.json = json

    def _limit(self, path: str) -> tuple[int, str]:
        if path == "/uploads":
            mib = (self.uploads >> 20) - 1  # the form's framing has one MiB of its own
            return self.uploads, f"the upload is larger than the limit ({mib} MiB of files)"
        kib = self.json >> 10
        return self.json, f"the request body is larger than the limit ({kib} KiB)"

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit, detail = self._limit(scope["path"])
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None and length.isdigit() and int(length) > limit:
            await JSONResponse({"detail": detail}, status_code=413)(scope, receive, send)
            return
        received = 0

        async def counted() -> Any:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > limit:
                raise HTTPException(413, detail)
            return message

        await self.app(scope, counted, send)
