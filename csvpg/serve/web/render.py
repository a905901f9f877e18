"""The pages' templates, and the one filter every number on them goes through."""

from __future__ import annotations

import math
from datetime import datetime
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from csvpg import __version__
from csvpg.serve.web.highlight import toml_html
from csvpg.serve.web.session import COOKIE, MAX_AGE, Session, encode

HERE = Path(__file__).parent
STATIC_URL = "/app/static"

_UNITS = {"B": ("B", "kB", "MB", "GB", "TB"), "B/s": ("B/s", "kB/s", "MB/s", "GB/s", "TB/s")}


def num(value: Any, unit: str = "") -> str:
    """Every number a page shows: ``1,234,567`` rows, ``12.5 MB`` (unit "B"), ``3.2 MB/s``
    ("B/s"), ``1.4 s`` / ``2 min 05 s`` ("s"), ``12.5 %`` ("%"), ``1,234 rows/s`` ("/s");
    a missing value is a dash."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    if unit in _UNITS:
        return _scaled(float(value), _UNITS[unit])
    if unit == "s":
        return _seconds(float(value))
    if unit == "%":
        return f"{float(value):.1f} %"
    if unit == "/s":
        return f"{round(float(value)):,}/s"
    if isinstance(value, float) and not value.is_integer():
        return f"{value:,.2f}"
    return f"{int(value):,}"


def _scaled(value: float, names: tuple[str, ...]) -> str:
    step = 0
    while abs(value) >= 1000 and step < len(names) - 1:
        value /= 1000
        step += 1
    return f"{value:,.0f} {names[step]}" if step == 0 else f"{value:,.1f} {names[step]}"


def _seconds(value: float) -> str:
    if value < 60:
        return f"{value:.1f} s" if value < 10 else f"{value:.0f} s"
    minutes, seconds = divmod(round(value), 60)
    if minutes < 60:
        return f"{minutes} min {seconds:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def when(value: Any) -> str:
    """A time as ``2026-12-02 17:45:03`` in the server's zone."""
    if value is None:
        return "–"
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            return str(value)
    if isinstance(value, datetime):
        return value.astimezone().strftime("%Y-%m-%d %H:%M:%S")
    return str(value)


def short_name(url: str | None) -> str:
    """A file's name for a table cell: the last part of its URL (the URL is its title)."""
    if not url:
        return ""
    return url.rstrip("/").rsplit("/", 1)[-1] or url


#: The pages load their own assets only, are framed by no other site, post only here.
CSP = (
    "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
)

templates = Jinja2Templates(directory=HERE / "templates")
templates.env.filters.update(num=num, when=when, short_name=short_name, toml=toml_html)
templates.env.globals.update(static=STATIC_URL, version=__version__)


def page(
    request: Request,
    name: str,
    session: Session | None,
    status_code: int = 200,
    **context: Any,
) -> HTMLResponse:
    """A page, with the session its forms need (and its cookie, when it is new)."""
    response = templates.TemplateResponse(
        request, name, {"session": session, **context}, status_code=status_code
    )
    if session is not None and session.fresh:
        set_session(request, response, session)
    response.headers["Cache-Control"] = "no-store"
    response.headers["Content-Security-Policy"] = CSP
    return response


def set_session(request: Request, response: Any, session: Session) -> None:
    response.set_cookie(
        COOKIE,
        encode(request.app.state, session),
        max_age=MAX_AGE,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        path="/",
    )
