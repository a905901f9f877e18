"""The web app of ``csvpg serve``, for people who never open a terminal: sign in with the
server's token, see every job, edit and check one, upload files to it, run it and watch
it live, and read the history with its rejects. Server-rendered (Jinja2), every asset
vendored under ``static/`` (no CDN, no build step), in the same process as the JSON API:
the pages call :class:`~csvpg.serve.Server` and :mod:`csvpg.pg.history` directly.

:func:`install` adds the pages, ``/docs`` and ``/redoc``, and ``/app/static``.
"""

from __future__ import annotations

from fastapi import APIRouter, FastAPI
from fastapi.staticfiles import StaticFiles

from csvpg.serve.web import docs, jobs, runs, signin
from csvpg.serve.web.render import HERE, STATIC_URL

__all__ = ["install", "router"]

router = APIRouter(include_in_schema=False)
for _part in (signin.router, jobs.router, runs.router, docs.router):
    router.include_router(_part)


def install(app: FastAPI) -> None:
    app.include_router(router)
    app.mount(STATIC_URL, StaticFiles(directory=HERE / "static"), name="web-static")
