"""Task pages: the list (status, workflow and id filters, a page at a time) and one task's
detail (age, time in its stage, levels, data objects with their keys, history)."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import HTMLResponse, Response

from services.control.context import Ctl
from services.control.pages import queries
from services.control.pages.layout import (
    Visitor,
    clip_link,
    e,
    notice,
    page,
    post_button,
    signed_in,
    span,
    stop_link,
    table,
    task_link,
    to_login,
    when,
)
from shared.ids import ID_PATTERN
from shared.operations import tasks
from shared.operations.errors import NotFound
from shared.tasks.model import AnnotationTask, DataObject, TaskStatus
from shared.workflows import load_catalog

router = APIRouter(include_in_schema=False)
PAGE_SIZE = 25
Fragment = Annotated[str, Query(max_length=128, pattern=r"^[A-Za-z0-9._-]*$")]


def stage_of(task: AnnotationTask) -> str:
    if task.status is TaskStatus.ACTIVE:
        return f"level {task.level} of {len(task.levels)}"
    if task.status in (TaskStatus.FINALIZING, TaskStatus.FINALIZED):
        return "post-processing"
    if task.status in (TaskStatus.FAILED, TaskStatus.STOPPED) and task.levels:
        return f"{task.status.value} at level {task.level}"
    return task.status.value


def in_stage_since(task: AnnotationTask) -> float:
    """When the task entered the stage it is in: its level's start while labeling, its last
    change otherwise (post-processing, an outcome)."""
    return task.level_started_at if task.status is TaskStatus.ACTIVE else task.updated_at


def actions(visitor: Visitor, task: AnnotationTask) -> str:
    found = []
    if task.status is TaskStatus.FAILED and task.levels:
        found.append(
            post_button(visitor, f"/dashboard/tasks/{task.task_id}/retry", "Retry", "retry")
        )
    if task.status in tasks.STOPPABLE:
        found.append(stop_link(visitor, task.task_id))
    return " ".join(found)


def task_row(visitor: Visitor, task: AnnotationTask, now: float) -> str:
    reason = task.failure_reason or ""
    return (
        f'<tr data-task="{e(task.task_id)}"><td>{task_link(task.task_id)}</td>'
        f"<td>{clip_link(task.clip_id)}</td><td>{e(task.workflow)}</td>"
        f"<td>{e(stage_of(task))}</td>"
        f'<td data-age="{now - task.created_at:.0f}">{span(now - task.created_at)}</td>'
        f"<td>{span(now - in_stage_since(task))}</td>"
        f"<td>{e(reason)}</td><td>{actions(visitor, task)}</td></tr>"
    )


TASK_HEAD = ("task", "clip", "workflow", "stage", "age", "in stage", "reason", "")


def _options(selected: str, choices: list[str], blank: str = "") -> str:
    options = [f'<option value="">{e(blank)}</option>'] if blank else []
    options += [
        f'<option value="{e(c)}"{" selected" if c == selected else ""}>{e(c)}</option>'
        for c in choices
    ]
    return "".join(options)


def filter_form(filters: queries.Filters, workflows_known: list[str]) -> str:
    statuses = _options(filters.status.value, [s.value for s in TaskStatus])
    workflows = _options(filters.workflow, workflows_known, "any workflow")
    return f"""<form id="task-filters" class="filters" method="get" action="/dashboard/tasks">
