"""`lava clips make-sample`: real encoded sample clips with their ground truth."""

from __future__ import annotations

from pathlib import Path

import click

from lava.commands import frame_size


@click.group()
def clips() -> None:
    """Sample clips."""


@clips.command("make-sample")
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="Folder for the MP4 and its sidecar (created if missing).",
)
@click.option("--seconds", type=float, default=10.0, show_default=True, help="Clip length.")
@click.option("--fps", type=int, default=30, show_default=True, help="Frame rate of the video.")
@click.option(
    "--size", default="1920x1080", show_default=True, callback=frame_size, help="WIDTHxHEIGHT"
)
@click.option("--gop", type=int, default=30, show_default=True, help="Keyframe interval.")
@click.option(
    "--seed", type=int, default=0, show_default=True, help="Same seed, same clip and labels."
)
@click.option("--name", default=None, help="File stem (default: sample-<seed>).")
def make_sample_cmd(
    out_dir: Path,
    seconds: float,
    fps: int,
    size: tuple[int, int],
    gop: int,
    seed: int,
    name: str | None,
) -> None:
    """Encode an H.264 MP4 of moving LAVA objects and write its ground-truth sidecar."""
    from lava.sample_clips import SampleSpec, make_sample

    width, height = size
    spec = SampleSpec(seconds=seconds, fps=fps, width=width, height=height, gop=gop, seed=seed)
    clip = make_sample(out_dir, spec, name=name)
    objects = sum(len(f.objects) for f in clip.labels.frames)
    nbytes = clip.video.stat().st_size
    click.echo(f"{clip.video}  ({nbytes} bytes, {len(clip.labels.frames)} frames)")
    click.echo(f"{clip.sidecar}  ({objects} labeled objects)")
