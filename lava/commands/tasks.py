"""`lava tasks`: annotation tasks (one clip through one workflow)."""

from __future__ import annotations

import getpass
import json
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from lava.commands import run_with_aws, settings_and_logging
from shared.tasks.model import TaskStatus

if TYPE_CHECKING:
    from shared.aws import AwsClients
    from shared.settings import Settings
    from shared.tasks.store import TaskStore

T = TypeVar("T")
STATUSES = [status.value for status in TaskStatus]


def _run(work: Callable[[Settings, AwsClients, TaskStore], Awaitable[T]]) -> T:
    from shared.tasks.store import TaskStore

    settings = settings_and_logging()
    return run_with_aws(settings, lambda aws: work(settings, aws, TaskStore(aws, settings)))


def when(stamp: float | None) -> str:
    if stamp is None:
        return "-"
    return datetime.fromtimestamp(stamp, UTC).strftime("%Y-%m-%d %H:%M:%S")


@click.group()
def tasks() -> None:
    """Annotation tasks: list, inspect, retry, create from the original's spec form."""


@tasks.command("list")
@click.option("--status", type=click.Choice(STATUSES), multiple=True, help="Repeatable.")
def list_tasks(status: tuple[str, ...]) -> None:
    """List tasks, newest first (every status unless --status is given)."""

    async def work(settings: Settings, aws: AwsClients, store: TaskStore) -> list[Any]:
        found = []
        for name in status or STATUSES:
            found += await store.tasks_by_status(name)
        return sorted(found, key=lambda t: t.updated_at, reverse=True)

    found = _run(work)
    if not found:
        click.echo("no tasks")
        return
    click.echo(f"{'TASK':<40} {'STATUS':<11} {'LEVEL':<6} {'UPDATED':<20} REASON")
    for task in found:
        level = f"{task.level}/{len(task.levels)}" if task.levels else "-"
        click.echo(
            f"{task.task_id:<40} {task.status.value:<11} {level:<6} {when(task.updated_at):<20} "
            f"{task.failure_reason or ''}"
        )


@tasks.command("show")
@click.argument("task_id")
@click.option("--json", "as_json", is_flag=True)
def show(task_id: str, as_json: bool) -> None:
    """Show a task: levels, data objects, keys, sends, expirations, history."""

    from shared.operations.errors import OperationError
    from shared.operations.tasks import TaskDetail, show_task

    async def work(settings: Settings, aws: AwsClients, store: TaskStore) -> TaskDetail:
        try:
            return await show_task(store, task_id)
        except OperationError as exc:
            raise click.ClickException(str(exc)) from None

    detail = _run(work)
    task, objects = detail.task, detail.objects
    if as_json:
        click.echo(
            json.dumps(
                {
                    "task": task.model_dump(mode="json"),
                    "objects": [o.model_dump(mode="json") for o in objects],
                    "late_outputs": [o.model_dump(mode="json") for o in detail.late_outputs],
                },
                indent=2,
            )
        )
        return
    click.echo(f"task      {task.task_id}  ({task.workflow}, clip {task.clip_id})")
    click.echo(
        f"status    {task.status.value}"
        + (f": {task.failure_reason}" if task.failure_reason else "")
        + (f" (by {task.stopped_by})" if task.stopped_by else "")
    )
    click.echo(f"created   {when(task.created_at)}   updated {when(task.updated_at)}")
    for number, jobs in enumerate(task.levels, start=1):
        marker = "->" if number == task.level else "  "
        click.echo(f"{marker} level {number}: {', '.join(jobs)}")
    click.echo("data objects:")
    for obj in sorted(objects, key=lambda o: (o.level, o.job)):
        click.echo(
            f"  L{obj.level} {obj.job:<20} {obj.status.value:<8} sends={obj.send_count} "
            f"expirations={obj.expirations} last_sent={when(obj.last_sent_at)} "
            f"next_check={when(obj.due_at) if obj.status.value == 'waiting' else '-'}"
        )
        for key in obj.keys:
            tag = (
                " (expired)"
                if key in obj.expired_keys
                else (" (current)" if key == obj.key else "")
            )
            click.echo(f"      key {key}{tag}")
        if obj.output is not None:
            click.echo(f"      output {obj.output.label_uri}")
    if detail.late_outputs:
        click.echo("arrived after the stop (recorded, ignored):")
        for late in detail.late_outputs:
            click.echo(f"  {when(late.at)}  {late.job} {late.what} key {late.key}")
    click.echo("history:")
    for entry in task.history:
        click.echo(f"  {when(entry.at)}  {entry.event}  {entry.detail}")


