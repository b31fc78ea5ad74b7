"""Errors as RFC 9457 problem details (``application/problem+json``).

Every error the API returns has this one shape: ``type``, ``title``, ``status``, ``detail``,
``instance``. Authentication and authorisation failures carry no detail (nothing to learn
from probing); server errors are logged with their cause and answered without it.
"""

from __future__ import annotations

from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from services.control import methods
from services.control.csrf import CsrfRefused
from shared.operations.errors import Conflict, Invalid, NotFound, OperationError

log = structlog.get_logger(__name__)

MEDIA_TYPE = "application/problem+json"
TYPE_BASE = "https://lava.example/problems/"


class Problem(BaseModel):
    type: str = Field(description="A URI naming the kind of problem.")
    title: str
    status: int
    detail: str | None = None
    instance: str | None = None
    errors: list[dict[str, Any]] | None = Field(
        None, description="For invalid requests: each field that is wrong."
    )


TITLES = {
    400: "bad request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not found",
    405: "method not allowed",
    409: "conflict",
    413: "request body too large",
    415: "unsupported media type",
    422: "invalid request",
    429: "too many requests",
    500: "internal error",
}
STATUS_OF: dict[type[OperationError], int] = {NotFound: 404, Conflict: 409, Invalid: 422}


def problem(
    status: int,
    detail: str | None = None,
    instance: str | None = None,
    headers: dict[str, str] | None = None,
    errors: list[dict[str, Any]] | None = None,
) -> JSONResponse:
    title = TITLES.get(status, "error")
    body = Problem(
        type=TYPE_BASE + title.replace(" ", "-"),
        title=title,
        status=status,
        detail=detail,
        instance=instance,
        errors=errors,
    )
    return JSONResponse(
        body.model_dump(exclude_none=True),
        status_code=status,
        media_type=MEDIA_TYPE,
        headers=headers,
    )


def documented(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for these error statuses (schema: Problem)."""
    schema = {"$ref": "#/components/schemas/Problem"}
    return {
        status: {
            "description": TITLES.get(status, "error"),
            "content": {MEDIA_TYPE: {"schema": schema}},
        }
        for status in statuses
    }


def install(app: FastAPI) -> None:
    async def on_operation(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, OperationError)
        status = next((code for kind, code in STATUS_OF.items() if isinstance(exc, kind)), 409)
        errors = [dict(e) for e in exc.errors] if isinstance(exc, Invalid) else []
        return problem(status, str(exc), request.url.path, errors=errors or None)

    async def on_http(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        if exc.status_code == 405:
            return not_allowed(request)
        # 401/403 never say why (a CSRF refusal does: the caller's own client is at fault);
        # others keep the short reason the route gave
        quiet = exc.status_code in (401, 403) and not isinstance(exc, CsrfRefused)
        detail = None if quiet or exc.detail == TITLES.get(exc.status_code) else str(exc.detail)
        headers = dict(exc.headers) if exc.headers else None
        return problem(exc.status_code, detail, request.url.path, headers=headers)

    def not_allowed(request: Request) -> Response:
        # OPTIONS is answered for every route; other methods get 405 naming every one allowed
        if request.method == "OPTIONS" and (answer := methods.options(request)):
            return answer
        allow = ", ".join(methods.allowed(request))
        return problem(405, None, request.url.path, headers={"Allow": allow})

    async def on_invalid(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        errors = [
            {"loc": [str(part) for part in e.get("loc", ())], "msg": str(e.get("msg", ""))}
            for e in exc.errors()
        ]
        return problem(
            422, "the request does not match its schema", request.url.path, errors=errors
        )

    async def on_crash(request: Request, exc: Exception) -> JSONResponse:
        log.exception("request failed", path=request.url.path)
        return problem(500, None, request.url.path)

    app.add_exception_handler(OperationError, on_operation)
    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(RequestValidationError, on_invalid)
    app.add_exception_handler(Exception, on_crash)
