"""The overview's panels, each answering one question about what is stuck and why.

Each is a function of data already read (the status, the jobs, one page of tasks) to HTML, so
the page and the script's refresh show the same thing (the script swaps these sections in).
"""

from __future__ import annotations

from collections import defaultdict

from services.control.pages.layout import (
    Visitor,
    clip_link,
    e,
    post_button,
    stop_link,
    table,
    task_link,
)
from services.control.pages.tasks import TASK_HEAD, task_row
from shared.labeling.streaming_job import ENDED, StreamingJob
from shared.operations.status import PipelineStatus
from shared.tasks.model import AnnotationTask, ClipStatus


def section(ident: str, title: str, content: str, wide: bool = False) -> str:
    css = ' class="wide"' if wide else ""
    return f'<section id="panel-{ident}" data-live{css}><h2>{e(title)}</h2>{content}</section>'


def totals(status: PipelineStatus) -> str:
    """Running totals since the namespace began, apart from what is where now: 'ingested'
    counts every task ever created, so it never goes down."""
    ingested = status.funnel[0].tasks if status.funnel else status.tasks
    rows = [
        ("tasks created", ingested, "data-stage", "ingested"),
        ("sends", status.sends, "data-policy", "sends"),
        ("same-key re-sends", status.resends, "data-policy", "same-key re-sends"),
        ("re-keys", status.rekeys, "data-policy", "re-keys"),
        ("expirations", status.expirations, "data-policy", "expirations"),
        ("outputs", status.outputs, "data-policy", "outputs"),
    ]
    body = "".join(
        f'<tr><th>{e(name)}</th><td class="num" {attr}="{e(key)}">{value}</td></tr>'
        for name, value, attr, key in rows
    )
    return section(
        "totals",
        "Running totals",
        f'<p class="total">tasks <b id="tasks-total">{status.tasks}</b> (running total)</p>'
        f'<table id="policy">{body}</table>'
        '<p class="hint">Totals only grow; the panels beside them count what is there now.</p>',
    )


def now_by_stage(status: PipelineStatus) -> str:
    rows = "".join(
        f'<tr><th>{e(s.stage)}</th><td class="num" data-stage="{e(s.stage)}">{s.tasks}</td></tr>'
        for s in status.funnel[1:]
    )
    return section(
        "stages",
        "Tasks by stage now",
        f'<table id="funnel">{rows}</table>'
        '<div class="chart short"><canvas id="funnel-chart"></canvas></div>',
    )


def waiting(status: PipelineStatus, resend_days: float) -> str:
    rows = "".join(
        f'<tr><th>{e(band)}</th><td class="num" data-age="{e(band)}">{n}</td></tr>'
        for band, n in status.waiting_by_age.items()
    )
    return section(
        "waiting",
        "Waiting data objects by time since last send",
        f'<table id="waiting">{rows}</table>'
        '<div class="chart short"><canvas id="waiting-chart"></canvas></div>'
        f'<p class="hint">Re-sent with the same key every {resend_days:g} days; re-keyed only '
        "after an expiry.</p>",
    )


def held(status: PipelineStatus) -> str:
    """Objects the dispatcher holds because their job takes no input, with the job's reason."""
    rows = []
    for name, count in sorted(status.held.items()):
        job, _, reason = name.partition(": ")
        rows.append(
            f'<tr data-held="{e(job)}"><td>{e(job)}</td><td>{e(reason)}</td>'
            f'<td class="num">{count}</td></tr>'
        )
    return section(
        "held",
        "Held: waiting for a job that takes no input",
        table(("job", "why held", "objects"), rows, "nothing held", "held")
        + '<p class="hint">Held objects go out once their job is in progress again '
        "(re-create an ended job below).</p>",
    )


