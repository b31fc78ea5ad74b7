"""The operator dashboard: one server-rendered page, refreshed live from the API.

The page is complete without JavaScript (every number is rendered on the server from the same
``pipeline_status`` the API returns); ``static/dashboard.js`` then refreshes it every few
seconds from ``/v1/status`` and ``/v1/tasks`` and draws the charts with the vendored Chart.js.
Operators get retry and stop buttons, which call the API like any client.
"""

from __future__ import annotations

import html
import json
from typing import Annotated
from urllib.parse import parse_qs

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from services.control.auth import Principal, Role
from services.control.context import Control, Ctl
from services.control.security import COOKIE, caller
from shared.operations.status import Failure, PipelineStatus, pipeline_status

router = APIRouter(include_in_schema=False)
REFRESH_SECONDS = 5
ACTIVE_SHOWN = 20


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


async def _principal(request: Request, ctl: Control) -> Principal | None:
    try:
        return await caller(request, ctl)
    except HTTPException:
        return None


@router.get("/")
async def root() -> RedirectResponse:
    return RedirectResponse("/dashboard", status_code=303)


@router.get("/dashboard", response_class=HTMLResponse)
async def dashboard(request: Request, ctl: Ctl) -> Response:
    who = await _principal(request, ctl)
    if who is None:
        return RedirectResponse("/dashboard/login", status_code=303)
    status = await pipeline_status(
        ctl.store, ctl.now(), ctl.settings.dispatch.resend_interval_seconds
    )
    active, _ = await ctl.store.tasks_page("active", ACTIVE_SHOWN)
    return HTMLResponse(_page(ctl, who, status, [(t.task_id, t.level) for t in active]))


@router.get("/dashboard/login", response_class=HTMLResponse)
async def login_form() -> HTMLResponse:
    return HTMLResponse(_login_page(""))


@router.post("/dashboard/login")
async def login(request: Request, ctl: Ctl) -> Response:
    form = parse_qs((await request.body()).decode(errors="replace"))
    token = (form.get("token") or [""])[0].strip()
    who = await ctl.auth.identify(token) if token else None
    if who is None:
        return HTMLResponse(_login_page("That token was not accepted."), status_code=401)
    response = RedirectResponse("/dashboard", status_code=303)
    response.set_cookie(
        COOKIE,
        token,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        max_age=12 * 3600,
    )
    return response


@router.post("/dashboard/logout")
async def logout(who: Annotated[Principal, Depends(caller)]) -> Response:
    response = RedirectResponse("/dashboard/login", status_code=303)
    response.delete_cookie(COOKIE)
    return response


def _login_page(message: str) -> str:
    note = f'<p class="error">{_e(message)}</p>' if message else ""
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>LAVA control - sign in</title>
<link rel="stylesheet" href="/static/dashboard.css"></head>
<body><main class="login"><h1>LAVA labeling pipeline</h1>{note}
<form method="post" action="/dashboard/login">
<label>API token <input type="password" name="token" autocomplete="off" required></label>
<button type="submit">Sign in</button></form>
<p class="hint">Behind an OIDC proxy the page opens directly with your identity.</p>
</main></body></html>"""


def _rows(pairs: list[tuple[str, object]], attribute: str) -> str:
    return "".join(
        f'<tr><th>{_e(name)}</th><td {attribute}="{_e(name)}">{_e(value)}</td></tr>'
        for name, value in pairs
    )


def _page(
    ctl: Control, who: Principal, status: PipelineStatus, active: list[tuple[str, int]]
) -> str:
    operator = who.may(Role.OPERATOR)
    disabled = "" if operator else " disabled"
    funnel = _rows([(s.stage, s.tasks) for s in status.funnel], "data-stage")
    waiting = _rows(list(status.waiting_by_age.items()), "data-age")
    policy = _rows(
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
    failures = _failure_rows(status, disabled)
    running = _active_rows(active, disabled)
    initial = json.dumps(status.model_dump(mode="json")).replace("</", "<\\/")
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>LAVA control - {_e(ctl.settings.namespace)}</title>
<link rel="stylesheet" href="/static/dashboard.css">
<script src="/static/chart.umd.min.js" defer></script>
<script src="/static/dashboard.js" defer></script>
</head>
<body data-refresh="{REFRESH_SECONDS}" data-operator="{str(operator).lower()}">
<header><h1>LAVA labeling pipeline</h1>
<span>namespace <b>{_e(ctl.settings.namespace)}</b></span>
<span id="who">{_e(who.name)} ({_e(who.role.value)})</span>
<span id="updated">rendered by the server</span></header>
<main>
<section><h2>Tasks by stage</h2><p class="total">tasks <b id="tasks-total">{status.tasks}</b></p>
<table id="funnel">{funnel}</table>
<div class="chart" style="height:180px"><canvas id="funnel-chart"></canvas></div></section>
<section><h2>Waiting data objects by time since last send</h2>
<table id="waiting">{waiting}</table>
<div class="chart" style="height:180px"><canvas id="waiting-chart"></canvas></div>
<p class="hint">Re-sent with the same key every
{ctl.settings.dispatch.resend_interval_seconds / 86400:g} days; re-keyed only after an
expiry.</p></section>
<section><h2>Dedup-key policy</h2><table id="policy">{policy}</table></section>
<section class="wide"><h2>Sends, re-keys and expirations per hour</h2>
<div class="chart" style="height:200px"><canvas id="hours-chart"></canvas></div></section>
<section class="wide"><h2>Throughput per job (outputs per hour)</h2>
<div class="chart" style="height:200px"><canvas id="jobs-chart"></canvas></div></section>
<section class="wide"><h2>Failures</h2>
<table id="failures"><tr><th>task</th><th>reason</th><th></th></tr>{failures}</table></section>
<section class="wide"><h2>Active tasks</h2>
<table id="active"><tr><th>task</th><th>stage</th><th></th></tr>{running}</table>
<p id="action-result" role="status"></p></section>
</main>
<script id="initial-status" type="application/json">{initial}</script>
</body></html>"""


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
