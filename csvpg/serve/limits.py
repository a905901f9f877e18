"""The upload size limit, enforced while the request body streams in."""

from __future__ import annotations

from typing import Any

from fastapi import HTTPException
from fastapi.responses import JSONResponse


class BodyLimit:
    """Refuses a request to ``path`` whose body is over ``limit`` bytes with a 413 while it
    streams in (by its Content-Length, or by counting a chunked one), before the form
    parser spools it to disk."""

    def __init__(self, app: Any, *, path: str, limit: int) -> None:
        self.app = app
        self.path = path
        self.limit = limit

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["path"] != self.path:
            await self.app(scope, receive, send)
            return
        detail = f"the upload is larger than the limit ({(self.limit >> 20) - 1} MiB of files)"
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.limit:
            await JSONResponse({"detail": detail}, status_code=413)(scope, receive, send)
            return
        received = 0

        async def counted() -> Any:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.limit:
                raise HTTPException(413, detail)
            return message

        await self.app(scope, counted, send)
