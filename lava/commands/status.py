"""`lava status`: tasks per status and level, waiting data objects by age (and those held for
a job that is not InProgress), expirations and re-sends, failures with their reasons
(``shared.operations.status``: counters and bounded index reads, never a scan)."""

from __future__ import annotations

import time

import click

from lava.commands import run_with_aws, settings_and_logging


@click.command()
@click.option("--recount", is_flag=True, help="Rebuild the counters from the table first (a scan).")
def status(recount: bool) -> None:
    """Show the pipeline's state (from the dispatcher's table)."""
    from shared.aws import AwsClients
    from shared.operations.status import PipelineStatus, pipeline_status
    from shared.tasks.store import TaskStore

    settings = settings_and_logging()

    async def work(aws: AwsClients) -> PipelineStatus:
        store = TaskStore(aws, settings)
        if recount:
            await store.counters.recount()
        return await pipeline_status(store, time.time(), settings.dispatch.resend_interval_seconds)

    snap = run_with_aws(settings, work)
    clips = sum(snap.clips_by_outcome.values())
    click.echo(
        f"namespace {settings.namespace}: {snap.tasks} task(s), "
        f"{clips} clip(s), {snap.data_objects} data object(s)"
    )
    click.echo("\ntasks by status and level:")
    for state, levels in sorted(snap.tasks_by_status.items()):
        for level, count in sorted(levels.items()):
            click.echo(f"  {state:<11} level {level}: {count}")
    click.echo(
        "clips: " + (", ".join(f"{k} {v}" for k, v in sorted(snap.clips_by_outcome.items())) or "-")
    )
    click.echo(f"\nwaiting data objects: {snap.waiting}")
    for name, count in snap.waiting_by_age.items():
        if count:
            click.echo(f"  {name:<10} {count}")
    if snap.held:
        click.echo(f"  held (their job takes no input): {sum(snap.held.values())}")
        for name, count in sorted(snap.held.items()):
            click.echo(f"    {name}: {count}")
    click.echo(
        f"expirations {snap.expirations}, re-keys {snap.rekeys}, same-key re-sends {snap.resends}"
    )
    click.echo(f"\nfailures: {len(snap.failures)}")
    for failure in snap.failures:
        click.echo(f"  {failure.task_id}: {failure.reason}")
