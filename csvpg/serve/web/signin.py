"""Signing in with the server's token (or its read-only token), and out."""

from __future__ import annotations

import hmac
import secrets
from typing import Annotated

from fastapi import APIRouter, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from csvpg.serve.auth import role_for
from csvpg.serve.web.render import page, set_session
from csvpg.serve.web.session import (
    COOKIE,
    SIGN_IN_COOKIE,
    SIGN_IN_PATH,
    current,
    new_session,
    safe_next,
)

router = APIRouter(include_in_schema=False)


def _form(request: Request, target: str, error: str | None, status_code: int = 200) -> Response:
    csrf = secrets.token_urlsafe(24)
    response = page(
        request, "sign_in.html", None, status_code=status_code, next=target, csrf=csrf, error=error
    )
    response.set_cookie(
        SIGN_IN_COOKIE, csrf, max_age=3600, httponly=True, samesite="strict", path=SIGN_IN_PATH
    )
    return response


@router.get(SIGN_IN_PATH, response_class=HTMLResponse)
def sign_in_page(request: Request, next: str = "/") -> Response:
    if request.app.state.token is None:  # nothing to sign in with: everybody is in
        return RedirectResponse(safe_next(next), status_code=303)
    return _form(request, safe_next(next), None)


@router.post(SIGN_IN_PATH)
def sign_in(
    request: Request,
    token: Annotated[str, Form()] = "",
    csrf: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = "/",
) -> Response:
    expected = request.cookies.get(SIGN_IN_COOKIE, "")
    if not expected or not hmac.compare_digest(csrf.encode(), expected.encode()):
        return _form(request, safe_next(next), "The form expired: please try again.", 403)
    role = role_for(request.app.state, token.strip()) if token.strip() else None
    if role is None:
        return _form(request, safe_next(next), "That token is not this server's.", 401)
    response = RedirectResponse(safe_next(next), status_code=303)
    set_session(request, response, new_session(role))
    response.delete_cookie(SIGN_IN_COOKIE, path=SIGN_IN_PATH)
    return response


@router.post("/app/sign-out")
def sign_out(request: Request, csrf: Annotated[str, Form()] = "") -> Response:
    session = current(request)
    if session is None or not hmac.compare_digest(csrf.encode(), session.csrf.encode()):
        raise HTTPException(403, "this form has expired: reload the page and try again")
    response = RedirectResponse(SIGN_IN_PATH, status_code=303)
    response.delete_cookie(COOKIE, path="/")
    return response
