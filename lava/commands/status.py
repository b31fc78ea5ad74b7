"""`lava status`: tasks per status and level, waiting data objects by age (and those held for
a job that is not InProgress), expirations and re-sends, failures with their reasons."""

from __future__ import annotations

import click

from lava.commands import run_with_aws, settings_and_logging


@click.command()
def status() -> None:
    """Show the pipeline's state (from the dispatcher's table)."""
    from lava.status import AGE_BUCKETS, snapshot

    settings = settings_and_logging()
    snap = run_with_aws(settings, lambda aws: snapshot(aws, settings))
    click.echo(
        f"namespace {settings.namespace}: {len(snap.tasks)} task(s), "
        f"{len(snap.clips)} clip(s), {snap.objects} data object(s)"
    )
    click.echo("\ntasks by status and level:")
    for (state, level), count in sorted(snap.tasks_by_status_level().items()):
        click.echo(f"  {state:<11} level {level}: {count}")
    clip_states: dict[str, int] = {}
    for clip in snap.clips.values():
        key = str(clip.get("clip_status"))
        clip_states[key] = clip_states.get(key, 0) + 1
    click.echo("clips: " + (", ".join(f"{k} {v}" for k, v in sorted(clip_states.items())) or "-"))
    click.echo(f"\nwaiting data objects: {snap.waiting}")
    for _, name in (*AGE_BUCKETS, (0, "> 1 day")):
        if snap.waiting_by_age.get(name):
            click.echo(f"  {name:<10} {snap.waiting_by_age[name]}")
    if snap.held:
        click.echo(f"  held (their job takes no input): {sum(snap.held.values())}")
        for (job, reason), count in sorted(snap.held.items()):
            click.echo(f"    {job}: {count} - {reason}")
    click.echo(
        f"expirations {snap.expirations}, re-keys {snap.rekeys}, same-key re-sends {snap.resends}"
    )
    failures = snap.failures()
    click.echo(f"\nfailures: {len(failures)}")
    for what, reason in failures:
        click.echo(f"  {what}: {reason}")
