"""`lava dataset query|export|report`: the completed clips, as a dataset."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from lava.commands import run_with_aws, settings_and_logging
from lava.output import json_option, print_json, show, table

if TYPE_CHECKING:
    from shared.aws import AwsClients
    from shared.dataset.index import DatasetIndex
    from shared.settings import Settings

T = TypeVar("T")

where_option = click.option(
    "--where",
    "conditions",
    multiple=True,
    metavar="ATTR=VALUE",
    help="Repeatable: weather, time_of_day, scene, traffic, traffic_density, drive_id, route.",
)


def _run(work: Callable[[Settings, AwsClients, DatasetIndex], Awaitable[T]]) -> T:
    from shared.dataset.index import DatasetIndex

    settings = settings_and_logging()
    return run_with_aws(settings, lambda aws: work(settings, aws, DatasetIndex(aws, settings)))


def _where(conditions: tuple[str, ...]) -> dict[str, str]:
    from shared.dataset.index import QueryError, parse_where

    try:
        return parse_where(list(conditions))
    except QueryError as exc:
        raise click.BadParameter(str(exc), param_hint="--where") from None


@click.group()
def dataset() -> None:
    """Completed clips: query them, export them, report on them."""


@dataset.command("query")
@where_option
@json_option
def query(conditions: tuple[str, ...], as_json: bool) -> None:
    """List completed clips matching every --where, with their counts (--json: the index
    entries)."""
    where = _where(conditions)

    async def work(settings: Settings, aws: AwsClients, index: DatasetIndex) -> Any:
        return await index.query(where)

    entries = _run(work)
    if as_json:
        print_json(entries)
        return
    show(
        f"{len(entries)} clip(s)",
        table(
            (
                "CLIP",
                "WEATHER",
                "TIME",
                "SCENE",
                "FRAMES",
                "OBJECTS",
                "TRACKS",
                "WARN",
                "PER CLASS",
            ),
            (
                (
                    e.clip_id,
                    e.weather,
                    e.time_of_day,
                    e.scene,
                    e.frames,
                    sum(e.objects_per_class.values()),
                    sum(e.tracks_per_class.values()),
                    e.warnings,
                    " ".join(f"{k}={v}" for k, v in e.objects_per_class.items()),
                )
                for e in entries
            ),
            numeric=("FRAMES", "OBJECTS", "TRACKS", "WARN"),
        ),
    )


@dataset.command("export")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["bdd100k", "coco", "mot"]),
    required=True,
    help="BDD100K/Scalabel JSON, COCO (video) JSON or MOT sequences.",
)
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="Folder to write into (created if missing).",
)
@where_option
def export(fmt: str, out_dir: Path, conditions: tuple[str, ...]) -> None:
    """Write the selected clips as BDD100K/Scalabel JSON, COCO (video) JSON or MOT sequences."""
    from shared.dataset.export_job import load_labels
    from shared.dataset.exports import to_bdd100k, to_coco, write_mot

    where = _where(conditions)

    async def work(settings: Settings, aws: AwsClients, index: DatasetIndex) -> Any:
        entries = await index.query(where)
        return settings.names.bucket, await load_labels(aws, entries)

    bucket, clips = _run(work)
    out_dir.mkdir(parents=True, exist_ok=True)
    if fmt == "bdd100k":
        path = out_dir / "labels.json"
        path.write_text(json.dumps(to_bdd100k(clips, bucket)))
        click.echo(f"{path}: {len(clips)} clip(s), {sum(len(c.frames) for c in clips)} frames")
    elif fmt == "coco":
        path = out_dir / "annotations.json"
        data = to_coco(clips)
        path.write_text(json.dumps(data))
        click.echo(
            f"{path}: {len(data['videos'])} videos, {len(data['images'])} images, "
            f"{len(data['annotations'])} annotations"
        )
    else:
        written = write_mot(clips, out_dir)
        click.echo(f"{out_dir}: {len(written)} MOT sequence(s)")


@dataset.command("report")
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="Folder for report.md and its PNG charts (created if missing).",
)
@where_option
def report(out_dir: Path, conditions: tuple[str, ...]) -> None:
    """Write a Markdown report with PNG charts of the (selected) dataset."""
    from lava.dataset.report import write_report
    from services.postproc.summary import ClipSummary
    from shared.layout import parse_s3_uri
    from shared.operations.quality import quality_report
    from shared.storage import S3Store

    where = _where(conditions)

    async def work(settings: Settings, aws: AwsClients, index: DatasetIndex) -> Any:
        entries = await index.query(where)
        store = S3Store(aws)
        summaries = [
            ClipSummary.model_validate_json(await store.get_bytes(*parse_s3_uri(e.summary_uri)))
            for e in entries
        ]
        return entries, summaries, await quality_report(aws, settings)  # last 7 days

    entries, summaries, quality = _run(work)
    path = write_report(entries, summaries, out_dir, quality)
    click.echo(f"{path}: {len(entries)} clip(s)")
