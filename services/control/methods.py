"""`Allow` names every method of a route: on a 405, and as the answer to `OPTIONS`.

FastAPI makes one route per method: the router stops at the first route whose path matches and
answers 405 with that route's methods only (``Allow: GET`` where ``POST`` exists too). Here the
methods of every route with that path are gathered.
"""

from __future__ import annotations

from fastapi import Request, Response
from starlette.routing import Match

ALWAYS = ("OPTIONS",)
CANDIDATES = ("DELETE", "GET", "PATCH", "POST", "PUT")


def allowed(request: Request) -> list[str]:
    """Every method some route serves at the request's path (HEAD with GET, and OPTIONS).

    Each method is probed as the router would route it (a full match), which holds however
    the routes are nested (FastAPI keeps included routers as routes of their own)."""
    routes = request.app.router.routes
    methods = {
        method
        for method in CANDIDATES
        if any(
            route.matches({**request.scope, "method": method})[0] is Match.FULL for route in routes
        )
    }
    if "GET" in methods:
        methods.add("HEAD")
    return sorted(methods | set(ALWAYS)) if methods else []


def options(request: Request) -> Response | None:
    """The answer to ``OPTIONS`` on a route (204, ``Allow``); None when no route is there."""
    methods = allowed(request)
    if not methods:
        return None
    return Response(status_code=204, headers={"Allow": ", ".join(methods)})