<label>status <select name="status">{statuses}</select></label>
<label>workflow <select name="workflow">{workflows}</select></label>
<label>id contains <input name="q" value="{e(filters.contains)}" maxlength="128"></label>
<button type="submit">Filter</button></form>"""


@router.get("/dashboard/tasks", response_class=HTMLResponse)
async def task_list(
    request: Request,
    ctl: Ctl,
    status: TaskStatus = TaskStatus.ACTIVE,
    workflow: Fragment = "",
    q: Fragment = "",
    cursor: Annotated[str | None, Query(max_length=2048)] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = PAGE_SIZE,
) -> Response:
    visitor = await signed_in(request, ctl)
    if visitor is None:
        return to_login()
    filters = queries.Filters(status, workflow, q)
    found, after = await queries.tasks_page(ctl.aws, ctl.store.table, filters, limit, cursor)
    now = ctl.now()
    rows = [task_row(visitor, t, now) for t in found]
    more = ""
    if after:
        query = urlencode(
            {"status": status.value, "workflow": workflow, "q": q, "limit": limit, "cursor": after}
        )
        more = (
            f'<p><a id="next-page" rel="next" href="/dashboard/tasks?{e(query)}">Next page</a></p>'
        )
    first = '<p><a href="?">First page</a></p>' if cursor else ""
    body = f"""<section class="wide"><h2>Tasks: {e(status.value)}</h2>
{filter_form(filters, sorted(load_catalog(ctl.settings.labeling.workflows_file).workflows))}
{table(TASK_HEAD, rows, "no tasks match", "tasks")}{more}{first}
<p class="hint">Newest change first. Age: since the task was created; in stage: since it
entered its current level (or outcome).</p></section>"""
    return HTMLResponse(page(ctl, visitor, "tasks", body))


OBJECT_HEAD = ("level", "job", "status", "key", "sends", "expired", "since last send", "held")


def object_row(obj: DataObject, now: float) -> str:
    held = f"held: {obj.held} (since {when(obj.held_since)})" if obj.held else ""
    waited = span(now - obj.last_sent_at) if obj.last_sent_at else "-"
    return (
        f"<tr><td>{obj.level}</td><td>{e(obj.job)}</td><td>{e(obj.status.value)}</td>"
        f"<td><code>{e(obj.key)}</code></td><td>{obj.send_count}</td><td>{obj.expirations}</td>"
        f"<td>{waited}</td><td>{held}</td></tr>"
    )


@router.get("/dashboard/tasks/{task_id}", response_class=HTMLResponse)
async def task_detail(
    request: Request,
    ctl: Ctl,
    task_id: Annotated[str, Path(pattern=ID_PATTERN)],
    result: str | None = None,
) -> Response:
    visitor = await signed_in(request, ctl)
    if visitor is None:
        return to_login()
    try:
        detail = await tasks.show_task(ctl.store, task_id)
    except NotFound as missing:
        return HTMLResponse(page(ctl, visitor, "not found", f"<p>{e(missing)}</p>"), 404)
    task, now = detail.task, ctl.now()
    levels = "".join(
        f"<li{' class=current' if i + 1 == task.level else ''}>"
        f"level {i + 1}: {e(', '.join(jobs))}</li>"
        for i, jobs in enumerate(task.levels)
    )
    history = "".join(
        f"<tr><td>{when(h.at)}</td><td>{e(h.event)}</td><td>{e(h.detail)}</td></tr>"
        for h in sorted(task.history, key=lambda h: h.at)
    )
    objects = [object_row(o, now) for o in detail.objects]
    body = f"""<section class="wide" id="task" data-task="{e(task.task_id)}">
<h2>Task {e(task.task_id)}</h2>{notice(result)}
<dl class="facts">
<dt>status</dt><dd id="task-status">{e(task.status.value)}</dd>
<dt>stage</dt><dd>{e(stage_of(task))}</dd>
<dt>clip</dt><dd>{clip_link(task.clip_id)}</dd>
<dt>workflow</dt><dd>{e(task.workflow)}</dd>
<dt>created</dt><dd>{when(task.created_at)} ({span(now - task.created_at)} ago)</dd>
<dt>in stage for</dt><dd id="in-stage">{span(now - in_stage_since(task))}</dd>
<dt>level re-triggers</dt><dd>{task.level_retriggers}</dd>
<dt>reason</dt><dd>{e(task.failure_reason or "-")}</dd>
<dt>stopped by</dt><dd>{e(task.stopped_by or "-")}</dd>
</dl>
<ol class="levels">{levels}</ol>
<p class="actions">{actions(visitor, task)}</p></section>
<section class="wide"><h2>Data objects</h2>
{table(OBJECT_HEAD, objects, "none sent yet", "objects")}
</section>
<section class="wide"><h2>History</h2>
{table(("at", "event", "detail"), [history] if history else [], "no history", "history")}
</section>"""
    return HTMLResponse(page(ctl, visitor, f"task {task_id}", body))
