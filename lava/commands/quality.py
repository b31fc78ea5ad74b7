"""`lava quality [report|gold ...]`: label quality per worker, job and class; gold clips."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import TYPE_CHECKING, TypeVar

import click

from lava.commands import run_with_aws, settings_and_logging
from lava.output import json_option, print_json, show, table

if TYPE_CHECKING:
    from rich.table import Table

    from shared.aws import AwsClients
    from shared.quality.gold_ref import TruthKind
    from shared.quality.report import QualityReport, Rate, Row
    from shared.settings import Settings

T = TypeVar("T")


def _run(work: Callable[[Settings, AwsClients], Awaitable[T]]) -> T:
    from shared.operations.errors import OperationError

    settings = settings_and_logging()

    async def guarded(aws: AwsClients) -> T:
        try:
            return await work(settings, aws)
        except OperationError as exc:
            raise click.ClickException(str(exc)) from None

    return run_with_aws(settings, guarded)


def _rate(rate: Rate) -> str:
    if rate.value is None:
        return "-"
    return f"{rate.value:.2f} [{rate.low:.2f}-{rate.high:.2f}] n={rate.n}"


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def _gold_table(title: str, rows: list[Row]) -> Table:
    return table(
        ("NAME", "GOLD", "PRECISION", "RECALL", "ATTR ACC", "MOTA", "IDF1"),
        (
            (
                r.name,
                r.gold.gold_tasks,
                _rate(r.gold.precision),
                _rate(r.gold.recall),
                _rate(r.gold.attribute_accuracy),
                _number(r.gold.mota),
                _number(r.gold.idf1),
            )
            for r in rows
            if r.gold.gold_tasks
        ),
        title=title,
        numeric=("GOLD", "MOTA", "IDF1"),
    )


def _agreement_table(title: str, rows: list[Row]) -> Table:
    return table(
        ("NAME", "OBJECTS", "KEPT", "MOVED", "RELABELLED", "DELETED", "ADDED", "ATTR FLIPPED"),
        (
            (
                r.name,
                r.agreement.objects,
                _rate(r.agreement.kept),
                _rate(r.agreement.moved),
                _rate(r.agreement.relabelled),
                _rate(r.agreement.deleted),
                r.agreement.added,
                _rate(r.agreement.attributes_flipped),
            )
            for r in rows
            if r.agreement.objects or r.agreement.added
        ),
        title=title,
        numeric=("OBJECTS", "ADDED"),
    )


def _throughput_table(rows: list[Row]) -> Table:
    return table(
        ("WORKER", "TASKS", "S/TASK", "TASKS/H"),
        ((r.name, r.tasks, _number(r.seconds_per_task), _number(r.tasks_per_hour)) for r in rows),
        title="Throughput per worker (time spent as the backend reports it)",
        numeric=("TASKS", "S/TASK", "TASKS/H"),
    )


def show_report(found: QualityReport) -> None:
    show(
        f"{found.tasks} task(s), {found.gold_tasks} gold; proportions: value [95% Wilson] n",
        _gold_table("Gold clips per worker", found.workers),
        _gold_table("Gold clips per class", found.classes),
        _agreement_table("What the adjustment changed, per level-1 worker", found.workers),
        _agreement_table("... per job", found.jobs),
        _agreement_table("... per class", found.classes),
        _throughput_table(found.workers),
    )


@click.group(invoke_without_command=True)
@click.option("--since", type=click.DateTime(), help="Window start, UTC (default: 7 days ago).")
@click.option("--until", type=click.DateTime(), help="Window end, UTC (default: now).")
@click.option("--reveal", is_flag=True, help="Worker ids instead of pseudonyms (operators).")
@json_option
@click.pass_context
def quality(
    ctx: click.Context,
    since: datetime | None,
    until: datetime | None,
    reveal: bool,
    as_json: bool,
) -> None:
    """Label quality of the tasks finalized in a window: gold scores, level agreement and
    throughput per worker, job and class (docs/quality.md)."""
    if ctx.invoked_subcommand is not None:
        return
    from datetime import UTC

    from shared.operations.quality import quality_report

    start = since.replace(tzinfo=UTC) if since else None
    end = until.replace(tzinfo=UTC) if until else None

    async def work(settings: Settings, aws: AwsClients) -> QualityReport:
        return await quality_report(aws, settings, start, end, reveal=reveal)

    found = _run(work)
    if as_json:
        print_json(found)
        return
    show_report(found)


@quality.group()
def gold() -> None:
    """Gold clips: clips whose truth is known, mixed into a workflow's stream
    (LAVA_QUALITY__GOLD_RATE)."""


@gold.command("add")
@click.argument("clip_id")
@click.option("--workflow", required=True, help="The workflow whose stream gets the clip.")
@click.option(
    "--truth",
    type=click.Choice(["labels", "sidecar"]),
    default="labels",
    show_default=True,
    help="The clip's approved final labels, or the sidecar uploaded with it.",
)
def gold_add(clip_id: str, workflow: str, truth: str) -> None:
    """Mark CLIP_ID gold for a workflow."""
    from shared.operations.quality import add_gold

    async def work(settings: Settings, aws: AwsClients) -> str:
        kind: TruthKind = "sidecar" if truth == "sidecar" else "labels"
        gold = await add_gold(aws, settings, clip_id, workflow, kind)
        return gold.truth_uri

    click.echo(f"{clip_id} is gold for {workflow} (truth: {_run(work)})")


@gold.command("remove")
@click.argument("clip_id")
@click.option("--workflow", required=True, help="The workflow the clip is gold for.")
def gold_remove(clip_id: str, workflow: str) -> None:
    """CLIP_ID is no longer gold for a workflow (copies already sent are still scored)."""
    from shared.operations.quality import remove_gold

    async def work(settings: Settings, aws: AwsClients) -> None:
        await remove_gold(aws, settings, clip_id, workflow)

    _run(work)
    click.echo(f"{clip_id} is no longer gold for {workflow}")


@gold.command("list")
@click.option("--workflow", required=True, help="The workflow whose gold clips to list.")
@json_option
def gold_list(workflow: str, as_json: bool) -> None:
    """The gold clips of a workflow."""
    from shared.operations.quality import list_gold
    from shared.quality.gold_clips import GoldClip

    async def work(settings: Settings, aws: AwsClients) -> list[GoldClip]:
        return await list_gold(aws, settings, workflow)

    found = _run(work)
    if as_json:
        print_json(found)
        return
    show(
        table(
            ("CLIP", "TRUTH", "ADDED"),
            ((g.clip_id, g.truth_uri, g.added_at.isoformat()) for g in found),
            title=f"{len(found)} gold clip(s) of {workflow}",
        )
    )
