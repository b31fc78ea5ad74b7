"""`lava frames extract`: the ingest service's frame extraction on a local file."""

from __future__ import annotations

import time
from pathlib import Path

import click

MB = 1024 * 1024
# The ingest service's default decode memory per clip (LAVA_INGEST__DECODE_MEMORY_MB), not read
# from shared.settings: importing pydantic would slow this command's start. A test keeps them
# equal.
DECODE_MEMORY_MB = 64.0


@click.group()
def frames() -> None:
    """Frame extraction."""


@frames.command("extract")
@click.argument("clip", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--fps", type=float, required=True, help="Frames per second to extract.")
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="Folder for the JPEG frames (created if missing).",
)
@click.option(
    "--quality", type=click.IntRange(1, 100), default=90, show_default=True, help="JPEG quality."
)
@click.option(
    "--decode-memory-mb",
    type=click.FloatRange(min=1),
    default=DECODE_MEMORY_MB,
    show_default=True,
    envvar="LAVA_INGEST__DECODE_MEMORY_MB",
    help="MiB of decoded pictures: caps the decoders at the clip's resolution, as in the "
    "ingest service (LAVA_INGEST__DECODE_MEMORY_MB).",
)
@click.option("--quiet", is_flag=True, help="Print nothing on success.")
def extract(
    clip: Path, fps: float, out_dir: Path, quality: int, decode_memory_mb: float, quiet: bool
) -> None:
    """Write CLIP's frames at --fps as OUT/000000.jpg... (frame k = first at or after k/fps s)."""
    from services.ingest.allocator import fix_mmap_threshold
    from services.ingest.extract import ClipError, FrameExtractor

    started = time.perf_counter()
    fix_mmap_threshold()  # freed pictures go back to the system at once, as in the service
    out_dir.mkdir(parents=True, exist_ok=True)
    try:
        with FrameExtractor(
            clip, jpeg_quality=quality, decode_memory=int(decode_memory_mb * MB)
        ) as extractor:
            count = 0
            for sample in extractor.samples(fps):
                (out_dir / f"{sample.index:06d}.jpg").write_bytes(sample.jpeg)
                count += 1
            stats, info, decoders = extractor.stats, extractor.info, extractor.decode_threads
    except ClipError as exc:
        raise click.ClickException(str(exc)) from None
    if not quiet:
        click.echo(
            f"{count} frames from {info.width}x{info.height} {info.codec} "
            f"({info.frame_count} frames, {info.source_fps:g} fps, {info.keyframes} keyframes): "
            f"decoded {stats.decoded_frames}, {stats.strategy}, "
            f"{decoders} decoder thread{'s' if decoders > 1 else ''} within "
            f"{decode_memory_mb:g} MiB; {time.perf_counter() - started:.2f} s"
        )
    from lava.cli import skip_teardown

    skip_teardown()  # every frame is written and closed; nothing else is left to do
