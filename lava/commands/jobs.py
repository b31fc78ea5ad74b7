"""`lava jobs`: the streaming labeling jobs."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import TypeVar

import click

from lava.commands import run_with_aws, settings_and_logging
from shared.groundtruth.job_types import JOB_TYPES

T = TypeVar("T")


def _run(work: Callable[..., Awaitable[T]]) -> T:
    """Run ``work(manager)`` with the environment's settings and clients."""
    from emulators.settings import LocalSettings
    from shared.labeling.backends import BackendError
    from shared.labeling.jobs import JobConfigError, JobManager
    from shared.workflows import WorkflowError

    # With the emulator's settings too: they decide an emulated job's first status.
    settings = settings_and_logging(LocalSettings.load())
    try:
        return run_with_aws(settings, lambda aws: work(JobManager(aws, settings)))
    except (JobConfigError, BackendError, WorkflowError, ValueError) as exc:
        raise click.ClickException(str(exc)) from None


backend_option = click.option(
    "--backend",
    type=click.Choice(["emulator", "sagemaker", "labelstudio"]),
    default="emulator",
    show_default=True,
    help="Where the job runs: the local emulator, SageMaker Ground Truth or Label Studio.",
)


@click.group()
def jobs() -> None:
    """Streaming labeling jobs (one per modality and level, serving every clip)."""


@jobs.command("create")
@click.argument("name")
@click.option("--type", "type_name", required=True, type=click.Choice(sorted(JOB_TYPES)))
@click.option("--adjusts", default=None, help="The job whose labels this one adjusts.")
@backend_option
def create(name: str, type_name: str, adjusts: str | None, backend: str) -> None:
    """Create job NAME: topics, label category file, the job, its registry entry."""
    result = _run(lambda m: m.create(name, type_name, adjusts=adjusts, backend=backend))
    verb = "created" if result.created else "exists (same configuration)"
    if result.created and result.job.generation > 1:
        verb = f"created again (generation {result.job.generation})"
    click.echo(f"{result.job.name}: {verb}  {result.job.arn}  {result.job.status}")
    for warning in result.warnings:
        click.echo(f"warning: {warning}", err=True)


@jobs.command("create-defaults")
@backend_option
def create_defaults(backend: str) -> None:
    """Create every job the workflows file names (idempotent)."""
    from shared.settings import load_settings
    from shared.workflows import load_catalog

    catalog = load_catalog(load_settings().labeling.workflows_file)
    results = _run(lambda m: m.create_from_catalog(catalog, backend=backend))
    for result in results:
        verb = "created" if result.created else "exists"
        click.echo(f"{result.job.name}: {verb}")


@jobs.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print the registry entries as JSON.")
@click.option(
    "--refresh",
    is_flag=True,
    help="Ask each backend for the job's status first (a real streaming job ends by itself "
    "after 10 days without input).",
)
def list_jobs(as_json: bool, refresh: bool) -> None:
    """List the registered jobs with their status and emulator counters."""
    found = _run(lambda m: m.refresh() if refresh else m.registry.list())
    if as_json:
        click.echo(json.dumps([j.model_dump(mode="json") for j in found], indent=2))
        return
    if not found:
        click.echo("no jobs registered (lava jobs create-defaults)")
        return
    click.echo(f"{'NAME':<22} {'TYPE':<14} {'ADJUSTS':<18} {'BACKEND':<10} {'STATUS':<11} COUNTERS")
    for job in found:
        counters = " ".join(f"{k}={v}" for k, v in sorted(job.counters.items())) or "-"
        generation = f" (generation {job.generation})" if job.generation > 1 else ""
        reason = f" - {job.status_reason}" if job.status_reason else ""
        click.echo(
            f"{job.name:<22} {job.job_type:<14} {job.adjusts or '-':<18} {job.backend:<10} "
            f"{job.status:<11} {counters}{generation}{reason}"
        )


@jobs.command("stop")
@click.argument("name")
def stop(name: str) -> None:
    """Stop job NAME (it takes no new input)."""
    job = _run(lambda m: m.stop(name))
    click.echo(f"{job.name}: stopped")
