"""Route guards: who is calling (401), may they (403), may they now (429).

A credential comes as ``Authorization: Bearer ...`` (API clients, an OIDC proxy in front of
the dashboard) or as the dashboard's ``lava_token`` cookie (HttpOnly, SameSite=Strict), set by
its login form. A mutating call made with the cookie must also carry
``X-Requested-With: lava-dashboard`` - a header another site's form cannot send (CSRF).
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, HTTPException, Request

from services.control.auth import Principal, Role
from services.control.context import Ctl

COOKIE = "lava_token"
CSRF_HEADER = "x-requested-with"
CSRF_VALUE = "lava-dashboard"
UNAUTHENTICATED = HTTPException(401, headers={"WWW-Authenticate": "Bearer"})


async def caller(request: Request, ctl: Ctl) -> Principal:
    header = request.headers.get("authorization", "")
    scheme, _, credential = header.partition(" ")
    from_cookie = False
    if not header:
        credential, from_cookie = request.cookies.get(COOKIE, ""), True
    elif scheme.lower() != "bearer":
        raise UNAUTHENTICATED
    credential = credential.strip()
    if not credential or len(credential) > 8192:
        raise UNAUTHENTICATED
    principal = await ctl.auth.identify(credential)
    if principal is None:
        raise UNAUTHENTICATED
    mutating = request.method not in ("GET", "HEAD", "OPTIONS")
    if from_cookie and mutating and request.headers.get(CSRF_HEADER) != CSRF_VALUE:
        raise HTTPException(403)
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