def jobs(visitor: Visitor, found: list[StreamingJob], status: PipelineStatus) -> str:
    """Each job's state, its outputs in the last hour and the last day, and re-create for an
    ended one (what makes held objects move again)."""
    last = status.hours[-1].outputs_per_job if status.hours else {}
    day: dict[str, int] = defaultdict(int)
    for hour in status.hours:
        for name, n in hour.outputs_per_job.items():
            day[name] += n
    rows = []
    for job in sorted(found, key=lambda j: j.name):
        ended = job.status in ENDED
        action = (
            post_button(visitor, f"/dashboard/jobs/{job.name}/recreate", "Re-create", "recreate")
            if ended
            else ""
        )
        state = job.status + (f": {job.status_reason}" if job.status_reason else "")
        rows.append(
            f'<tr data-job="{e(job.name)}"{" class=ended" if ended else ""}>'
            f"<td>{e(job.name)}</td><td>{e(job.job_type)}</td>"
            f'<td data-job-status="{e(job.status)}">{e(state)}</td>'
            f'<td class="num" data-generation>{job.generation}</td>'
            f'<td class="num">{last.get(job.name, 0)}</td><td class="num">{day[job.name]}</td>'
            f"<td>{action}</td></tr>"
        )
    head = ("job", "type", "state", "generation", "outputs (last hour)", "outputs (24 h)", "")
    chart = '<div class="chart tall"><canvas id="jobs-chart"></canvas></div>'
    return section("jobs", "Jobs", table(head, rows, "no jobs", "jobs") + chart, wide=True)


def failures(visitor: Visitor, status: PipelineStatus, failed: list[AnnotationTask]) -> str:
    """Failures grouped by the stage they happened at: ingest (a clip, no task to retry:
    submit it again) and each task's stage, with the reason and what can be done."""
    by_stage: dict[str, list[str]] = defaultdict(list)
    for f in status.failures:
        if f.task_id is None:
            by_stage[f.stage].append(
                f'<tr data-clip="{e(f.clip_id)}"><td>-</td><td>{clip_link(f.clip_id)}</td>'
                f"<td>{e(f.reason)}</td><td>submit the clip again</td></tr>"
            )
    for task in failed:
        # refused at creation (no levels) is the dispatcher's; otherwise the level it was at
        stage = f"level {task.level}" if task.levels else "dispatch"
        retry = post_button(visitor, f"/dashboard/tasks/{task.task_id}/retry", "Retry", "retry")
        actions = " ".join(
            a for a in (retry if task.levels else "", stop_link(visitor, task.task_id)) if a
        )
        by_stage[stage].append(
            f'<tr data-task="{e(task.task_id)}"><td>{task_link(task.task_id)}</td>'
            f"<td>{clip_link(task.clip_id)}</td><td>{e(task.failure_reason or '')}</td>"
            f"<td>{actions}</td></tr>"
        )
    if not by_stage:
        return section(
            "failures", "Failures", '<p class="none" id="failures">no failures</p>', True
        )
    groups = "".join(
        f'<h3 data-failure-stage="{e(stage)}">{e(stage)} ({len(rows)})</h3>'
        + table(("task", "clip", "reason", ""), rows, "")
        for stage, rows in sorted(by_stage.items())
    )
    return section("failures", "Failures by stage", f'<div id="failures">{groups}</div>', True)


def active(visitor: Visitor, found: list[AnnotationTask], now: float, more: bool) -> str:
    rows = [task_row(visitor, t, now) for t in found]
    link = '<p><a href="/dashboard/tasks?status=active">All active tasks</a></p>' if more else ""
    return section(
        "active",
        "Active tasks (most recently changed)",
        table(TASK_HEAD, rows, "no active tasks", "active") + link,
        wide=True,
    )


def clip_outcomes(status: PipelineStatus) -> str:
    links = "".join(
        f'<li><a href="/dashboard/clips?outcome={s.value}">{s.value}</a> '
        f'<b data-outcome="{s.value}">{status.clips_by_outcome.get(s.value, 0)}</b></li>'
        for s in ClipStatus
        if s is not ClipStatus.INGESTING
    )
    return section(
        "clips", "Clips by outcome (now)", f'<ul class="outcomes" id="clip-outcomes">{links}</ul>'
    )


def hours_chart() -> str:
    return section(
        "hours",
        "Sends, re-keys and expirations per hour",
        '<div class="chart tall"><canvas id="hours-chart"></canvas></div>',
        wide=True,
    )
