"""The dashboard's actions as HTML forms (they work without JavaScript): stop a task after a
confirmation page, retry a failed task, re-create an ended job.

Each POST carries the session's CSRF token in the ``csrf`` field (``services/control/csrf.py``),
then passes the API's own operator guard (role, mutation budget), runs the same operation as
the API route, leaves the same audit line, and answers 303 to the page it changed. A refusal
(not found, wrong state) is a page saying why, with the operation's status code.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated
from urllib.parse import parse_qs

from fastapi import APIRouter, Path, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from services.control import csrf
from services.control.audit import audited
from services.control.auth import Principal
from services.control.context import Control, Ctl
from services.control.pages.layout import Visitor, e, page, signed_in, task_link, to_login
from services.control.problems import STATUS_OF
from services.control.security import credential, operator
from shared.ids import ID_PATTERN
from shared.operations import jobs, tasks
from shared.operations.errors import OperationError

router = APIRouter(include_in_schema=False)
TaskId = Annotated[str, Path(pattern=ID_PATTERN)]
JobPath = Annotated[str, Path(pattern=r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")]
MAX_REASON = 500


@dataclass(frozen=True)
class FormCall:
    visitor: Visitor  # the operator behind the form (and what a refusal page needs)
    fields: dict[str, str]

    @property
    def who(self) -> Principal:
        return self.visitor.who


async def form_operator(request: Request, ctl: Control) -> FormCall:
    """The operator behind a dashboard form, and its fields: the API's checks, with the CSRF
    proof read from the form (a form cannot send the header)."""
    who, session = await credential(request, ctl)
    parsed = parse_qs((await request.body()).decode(errors="replace"))
    fields = {name: values[0].strip() for name, values in parsed.items() if values}
    expected = session.csrf if session else None
    proof = fields.get(csrf.FORM_FIELD, "")
    csrf.check(request, ctl.settings.control.public_origin, expected, proof)
    return FormCall(Visitor(await operator(who, ctl), session), fields)


async def carry_out(
    ctl: Control,
    call: FormCall,
    action: str,
    target: str,
    work: Callable[[], Awaitable[object]],
    done: str,
    back: str,
    **extra: object,
) -> Response:
    """Run one operation under its audit line: 303 to ``done``, or a page saying why not
    (with the operation's status code) and a link ``back``."""
    try:
        async with audited(call.who, action, target, **extra):
            await work()
    except OperationError as exc:
        code = next((c for kind, c in STATUS_OF.items() if isinstance(exc, kind)), 409)
        body = (
            f'<section class="wide"><h2>{e(action)} {e(target)}: refused</h2>'
            f'<p class="error" id="action-result" data-outcome="refused">{e(exc)}</p>'
            f'<p><a href="{e(back)}">Back</a></p></section>'
        )
        return HTMLResponse(page(ctl, call.visitor, "refused", body), status_code=code)
    return RedirectResponse(done, status_code=303)


@router.get("/dashboard/tasks/{task_id}/stop", response_class=HTMLResponse)
async def confirm_stop(request: Request, ctl: Ctl, task_id: TaskId) -> Response:
    """The confirmation step: what stopping means, a reason field, and the button that stops."""
    visitor = await signed_in(request, ctl)
    if visitor is None:
        return to_login()
    if not visitor.operator:
        return HTMLResponse(page(ctl, visitor, "forbidden", "<p>Operators only.</p>"), 403)
    body = f"""<section class="wide confirm"><h2>Stop task {e(task_id)}?</h2>
<p>Stopping is final: nothing more is sent for {task_link(task_id)} (no re-sends, re-keys or
re-triggers), its waiting data objects stop, and outputs that still arrive are only recorded.
The clip's outcome becomes <b>stopped</b>.</p>
<form id="confirm-stop" method="post" action="/dashboard/tasks/{e(task_id)}/stop">
<input type="hidden" name="csrf" value="{e(visitor.csrf)}">
<label>Reason <input name="reason" maxlength="{MAX_REASON}"
 placeholder="why (kept with the task)"></label>
<button type="submit" class="stop">Stop the task</button>
<a href="/dashboard/tasks/{e(task_id)}">Cancel</a></form></section>"""
    return HTMLResponse(page(ctl, visitor, f"stop {task_id}?", body))


@router.post("/dashboard/tasks/{task_id}/stop")
async def stop(request: Request, ctl: Ctl, task_id: TaskId) -> Response:
    call = await form_operator(request, ctl)
    reason = call.fields.get("reason", "")[:MAX_REASON] or "stopped from the dashboard"
    by = f"{call.who.via}:{call.who.name}"
    page_of = f"/dashboard/tasks/{task_id}"
    return await carry_out(
        ctl,
        call,
        "tasks.stop",
        task_id,
        lambda: tasks.stop_task(ctl.store, task_id, ctl.now(), by=by, reason=reason),
        f"{page_of}?result=stopped",
        page_of,
        reason=reason,
    )


@router.post("/dashboard/tasks/{task_id}/retry")
async def retry(request: Request, ctl: Ctl, task_id: TaskId) -> Response:
    call = await form_operator(request, ctl)
    timeout = ctl.settings.dispatch.level_timeout_seconds
    page_of = f"/dashboard/tasks/{task_id}"
    return await carry_out(
        ctl,
        call,
        "tasks.retry",
        task_id,
        lambda: tasks.retry_task(ctl.store, task_id, ctl.now(), timeout),
        f"{page_of}?result=retried",
        page_of,
    )


@router.post("/dashboard/jobs/{name}/recreate")
async def recreate(request: Request, ctl: Ctl, name: JobPath) -> Response:
    """An ended job (stopped, failed, idle-stopped) again, as its next generation: the same
    configuration, so ``create_job`` makes the new Ground Truth job and keeps the entry."""
    call = await form_operator(request, ctl)

    async def again() -> None:
        job = await jobs.describe_job(ctl.jobs, name)
        await jobs.create_job(ctl.jobs, name, job.job_type, job.adjusts, job.backend)

    return await carry_out(
        ctl, call, "jobs.recreate", name, again, "/dashboard?result=recreated#jobs", "/dashboard"
    )
