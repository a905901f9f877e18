"""Who may do what: the bearer token of an operator (everything) and the read-only token
of a viewer (GET only).

:func:`role_for` is the one place a token becomes a role; the API's bearer dependency
and the web app's session both ask it, so the two can never disagree.
"""

from __future__ import annotations

import hmac
from typing import Annotated, Any, Literal

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

Role = Literal["operator", "viewer"]

#: Module level: FastAPI reads the dependency from the annotations.
BEARER = HTTPBearer(auto_error=False)
#: Methods a viewer may use: reading changes nothing.
READING = frozenset({"GET", "HEAD", "OPTIONS"})


def _same(given: str, expected: str | None) -> bool:
    """Constant-time: how much of a token matched must not show in the answer's timing."""
    if not expected:
        return False
    return hmac.compare_digest(given.encode(), expected.encode())


def role_for(app_state: Any, token: str) -> Role | None:
    """The role ``token`` grants on the app whose ``state`` is ``app_state``: the full
    token (``app_state.token``) an operator, the read-only one a viewer, else None.
    A server without a token (``--no-auth`` on loopback) makes everyone an operator."""
    full: str | None = getattr(app_state, "token", None)
    viewer: str | None = getattr(app_state, "read_only_token", None)
    if full is None:
        return "operator"
    # Both compared, always: which of the two matched must not show in the timing either.
    is_operator, is_viewer = _same(token, full), _same(token, viewer)
    if is_operator:
        return "operator"
    return "viewer" if is_viewer else None


def authorised(
    request: Request,
    cred: Annotated[HTTPAuthorizationCredentials | None, Depends(BEARER)],
) -> Role:
    """The caller's role; a 401 without a valid token, a 403 for a viewer that would
    change something (run, edit, upload, cancel)."""
    state = request.app.state
    role = role_for(state, cred.credentials if cred is not None else "")
    if role is None:
        raise HTTPException(
            401, "a bearer token is required", headers={"WWW-Authenticate": "Bearer"}
        )
    if role == "viewer" and request.method not in READING:
        raise HTTPException(
            403,
            f"the read-only token may only read; {request.method} {request.url.path} "
            "needs the operator token (CSVPG_API_TOKEN)",
        )
    request.state.role = role
    return role
