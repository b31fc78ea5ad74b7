"""`lava jobs`: the streaming labeling jobs."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

import click

from lava.commands import run_with_aws, settings_and_logging
from lava.output import json_option, print_json, show, table
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
@click.option(
    "--type",
    "type_name",
    required=True,
    type=click.Choice(sorted(JOB_TYPES)),
    help="The job type: which modality it labels and its Ground Truth task type.",
)
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
@json_option
@click.option(
    "--refresh",
    is_flag=True,
    help="Ask each backend for the job's status first (a real streaming job ends by itself "
    "after 10 days without input).",
)
@click.option("--archived", is_flag=True, help="Show archived jobs too.")
def list_jobs(as_json: bool, refresh: bool, archived: bool) -> None:
    """List the registered jobs with their status and emulator counters (--json: the registry
    entries)."""
    found = _run(lambda m: m.refresh() if refresh else m.registry.list())
    found = [job for job in found if archived or job.archived_at is None]
    if as_json:
        print_json(found)
        return
    if not found:
        show("no jobs registered (lava jobs create-defaults)")
        return
    show(
        table(
            ("NAME", "TYPE", "ADJUSTS", "BACKEND", "STATUS", "GEN", "COUNTERS", "REASON"),
            (
                (
                    job.name,
                    job.job_type,
                    job.adjusts,
                    job.backend,
                    job.status,
                    job.generation,
                    " ".join(f"{k}={v}" for k, v in sorted(job.counters.items())),
                    job.status_reason,
                )
                for job in found
            ),
            numeric=("GEN",),
        )
    )


@jobs.command("stop")
@click.argument("name")
def stop(name: str) -> None:
    """Stop job NAME (it takes no new input)."""
    job = _run(lambda m: m.stop(name))
    click.echo(f"{job.name}: stopped")


@jobs.command("archive")
@click.argument("name")
def archive(name: str) -> None:
    """Stop job NAME unless it has ended, and archive it: `lava jobs list` and GET /v1/jobs
    no longer show it; tasks that name it still find it (creating it again un-archives it as
    a new generation)."""
    job = _run(lambda m: m.archive(name))
    click.echo(f"{job.name}: archived (status {job.status})")
