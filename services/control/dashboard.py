"""The operator dashboard: one server-rendered page, refreshed live from the API.

The page is complete without JavaScript (every number is rendered on the server from the same
``pipeline_status`` the API returns); ``static/dashboard.js`` then refreshes it every few
seconds from ``/v1/status`` and ``/v1/tasks`` and draws the charts with the vendored Chart.js.
Operators get retry and stop buttons, which call the API like any client.
"""

from __future__ import annotations

import html
import json
import math
import secrets
from urllib.parse import parse_qs

import structlog
from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from services.control import cookies, csrf, quality_panel
from services.control.auth import Principal, Role, hash_token
from services.control.context import Control, Ctl
from services.control.problems import problem
from services.control.security import credential
from services.control.sessions import Session
from shared.operations.status import Failure, PipelineStatus, pipeline_status

log = structlog.get_logger(__name__)

router = APIRouter(include_in_schema=False)
REFRESH_SECONDS = 5
ACTIVE_SHOWN = 20
JSON_ESCAPES = {
    "&": "\\u0026",
    "<": "\\u003c",
    ">": "\\u003e",
    "\u2028": "\\u2028",
    "\u2029": "\\u2029",
}


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


async def _signed_in(request: Request, ctl: Control) -> tuple[Principal, Session | None] | None:
    try:
        return await credential(request, ctl)
    except HTTPException:
        return None


@router.get("/")
async def root() -> RedirectResponse:
    return RedirectResponse("/dashboard", status_code=303)


@router.get("/dashboard", response_class=HTMLResponse)
async def dashboard(request: Request, ctl: Ctl) -> Response:
    found = await _signed_in(request, ctl)
    if found is None:
        return RedirectResponse("/dashboard/login", status_code=303)
    who, session = found
    status = await pipeline_status(
        ctl.store, ctl.now(), ctl.settings.dispatch.resend_interval_seconds
    )
    active, _ = await ctl.store.tasks_page("active", ACTIVE_SHOWN)
    return HTMLResponse(_page(ctl, who, session, status, [(t.task_id, t.level) for t in active]))


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
    note = f'<p class="error">{_e(message)}</p>' if message else ""
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>LAVA control - sign in</title>
<link rel="icon" href="data:,"><link rel="stylesheet" href="/static/dashboard.css"></head>
<body><main class="login"><h1>LAVA labeling pipeline</h1>{note}
<form method="post" action="/dashboard/login">
<input type="hidden" name="csrf" value="{_e(form_token)}">
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


def _rows(pairs: list[tuple[str, object]], attribute: str) -> str:
    return "".join(
        f'<tr><th>{_e(name)}</th><td {attribute}="{_e(name)}">{_e(value)}</td></tr>'
        for name, value in pairs
    )


