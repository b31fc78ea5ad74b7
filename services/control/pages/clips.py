"""Clip pages: clips by outcome (a page at a time) and one clip's timeline of stages."""

from __future__ import annotations

import asyncio
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import HTMLResponse, Response

from services.control.context import Ctl
from services.control.pages import queries
from services.control.pages.layout import (
    clip_link,
    e,
    page,
    signed_in,
    table,
    task_link,
    to_login,
    when,
)
from shared.ids import ID_PATTERN
from shared.tasks.clip_policy import ClipStage, clip_stages
from shared.tasks.model import AnnotationTask, ClipRecord, ClipStatus

router = APIRouter(include_in_schema=False)
PAGE_SIZE = 25


def outcome_text(record: ClipRecord) -> str:
    """The outcome in one line: where it failed and why, who stopped it, or its labels."""
    outcome = record.outcome
    if outcome is None:
        return ""
    if outcome.status is ClipStatus.FAILED:
        return f"failed at {outcome.stage}: {outcome.reason}"
    if outcome.status is ClipStatus.STOPPED:
        return f"{outcome.task_id} stopped by {outcome.by}" + (
            f": {outcome.reason}" if outcome.reason else ""
        )
    return f"labels {outcome.labels_uri}"


def outcome_tabs(current: ClipStatus, counts: dict[str, int] | None = None) -> str:
    links = []
    for status in queries.LISTED_CLIP_STATUSES:
        marked = ' aria-current="page"' if status is current else ""
        count = f" ({counts.get(status.value, 0)})" if counts is not None else ""
        links.append(
            f'<a{marked} href="/dashboard/clips?outcome={status.value}">{status.value}{count}</a>'
        )
    return f'<nav class="tabs" id="outcomes">{" ".join(links)}</nav>'


@router.get("/dashboard/clips", response_class=HTMLResponse)
async def clip_list(
    request: Request,
    ctl: Ctl,
    outcome: ClipStatus = ClipStatus.FAILED,
    cursor: Annotated[str | None, Query(max_length=2048)] = None,
) -> Response:
    visitor = await signed_in(request, ctl)
    if visitor is None:
        return to_login()
    found, after = await queries.clips_page(ctl.aws, ctl.store.table, outcome, PAGE_SIZE, cursor)
    rows = [
        f'<tr data-clip="{e(c.clip_id)}"><td>{clip_link(c.clip_id)}</td>'
        f"<td>{e(c.status.value)}</td><td>{when(c.updated_at)}</td>"
        f"<td>{' '.join(task_link(t) for t in sorted(c.tasks))}</td>"
        f"<td>{e(outcome_text(c))}</td></tr>"
        for c in found
    ]
    more = ""
    if after:
        query = urlencode({"outcome": outcome.value, "cursor": after})
        more = (
            f'<p><a id="next-page" rel="next" href="/dashboard/clips?{e(query)}">Next page</a></p>'
        )
    body = f"""<section class="wide"><h2>Clips: {e(outcome.value)}</h2>
{outcome_tabs(outcome)}
{table(("clip", "status", "changed", "tasks", "outcome"), rows, "no clips", "clips")}{more}
<p class="hint">A clip still ingesting has no outcome yet: find it by its id.</p></section>"""
    return HTMLResponse(page(ctl, visitor, "clips", body))


def timeline(
    record: ClipRecord, stages: list[ClipStage], tasks: dict[str, AnnotationTask | None]
) -> str:
    """Every stage in order with its state, and the dated steps of each task beneath it."""
    items = [f'<li data-state="done"><b>accepted</b> {when(record.accepted_at)}</li>']
    for stage in stages:
        where = f" {task_link(stage.task_id)}" if stage.task_id else ""
        reason = f' <span class="reason">{e(stage.reason)}</span>' if stage.reason else ""
        steps = ""
        task = tasks.get(stage.task_id or "")
        if task is not None and stage.level in (None, 1):
            # a task's dated steps once, under its first stage
            steps = "".join(
                f"<li>{when(h.at)} {e(h.event)} {e(h.detail)}</li>"
                for h in sorted(task.history, key=lambda h: h.at)
            )
            steps = f'<ul class="steps">{steps}</ul>' if steps else ""
        items.append(
            f'<li data-stage="{e(stage.stage)}" data-state="{e(stage.state.value)}">'
            f"<b>{e(stage.stage)}</b>{where}: {e(stage.state.value)}{reason}{steps}</li>"
        )
    return f'<ol class="timeline" id="timeline">{"".join(items)}</ol>'


@router.get("/dashboard/clips/{clip_id}", response_class=HTMLResponse)
async def clip_detail(
    request: Request, ctl: Ctl, clip_id: Annotated[str, Path(pattern=ID_PATTERN)]
) -> Response:
    visitor = await signed_in(request, ctl)
    if visitor is None:
        return to_login()
    store = ctl.store
    record = await store.clip(clip_id)
    if record is None:
        return HTMLResponse(page(ctl, visitor, "not found", f"<p>no clip {e(clip_id)}</p>"), 404)
    # the record and its tasks, read once (shared.operations.clips reads the same)
    ids = sorted(record.tasks)
    found = await asyncio.gather(*(store.get_task(t) for t in ids))
    tasks = dict(zip(ids, found, strict=True))
    body = f"""<section class="wide" id="clip" data-clip="{e(clip_id)}">
<h2>Clip {e(clip_id)}</h2>
<dl class="facts">
<dt>status</dt><dd id="clip-status">{e(record.status.value)}</dd>
<dt>outcome</dt><dd>{e(outcome_text(record) or "-")}</dd>
<dt>accepted</dt><dd>{when(record.accepted_at)}</dd>
<dt>changed</dt><dd>{when(record.updated_at)}</dd>
</dl>
<h3>Timeline</h3>
{timeline(record, clip_stages(record, tasks), tasks)}</section>"""
    return HTMLResponse(page(ctl, visitor, f"clip {clip_id}", body))
