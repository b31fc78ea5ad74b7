"""`lava status`: tasks per status and level, waiting data objects by age (and those held for
a job that is not InProgress), expirations and re-sends, failures with their reasons
(``shared.operations.status``: counters and bounded index reads, never a scan)."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import click

from lava.commands import run_with_aws, settings_and_logging
from lava.output import json_option, print_json, show, table

if TYPE_CHECKING:
    from rich.console import RenderableType

    from shared.operations.status import PipelineStatus


@click.command()
@click.option("--recount", is_flag=True, help="Rebuild the counters from the table first (a scan).")
@json_option
def status(recount: bool, as_json: bool) -> None:
    """Show the pipeline's state (from the dispatcher's table; --json: what GET /v1/status
    returns)."""
    from shared.aws import AwsClients
    from shared.operations.status import pipeline_status
    from shared.tasks.store import TaskStore

    settings = settings_and_logging()

    async def work(aws: AwsClients) -> PipelineStatus:
        store = TaskStore(aws, settings)
        if recount:
            await store.counters.recount()
        return await pipeline_status(store, time.time(), settings.dispatch.resend_interval_seconds)

    snap = run_with_aws(settings, work)
    if as_json:
        print_json(snap)
        return
    show(*status_report(settings.namespace, snap))


def status_report(namespace: str, snap: PipelineStatus) -> list[RenderableType | str]:
    """What `lava status` prints: totals, then a table per aspect."""
    clips = sum(snap.clips_by_outcome.values())
    outcomes = ", ".join(f"{k} {v}" for k, v in sorted(snap.clips_by_outcome.items()))
    parts: list[RenderableType | str] = [
        f"namespace {namespace}: {snap.tasks} task(s), {clips} clip(s), "
        f"{snap.data_objects} data object(s)",
        f"clips: {outcomes or '-'}",
        f"expirations {snap.expirations}, re-keys {snap.rekeys}, same-key re-sends {snap.resends}",
        table(
            ("STATUS", "LEVEL", "TASKS"),
            (
                (state, level, count)
                for state, levels in sorted(snap.tasks_by_status.items())
                for level, count in sorted(levels.items())
            ),
            title="tasks by status and level",
            numeric=("LEVEL", "TASKS"),
        ),
        table(
            ("SINCE LAST SEND", "OBJECTS"),
            ((name, count) for name, count in snap.waiting_by_age.items() if count),
            title=f"waiting data objects: {snap.waiting}",
            numeric=("OBJECTS",),
        ),
    ]
    if snap.held:
        parts.append(
            table(
                ("JOB: REASON", "OBJECTS"),
                sorted(snap.held.items()),
                title=f"held, their job takes no input: {sum(snap.held.values())}",
                numeric=("OBJECTS",),
            )
        )
    parts.append(
        table(
            ("TASK", "REASON"),
            (
                (failure.task_id or f"{failure.clip_id} (clip, {failure.stage})", failure.reason)
                for failure in snap.failures
            ),
            title=f"failures: {len(snap.failures)}",
        )
    )
    return parts
