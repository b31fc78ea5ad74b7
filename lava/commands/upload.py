"""`lava upload`: what the capture rig runs for each clip."""

from __future__ import annotations

import asyncio
from datetime import datetime
from enum import StrEnum
from pathlib import Path

import click
from pydantic import ValidationError

from shared.taxonomy import vocabulary as v


def _choice(enum: type[StrEnum]) -> click.Choice[str]:
    return click.Choice([m.value for m in enum] + (["contruction"] if enum is v.Scene else []))


@click.command()
@click.argument("video", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--drive-id", required=True, help="The drive the clip was recorded on.")
@click.option("--weather", required=True, type=_choice(v.Weather), help="Drive attribute.")
@click.option("--time-of-day", required=True, type=_choice(v.TimeOfDay), help="Drive attribute.")
@click.option("--route", required=True, help="Drive attribute: the route driven.")
@click.option("--scene", required=True, type=_choice(v.Scene), help="Clip attribute.")
@click.option("--traffic", required=True, type=_choice(v.Traffic), help="Clip attribute.")
@click.option(
    "--traffic-density", required=True, type=_choice(v.TrafficDensity), help="Clip attribute."
)
@click.option("--fps", type=float, default=1.0, show_default=True, help="Frames/s to label.")
@click.option(
    "--workflow",
    "workflows",
    multiple=True,
    required=True,
    help="Workflow to run on the clip (repeatable; see shared/workflows.toml).",
)
@click.option("--captured-at", type=click.DateTime(), default=None, help="UTC capture time.")
@click.option(
    "--sidecar",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="Ground-truth sidecar (default: <clip>.lava.json beside the clip, if present).",
)
@click.option("--clip-id", default=None, help="Override the derived clip id.")
def upload(
    video: Path,
    drive_id: str,
    weather: str,
    time_of_day: str,
    route: str,
    scene: str,
    traffic: str,
    traffic_density: str,
    fps: float,
    workflows: tuple[str, ...],
    captured_at: datetime | None,
    sidecar: Path | None,
    clip_id: str | None,
) -> None:
    """Upload VIDEO to S3 and publish ClipIngested (attributes checked before any upload)."""
    from datetime import UTC

    from lava.rig import upload_clip
    from shared.logging import configure_logging
    from shared.settings import load_settings
    from shared.taxonomy.attributes import ClipAttributes, DriveAttributes

    settings = load_settings()
    configure_logging(settings, "rig")
    try:
        drive = DriveAttributes(
            drive_id=drive_id, weather=weather, time_of_day=time_of_day, route=route
        )
        clip = ClipAttributes(scene=scene, traffic=traffic, traffic_density=traffic_density)
    except ValidationError as exc:
        raise click.ClickException(_first(exc)) from None
    if sidecar is None:
        beside = video.with_name(video.stem + ".lava.json")
        sidecar = beside if beside.exists() else None
    try:
        payload = asyncio.run(
            upload_clip(
                settings,
                video,
                drive,
                clip,
                fps=fps,
                workflows=list(workflows),
                captured_at=captured_at.replace(tzinfo=UTC) if captured_at else None,
                sidecar=sidecar,
                clip_id=clip_id,
            )
        )
    except ValidationError as exc:
        raise click.ClickException(_first(exc)) from None
    click.echo(f"{payload.clip_id}\t{payload.video_uri}")


def _first(exc: ValidationError) -> str:
    err = exc.errors()[0]
    where = ".".join(str(p) for p in err["loc"])
    return f"invalid {where}: {err['msg']}"