def _page(
    ctl: Control,
    who: Principal,
    session: Session | None,
    status: PipelineStatus,
    active: list[tuple[str, int]],
) -> str:
    operator = who.may(Role.OPERATOR)
    disabled = "" if operator else " disabled"
    funnel = _rows([(s.stage, s.tasks) for s in status.funnel], "data-stage")
    waiting = _rows(list(status.waiting_by_age.items()), "data-age")
    policy = _policy_rows(status)
    failures = _failure_rows(status, disabled)
    running = _active_rows(active, disabled)
    # a bearer caller (OIDC proxy) proves with the header's presence; a session with its token
    token = session.csrf if session else "bearer"
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="csrf-token" content="{_e(token)}">
<title>LAVA control - {_e(ctl.settings.namespace)}</title>
<link rel="icon" href="data:,"><link rel="stylesheet" href="/static/dashboard.css">
<script src="/static/chart.umd.min.js" defer></script>
<script src="/static/dashboard.js" defer></script>
</head>
<body data-refresh="{REFRESH_SECONDS}" data-operator="{str(operator).lower()}">
<header><h1>LAVA labeling pipeline</h1>
<span>namespace <b>{_e(ctl.settings.namespace)}</b></span>
<span id="who">{_e(who.name)} ({_e(who.role.value)})</span>
<span id="updated">rendered by the server</span>{_sign_out(session)}</header>
<main>
<section><h2>Tasks by stage</h2><p class="total">tasks <b id="tasks-total">{status.tasks}</b></p>
<table id="funnel">{funnel}</table>
<div class="chart short"><canvas id="funnel-chart"></canvas></div></section>
<section><h2>Waiting data objects by time since last send</h2>
<table id="waiting">{waiting}</table>
<div class="chart short"><canvas id="waiting-chart"></canvas></div>
<p class="hint">Re-sent with the same key every
{ctl.settings.dispatch.resend_interval_seconds / 86400:g} days; re-keyed only after an
expiry.</p></section>
<section><h2>Dedup-key policy</h2><table id="policy">{policy}</table></section>
<section class="wide"><h2>Sends, re-keys and expirations per hour</h2>
<div class="chart tall"><canvas id="hours-chart"></canvas></div></section>
<section class="wide"><h2>Throughput per job (outputs per hour)</h2>
<div class="chart tall"><canvas id="jobs-chart"></canvas></div></section>
<section class="wide"><h2>Failures</h2>
<table id="failures"><tr><th>task</th><th>reason</th><th></th></tr>{failures}</table></section>
<section class="wide"><h2>Active tasks</h2>
<table id="active"><tr><th>task</th><th>stage</th><th></th></tr>{running}</table>
<p id="action-result" role="status"></p></section>
{quality_panel.SECTION}
</main>
<script id="initial-status" type="application/json">{status_json(status)}</script>
</body></html>"""


def _policy_rows(status: PipelineStatus) -> str:
    return _rows(
        [
            ("sends", status.sends),
            ("same-key re-sends", status.resends),
            ("re-keys", status.rekeys),
            ("expirations", status.expirations),
            ("outputs", status.outputs),
            ("waiting", status.waiting),
        ],
        "data-policy",
    )


def _sign_out(session: Session | None) -> str:
    """The Sign out button of a session (behind an OIDC proxy, signing out is the proxy's)."""
    if session is None:
        return ""
    return (
        '<form id="sign-out" method="post" action="/dashboard/logout">'
        f'<input type="hidden" name="csrf" value="{_e(session.csrf)}">'
        '<button type="submit">Sign out</button></form>'
    )


def _failure_rows(status: PipelineStatus, disabled: str) -> str:
    """Failed tasks, each with its reason and retry and stop buttons (disabled for viewers),
    and clips that failed at ingest (no task to retry: submit the clip again)."""
    return (
        "".join(_failure_row(f, disabled) for f in status.failures)
        or '<tr class="none"><td colspan="3">no failures</td></tr>'
    )


def _failure_row(f: Failure, disabled: str) -> str:
    if f.task_id is None:
        return (
            f'<tr data-clip="{_e(f.clip_id)}"><td>{_e(f.clip_id)}</td>'
            f"<td>{_e(f.stage)}: {_e(f.reason)}</td><td></td></tr>"
        )
    return (
        f'<tr data-task="{_e(f.task_id)}"><td>{_e(f.task_id)}</td><td>{_e(f.reason)}</td>'
        f'<td><button class="retry" data-task="{_e(f.task_id)}"{disabled}>Retry</button> '
        f'<button class="stop" data-task="{_e(f.task_id)}"{disabled}>Stop</button></td></tr>'
    )


def _active_rows(active: list[tuple[str, int]], disabled: str) -> str:
    """Active tasks with their level and a stop button (disabled for viewers)."""
    return (
        "".join(
            f'<tr data-task="{_e(task_id)}"><td>{_e(task_id)}</td><td>level {level}</td>'
            f'<td><button class="stop" data-task="{_e(task_id)}"{disabled}>Stop</button></td></tr>'
            for task_id, level in active
        )
        or '<tr class="none"><td colspan="3">no active tasks</td></tr>'
    )