@tasks.command("retry")
@click.argument("task_id")
def retry(task_id: str) -> None:
    """Make a failed task active again; the dispatcher's sweep re-sends its open objects."""
    from shared.operations.errors import OperationError
    from shared.operations.tasks import retry_task

    async def work(settings: Settings, aws: AwsClients, store: TaskStore) -> list[str]:
        now = datetime.now(UTC).timestamp()
        try:
            return await retry_task(store, task_id, now, settings.dispatch_level_timeout_seconds)
        except OperationError as exc:
            raise click.ClickException(str(exc)) from None

    for line in _run(work):
        click.echo(line)
    click.echo(f"{task_id}: active again; the dispatcher sends within its sweep interval")


@tasks.command("stop")
@click.argument("task_id")
@click.option("--reason", default="", help="Why (kept in the task's history).")
def stop(task_id: str, reason: str) -> None:
    """Stop a task for good: nothing more is sent; outputs arriving later are only recorded."""
    from shared.operations.errors import OperationError
    from shared.operations.tasks import StopResult, stop_task

    async def work(settings: Settings, aws: AwsClients, store: TaskStore) -> StopResult:
        now = datetime.now(UTC).timestamp()
        try:
            return await stop_task(
                store, task_id, now, by=f"cli:{getpass.getuser()}", reason=reason
            )
        except OperationError as exc:
            raise click.ClickException(str(exc)) from None

    result = _run(work)
    verb = "stopped" if result.changed else "was stopped already"
    click.echo(f"{task_id}: {verb} ({result.objects_stopped} waiting data object(s) stopped)")


@tasks.command("create")
@click.option(
    "--spec",
    "spec_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    required=True,
    help='The original form: {"labelingJobs": [...]}.',
)
@click.option("--drive-id", required=True)
@click.option("--clip-id", default=None, help="Default: derived from the clip URI.")
@click.option("--weather", default="undefined")
@click.option("--time-of-day", default="undefined")
@click.option("--route", default="unknown")
@click.option("--scene", default="undefined")
@click.option("--traffic", default="undefined")
@click.option("--traffic-density", required=True)
def create(
    spec_file: Path,
    drive_id: str,
    clip_id: str | None,
    weather: str,
    time_of_day: str,
    route: str,
    scene: str,
    traffic: str,
    traffic_density: str,
) -> None:
    """Create a task from the original pipeline's explicit spec for one clip."""
    from pydantic import ValidationError

    from shared.bus import Bus
    from shared.events import Event
    from shared.operations.creation import CreatedTask, SpecTaskRequest, create_from_spec
    from shared.operations.errors import OperationError

    try:
        request = SpecTaskRequest.model_validate(
            {
                **json.loads(spec_file.read_text()),
                "drive": {
                    "drive_id": drive_id,
                    "weather": weather,
                    "time_of_day": time_of_day,
                    "route": route,
                },
                "clip": {"scene": scene, "traffic": traffic, "traffic_density": traffic_density},
                "clipId": clip_id,
            }
        )
    except (ValidationError, ValueError) as exc:
        raise click.ClickException(f"invalid spec or attributes: {exc}") from None

    async def work(settings: Settings, aws: AwsClients, store: TaskStore) -> CreatedTask:
        async with Bus(settings, client_name="lava-cli") as bus:

            async def publish(event: Event[Any]) -> None:
                await bus.publish(event)

            try:
                return await create_from_spec(aws, settings, publish, request)
            except OperationError as exc:
                raise click.ClickException(str(exc)) from None

    created = _run(work)
    click.echo(f"{created.task_id}\tworkflow {created.workflow}: {json.dumps(created.levels)}")
