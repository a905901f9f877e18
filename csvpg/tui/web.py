"""``csvpg dashboard --web`` off the loopback address: textual-serve's server, with the
API's token required of every request (textual-serve itself has no authentication).

A browser cannot send an Authorization header on a websocket, so the token comes once in
the address (``/?token=…``), becomes an HttpOnly, SameSite=Strict cookie, and the
address is cleaned of it by a redirect."""

from __future__ import annotations

import hmac
from typing import Any

from aiohttp import web
from textual_serve.server import Server

COOKIE = "csvpg_dashboard"


def _same(given: str | None, token: str) -> bool:
    return given is not None and hmac.compare_digest(given.encode(), token.encode())


def token_required(token: str) -> Any:
    """An aiohttp middleware: the token (cookie, or ``?token=`` once), else a 401."""

    @web.middleware
    async def check(request: web.Request, handler: Any) -> web.StreamResponse:
        if _same(request.cookies.get(COOKIE), token):
            answer: web.StreamResponse = await handler(request)
            return answer
        if _same(request.query.get("token"), token):
            rest = {k: v for k, v in request.query.items() if k != "token"}
            response = web.Response(
                status=302, headers={"Location": str(request.rel_url.with_query(rest))}
            )
            response.set_cookie(COOKIE, token, httponly=True, samesite="Strict")
            return response
        return web.Response(status=401, text="csvpg dashboard: open /?token=<CSVPG_API_TOKEN>\n")

    return check


class TokenServer(Server):
    """textual-serve's Server, every route behind :func:`token_required`."""

    def __init__(self, *args: Any, token: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.token = token

    async def _make_app(self) -> web.Application:
        app: web.Application = await super()._make_app()
        app.middlewares.append(token_required(self.token))
        return app
