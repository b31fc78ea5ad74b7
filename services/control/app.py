"""The control service's HTTP application: API, dashboard, health, OpenAPI 3.1.

FastAPI rather than aiohttp (already a dependency): the API's OpenAPI 3.1 document is
generated from the same pydantic models as the events and the task table (``AnnotationTask``,
``StreamingJob``, ``DriveAttributes``...), requests are validated by them, and the role guards
are declared per route - with aiohttp the document would be written by hand and drift.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import JSONResponse, PlainTextResponse
from fastapi.staticfiles import StaticFiles

from services.control import api, dashboard, dataset_routes, problems, quality_routes
from services.control.context import Control
from services.control.headers import SecurityHeaders
from services.control.limits import BodyLimit
from services.control.pages import site
from services.control.problems import Problem

STATIC = Path(__file__).with_name("static")


def create_app(control: Control) -> FastAPI:
    app = FastAPI(
        title="LAVA control API",
        version="1",
        summary="Streaming labeling jobs, annotation tasks, clips, the dataset and pipeline "
        "status.",
        description="Bearer tokens (hashed in the configuration) or OIDC JWTs. `viewer` "
        "reads; `operator` also creates, retries and stops. Errors are RFC 9457 problem "
        "details.",
        docs_url=None,
        redoc_url=None,
    )
    app.state.control = control
    app.include_router(api.router)
    app.include_router(dataset_routes.router)
    app.include_router(quality_routes.router)
    app.include_router(dashboard.router)
    app.include_router(site.router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    problems.install(app)
    app.add_middleware(BodyLimit, max_bytes=control.settings.control.max_body_bytes)
    hsts = 0 if control.settings.control.plain_localhost else control.settings.control.hsts_seconds
    app.add_middleware(SecurityHeaders, hsts_seconds=hsts)  # outermost: on every answer

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> PlainTextResponse:
        return PlainTextResponse("ok")

    @app.get("/readyz", include_in_schema=False)
    async def readyz() -> PlainTextResponse:
        if control.ready():
            return PlainTextResponse("ready")
        return PlainTextResponse("not ready", status_code=503)

    original = app.openapi

    def openapi() -> dict[str, object]:
        # Problem is referenced by every error response: make it a component.
        schema = original()
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        components["Problem"] = Problem.model_json_schema(
            ref_template="#/components/schemas/{model}"
        )
        schema["components"]["securitySchemes"] = {"bearer": {"type": "http", "scheme": "bearer"}}
        schema["security"] = [{"bearer": []}]
        return schema

    app.openapi = openapi  # type: ignore[method-assign]

    # Public on purpose (docs/secctl.md): it describes shapes, not data, all of it readable in
    # this repository's code; client generators and schema tests load it without a token, and
    # every operation it names still demands one.
    @app.get("/openapi.json", include_in_schema=False)
    async def openapi_document() -> JSONResponse:
        return JSONResponse(app.openapi())

    return app
