"""Route guards: who is calling (401), may they (403), may they now (429).

A credential comes as ``Authorization: Bearer ...`` (API clients, an OIDC proxy in front of
the dashboard) or as the dashboard's session cookie (``services/control/sessions.py``; it holds
a session id, never a token). Every state-changing request must also carry a CSRF proof,
whatever the credential (``services/control/csrf.py``).
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, HTTPException, Request

from services.control import cookies, csrf
from services.control.auth import Principal, Role
from services.control.context import Control, Ctl
from services.control.sessions import Session

UNAUTHENTICATED = HTTPException(401, headers={"WWW-Authenticate": "Bearer"})


async def credential(request: Request, ctl: Control) -> tuple[Principal, Session | None]:
    """The caller and, when they came with the session cookie, their session (or 401)."""
    header = request.headers.get("authorization", "")
    if not header:
        return await _from_session(request, ctl)
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or len(token) > 8192:
        raise UNAUTHENTICATED
    principal = await ctl.auth.identify(token)
    if principal is None:
        raise UNAUTHENTICATED
    return principal, None


async def _from_session(request: Request, ctl: Control) -> tuple[Principal, Session]:
    session_id = ctl.cookies.read(request, cookies.SESSION)
    session = await ctl.sessions.find(session_id) if session_id else None
    # a session lives only as long as the token that opened it stays configured
    principal = ctl.auth.by_token_hash(session.token_hash) if session else None
    if session is None or principal is None:
        raise UNAUTHENTICATED
    return principal, session


async def caller(request: Request, ctl: Ctl) -> Principal:
    principal, session = await credential(request, ctl)
    if csrf.mutating(request):
        csrf.check(request, ctl.settings.control.public_origin, session.csrf if session else None)
    return principal


def require(role: Role) -> Callable[..., Awaitable[Principal]]:
    async def guard(principal: Annotated[Principal, Depends(caller)], ctl: Ctl) -> Principal:
        if not principal.may(role):
            raise HTTPException(403)
        if role is Role.OPERATOR:
            wait = await ctl.budget.take(f"{principal.via}:{principal.name}")
            if wait > 0:
                raise HTTPException(
                    429, "mutation budget spent", headers={"Retry-After": str(math.ceil(wait))}
                )
        return principal

    return guard


viewer = require(Role.VIEWER)
operator = require(Role.OPERATOR)
