"""Who is signed in: a signed, HttpOnly, SameSite=Strict session cookie made from the
server's token (operator) or its read-only token (viewer), and the CSRF token every form
carries.

The cookie holds the role, a CSRF token and the time it was issued, signed with HMAC-SHA256
under a key derived from the server's tokens: changing a token signs everybody out.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Form, HTTPException, Request

from csvpg.serve.auth import Role

COOKIE = "csvpg_session"
#: The sign-in form's own CSRF token (double submit): there is no session yet.
SIGN_IN_COOKIE = "csvpg_sign_in"
#: A session lasts a working day; then the token is asked for again.
MAX_AGE = 12 * 3600
SIGN_IN_PATH = "/app/sign-in"


@dataclass(frozen=True)
class Session:
    role: Role
    csrf: str
    #: Not yet in a cookie (a server without a token signs everybody in as operator).
    fresh: bool = False

    @property
    def can_change(self) -> bool:
        return self.role == "operator"


def _key(state: Any) -> bytes:
    tokens = f"{state.token}\0{getattr(state, 'read_only_token', None)}"
    return hashlib.sha256(b"csvpg web session\0" + tokens.encode()).digest()


def _sign(state: Any, payload: bytes) -> str:
    return hmac.new(_key(state), payload, hashlib.sha256).hexdigest()


def encode(state: Any, session: Session) -> str:
    payload = json.dumps({"r": session.role, "c": session.csrf, "t": int(time.time())})
    data = base64.urlsafe_b64encode(payload.encode()).decode()
    return f"{data}.{_sign(state, data.encode())}"


def decode(state: Any, cookie: str | None) -> Session | None:
    """The session a cookie holds; None for a missing, forged, or expired one."""
    if not cookie or "." not in cookie:
        return None
    data, _, signature = cookie.rpartition(".")
    if not hmac.compare_digest(signature, _sign(state, data.encode())):
        return None
    try:
        payload = json.loads(base64.urlsafe_b64decode(data.encode()))
        role, csrf, issued = payload["r"], payload["c"], int(payload["t"])
    except (ValueError, KeyError, TypeError):
        return None
    if role not in ("operator", "viewer") or time.time() - issued > MAX_AGE:
        return None
    return Session(role=role, csrf=str(csrf))


def new_session(role: Role) -> Session:
    return Session(role=role, csrf=secrets.token_urlsafe(24), fresh=True)


def current(request: Request) -> Session | None:
    state = request.app.state
    found = decode(state, request.cookies.get(COOKIE))
    if found is None and state.token is None:  # --no-auth: everybody is the operator
        return new_session("operator")
    return found


def page_session(request: Request) -> Session:
    """A page's reader: signed in, else sent to the sign-in form (and back after)."""
    session = current(request)
    if session is None:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise HTTPException(303, "sign in first", headers={"Location": _sign_in_url(target)})
    return session


def _sign_in_url(target: str) -> str:
    from urllib.parse import quote

    return f"{SIGN_IN_PATH}?next={quote(target, safe='')}"


def _checked(request: Request, csrf: str) -> Session:
    """A form's sender: signed in as operator, and the form is one this server made."""
    session = current(request)
    if session is None:
        raise HTTPException(401, "sign in first")
    if session.fresh or not hmac.compare_digest(csrf.encode(), session.csrf.encode()):
        raise HTTPException(403, "this form has expired: reload the page and try again")
    if not session.can_change:
        raise HTTPException(403, "signed in read-only: this needs the operator's token")
    return session


def operator_form(request: Request, csrf: Annotated[str, Form()] = "") -> Session:
    return _checked(request, csrf)


def operator_header(request: Request) -> Session:
    """The same check for a script's request (the upload), its token in X-CSRF-Token."""
    return _checked(request, request.headers.get("x-csrf-token", ""))


PageSession = Annotated[Session, Depends(page_session)]
OperatorForm = Annotated[Session, Depends(operator_form)]
OperatorHeader = Annotated[Session, Depends(operator_header)]


def safe_next(target: str | None) -> str:
    """Where to go after signing in: a path of this server only, never another site."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target
