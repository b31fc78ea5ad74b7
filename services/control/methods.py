"""`Allow` names every method of a route: on a 405, and as the answer to `OPTIONS`.

FastAPI makes one route per method: the router stops at the first route whose path matches and
answers 405 with that route's methods only (``Allow: GET`` where ``POST`` exists too). Here a
documented path's methods come from the OpenAPI document (where a concrete path such as
``/v1/tasks/spec`` wins over a template that also matches it, ``/v1/tasks/{task_id}``); other
paths (the dashboard's) are probed method by method as the router would route them.
"""

from __future__ import annotations

from fastapi import Request, Response
from starlette.routing import Match

ALWAYS = ("OPTIONS",)
CANDIDATES = ("DELETE", "GET", "PATCH", "POST", "PUT")


def _template_matches(template: str, path: str) -> int | None:
    """How many parameters ``template`` needs to match ``path`` (None: it does not)."""
    wanted, given = template.strip("/").split("/"), path.strip("/").split("/")
    if len(wanted) != len(given):
        return None
    params = 0
    for part, value in zip(wanted, given, strict=True):
        if part.startswith("{") and part.endswith("}"):
            params += 1
        elif part != value:
            return None
    return params


def _documented(request: Request) -> set[str] | None:
    """The methods the OpenAPI document gives the request's path (its most concrete match)."""
    paths: dict[str, dict[str, object]] = request.app.openapi().get("paths", {})
    found = [
        (params, template)
        for template in paths
        if (params := _template_matches(template, request.url.path)) is not None
    ]
    if not found:
        return None
    _, template = min(found)
    return {method.upper() for method in paths[template]}


def _probed(request: Request) -> set[str]:
    # Probed as the router routes (a full match), however the routes are nested (FastAPI keeps
    # included routers as routes of their own).
    routes = request.app.router.routes
    return {
        method
        for method in CANDIDATES
        if any(
            route.matches({**request.scope, "method": method})[0] is Match.FULL for route in routes
        )
    }


def allowed(request: Request) -> list[str]:
    """Every method served at the request's path (HEAD with GET, and OPTIONS); [] if none."""
    methods = _documented(request)
    if methods is None:
        methods = _probed(request)
    if "GET" in methods:
        methods.add("HEAD")
    return sorted(methods | set(ALWAYS)) if methods else []


def options(request: Request) -> Response | None:
    """The answer to ``OPTIONS`` on a route (204, ``Allow``); None when no route is there."""
    methods = allowed(request)
    if not methods:
        return None
    return Response(status_code=204, headers={"Allow": ", ".join(methods)})
