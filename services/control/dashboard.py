"""The operator dashboard: sign-in, sign-out and the overview (its panels: pages/panels.py).

Every page is complete without JavaScript (every number is rendered on the server from the same
``pipeline_status`` the API returns, every action is a POST form: services/control/pages/);
``static/dashboard.js`` then re-reads the overview every few seconds, swaps its live panels in
and draws the charts with the vendored Chart.js.
"""

from __future__ import annotations

import asyncio
import json
import math
import secrets
from urllib.parse import parse_qs

import structlog
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from services.control import cookies, csrf, quality_panel
from services.control.auth import hash_token
from services.control.context import Ctl
from services.control.pages import panels
from services.control.pages.layout import e, notice, page, signed_in, to_login
from services.control.problems import problem
from services.control.security import credential
from shared.operations.status import FAILURES_SHOWN, PipelineStatus, pipeline_status

log = structlog.get_logger(__name__)

router = APIRouter(include_in_schema=False)
ACTIVE_SHOWN = 20
JSON_ESCAPES = {
    "&": "\\u0026",
    "<": "\\u003c",
    ">": "\\u003e",
    "\u2028": "\\u2028",
    "\u2029": "\\u2029",
}


@router.get("/")
async def root() -> RedirectResponse:
    return RedirectResponse("/dashboard", status_code=303)


@router.get("/dashboard", response_class=HTMLResponse)
async def dashboard(request: Request, ctl: Ctl, result: str | None = None) -> Response:
    visitor = await signed_in(request, ctl)
    if visitor is None:
        return to_login()
    store = ctl.store
    status, (active, more), (failed, _), found_jobs = await asyncio.gather(
        pipeline_status(store, ctl.now(), ctl.settings.dispatch.resend_interval_seconds),
        store.tasks_page("active", ACTIVE_SHOWN),
        store.tasks_page("failed", FAILURES_SHOWN),
        ctl.jobs.registry.list(),
    )
    resend_days = ctl.settings.dispatch.resend_interval_seconds / 86400
    body = "\n".join(
        [
            notice(result),
            panels.held(status),
            panels.failures(visitor, status, failed),
            panels.totals(status),
            panels.now_by_stage(status),
            panels.clip_outcomes(status),
            panels.waiting(status, resend_days),
            panels.jobs(visitor, found_jobs, status),
            panels.active(visitor, active, ctl.now(), more is not None),
            panels.hours_chart(),
            quality_panel.SECTION,
            f'<script id="initial-status" type="application/json">{status_json(status)}</script>',
        ]
    )
    return HTMLResponse(page(ctl, visitor, "overview", body, live=True))


@router.get("/dashboard/login", response_class=HTMLResponse)
async def login_form(ctl: Ctl) -> HTMLResponse:
    form_token = secrets.token_urlsafe(32)
    response = HTMLResponse(_login_page("", form_token))
    ctl.cookies.set(response, cookies.LOGIN, form_token, ctl.settings.control.login_form_seconds)
    return response


@router.post("/dashboard/login")
async def login(request: Request, ctl: Ctl) -> Response:
    """Sign in with an API token: budgeted per address, CSRF-checked, opens a session."""
    address = request.client.host if request.client else "unknown"
    wait = await ctl.sign_ins.take(f"login:{address}")
    if wait > 0:
        log.warning("sign-in refused", reason="too many attempts", address=address)
        return problem(
            429,
            "too many sign-in attempts from this address",
            request.url.path,
            headers={"Retry-After": str(math.ceil(wait))},
        )
    form = parse_qs((await request.body()).decode(errors="replace"))
    expected = ctl.cookies.read(request, cookies.LOGIN)
    if not expected:
        raise csrf.refuse(request, "the sign-in form expired or was not this site's: reload it")
    csrf.check(request, ctl.settings.control.public_origin, expected, _field(form, csrf.FORM_FIELD))
    token = _field(form, "token")
    who = await ctl.auth.identify(token) if token else None
    if who is None or who.via != "token":
        log.info("sign-in refused", reason="token not accepted", address=address)
        page = _login_page("That token was not accepted.", expected)
        return HTMLResponse(page, status_code=401)
    session_id, _ = await ctl.sessions.open(hash_token(token))
    response = RedirectResponse("/dashboard", status_code=303)
    ctl.cookies.set(response, cookies.SESSION, session_id, ctl.settings.control.session_seconds)
    ctl.cookies.clear(response, cookies.LOGIN)
    log.info("signed in", who=who.name, role=who.role.value)
    return response


@router.post("/dashboard/logout")
async def logout(request: Request, ctl: Ctl) -> Response:
    """End the session for every replica (the Sign out form carries its CSRF token)."""
    who, session = await credential(request, ctl)
    form = parse_qs((await request.body()).decode(errors="replace"))
    expected = session.csrf if session else None
    csrf.check(request, ctl.settings.control.public_origin, expected, _field(form, csrf.FORM_FIELD))
    if session is not None:
        await ctl.sessions.end(ctl.cookies.read(request, cookies.SESSION))
    response = RedirectResponse("/dashboard/login", status_code=303)
    ctl.cookies.clear(response, cookies.SESSION)
    log.info("signed out", who=who.name)
    return response


def _field(form: dict[str, list[str]], name: str) -> str:
    return (form.get(name) or [""])[0].strip()


def _login_page(message: str, form_token: str) -> str:
    note = f'<p class="error">{e(message)}</p>' if message else ""
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>LAVA control - sign in</title>
<link rel="icon" href="data:,"><link rel="stylesheet" href="/static/dashboard.css"></head>
<body><main class="login"><h1>LAVA labeling pipeline</h1>{note}
<form method="post" action="/dashboard/login">
<input type="hidden" name="csrf" value="{e(form_token)}">
<label>API token <input type="password" name="token" autocomplete="off" required></label>
<button type="submit">Sign in</button></form>
<p class="hint">Behind an OIDC proxy the page opens directly with your identity.</p>
</main></body></html>"""


def status_json(status: PipelineStatus) -> str:
    """The status as JSON safe inside a ``<script type="application/json">`` element: no
    ``<``, ``>`` or ``&`` (no ``</script>``, ``<!--`` or ``<script`` can end or re-open the
    element) and no U+2028/U+2029, all as JSON escapes that ``JSON.parse`` reads back."""
    text = json.dumps(status.model_dump(mode="json"))
    for char, escape in JSON_ESCAPES.items():
        text = text.replace(char, escape)
    return text
