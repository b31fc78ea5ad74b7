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
from lava.output import fields, json_option, print_json, show, table
from shared.tasks.model import TaskStatus

if TYPE_CHECKING:
    from rich.table import Table

    from shared.aws import AwsClients
    from shared.operations.tasks import TaskDetail
    from shared.settings import Settings
    from shared.tasks.model import AnnotationTask, DataObject
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
@click.option(
    "--status",
    type=click.Choice(STATUSES),
    multiple=True,
    help="Only tasks in this status (repeatable; default: every status).",
)
@json_option
def list_tasks(status: tuple[str, ...], as_json: bool) -> None:
    """List tasks, newest first (every status unless --status is given; --json: the tasks)."""

    async def work(settings: Settings, aws: AwsClients, store: TaskStore) -> list[Any]:
        found = []
        for name in status or STATUSES:
            found += (await store.tasks_page(name, 1000))[0]
        return sorted(found, key=lambda t: t.updated_at, reverse=True)

    found = _run(work)
    if as_json:
        print_json(found)
        return
    if not found:
        show("no tasks")
        return
    show(
        table(
            ("TASK", "STATUS", "LEVEL", "UPDATED", "REASON"),
            (
                (
                    task.task_id,
                    task.status.value,
                    f"{task.level}/{len(task.levels)}" if task.levels else None,
                    when(task.updated_at),
                    task.failure_reason,
                )
                for task in found
            ),
        )
    )


@tasks.command("show")
@click.argument("task_id")
@json_option
def show_cmd(task_id: str, as_json: bool) -> None:
    """Show task TASK_ID: levels, data objects, keys, sends, expirations, history (--json: the
    task, its data objects and the outputs that arrived after a stop)."""

    from shared.operations.errors import OperationError
    from shared.operations.tasks import show_task

    async def work(settings: Settings, aws: AwsClients, store: TaskStore) -> TaskDetail:
        try:
            return await show_task(store, task_id)
        except OperationError as exc:
            raise click.ClickException(str(exc)) from None

    detail = _run(work)
    if as_json:
        print_json(
            {
                "task": detail.task,
                "objects": detail.objects,
                "late_outputs": detail.late_outputs,
            }
        )
        return
    show(*task_tables(detail))


def task_tables(detail: TaskDetail) -> list[Table]:
    """What `lava tasks show` prints: the task, then its objects, keys, late outputs, history."""
    task = detail.task
    objects = sorted(detail.objects, key=lambda o: (o.level, o.job))
    parts = [
        fields(_task_fields(task)),
        table(
            ("LEVEL", "JOB", "STATUS", "SENDS", "EXPIRATIONS", "LAST SENT", "NEXT CHECK", "OUTPUT"),
            (
                (
                    obj.level,
                    obj.job,
                    obj.status.value,
                    obj.send_count,
                    obj.expirations,
                    when(obj.last_sent_at),
                    when(obj.due_at) if obj.status.value == "waiting" else None,
                    obj.output.label_uri if obj.output is not None else None,
                )
                for obj in objects
            ),
            title="data objects",
            numeric=("LEVEL", "SENDS", "EXPIRATIONS"),
        ),
        table(
            ("LEVEL", "JOB", "KEY", "STATE"),
            (
                (obj.level, obj.job, key, _key_state(obj, key))
                for obj in objects
                for key in obj.keys
            ),
            title="dedup keys",
            numeric=("LEVEL",),
        ),
    ]
    if detail.late_outputs:
        parts.append(
            table(
                ("AT", "JOB", "WHAT", "KEY"),
                ((when(late.at), late.job, late.what, late.key) for late in detail.late_outputs),
                title="arrived after the stop (recorded, ignored)",
            )
        )
    parts.append(
        table(
            ("AT", "EVENT", "DETAIL"),
            ((when(entry.at), entry.event, entry.detail) for entry in task.history),
            title="history",
        )
    )
    return parts


def _task_fields(task: AnnotationTask) -> list[tuple[str, Any]]:
    """The task's header: what it is, its status (and why, and who stopped it), its levels."""
    status = task.status.value + (f": {task.failure_reason}" if task.failure_reason else "")
    header: list[tuple[str, Any]] = [
        ("task", task.task_id),
        ("workflow", task.workflow),
        ("clip", task.clip_id),
        ("status", status + (f" (by {task.stopped_by})" if task.stopped_by else "")),
        ("created", when(task.created_at)),
        ("updated", when(task.updated_at)),
    ]
    header += [
        (f"level {n}" + (" (current)" if n == task.level else ""), ", ".join(jobs))
        for n, jobs in enumerate(task.levels, start=1)
    ]
    return header


def _key_state(obj: DataObject, key: str) -> str:
    if key in obj.expired_keys:
        return "expired"
    return "current" if key == obj.key else "replaced"


@tasks.command("retry")
@click.argument("task_id")
def retry(task_id: str) -> None:
    """Make failed task TASK_ID active again; the dispatcher's sweep re-sends its open objects."""
    from shared.operations.errors import OperationError
    from shared.operations.tasks import retry_task

    async def work(settings: Settings, aws: AwsClients, store: TaskStore) -> list[str]:
        now = datetime.now(UTC).timestamp()
        try:
            return await retry_task(store, task_id, now, settings.dispatch.level_timeout_seconds)
        except OperationError as exc:
            raise click.ClickException(str(exc)) from None

    for line in _run(work):
        click.echo(line)
    click.echo(f"{task_id}: active again; the dispatcher sends within its sweep interval")


@tasks.command("stop")
@click.argument("task_id")
@click.option("--reason", default="", help="Why (kept in the task's history).")
def stop(task_id: str, reason: str) -> None:
    """Stop task TASK_ID for good: nothing more is sent; outputs arriving later are only
    recorded."""
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
@click.option("--drive-id", required=True, help="The drive the clip was recorded on.")
@click.option("--clip-id", default=None, help="Default: derived from the clip URI.")
@click.option("--weather", default="undefined", show_default=True, help="Drive attribute.")
@click.option("--time-of-day", default="undefined", show_default=True, help="Drive attribute.")
@click.option("--route", default="unknown", show_default=True, help="Drive attribute.")
@click.option("--scene", default="undefined", show_default=True, help="Clip attribute.")
@click.option("--traffic", default="undefined", show_default=True, help="Clip attribute.")
@click.option("--traffic-density", required=True, help="Clip attribute: low, medium or high.")
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
