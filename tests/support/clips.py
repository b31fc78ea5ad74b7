"""Small real clips for tests, encoded with PyAV at test time."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from lava.sample_clips import SampleClip, SampleSpec, make_sample


def small_clip(
    out: Path,
    *,
    seconds: float = 3,
    fps: int = 30,
    gop: int = 30,
    seed: int = 1,
    size: tuple[int, int] = (320, 180),
    name: str | None = None,
) -> SampleClip:
    spec = SampleSpec(seconds=seconds, fps=fps, width=size[0], height=size[1], gop=gop, seed=seed)
    return make_sample(out, spec, name=name or f"clip-g{gop}-s{seed}-{seconds:g}s")


def encode_with(
    path: Path,
    codec: str,
    *,
    frames: int = 10,
    fps: int = 10,
    size: tuple[int, int] = (64, 48),
    pix_fmt: str = "yuv420p",
) -> Path:
    """A clip in some other codec (for 'unsupported codec' cases)."""
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream(codec, rate=Fraction(fps))
        assert isinstance(stream, av.VideoStream)
        stream.width, stream.height = size
        stream.pix_fmt = pix_fmt
        for i in range(frames):
            img = np.full((size[1], size[0], 3), (i * 20) % 255, dtype=np.uint8)
            frame = av.VideoFrame.from_ndarray(img, format="rgb24")
            frame.pts = i
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def truncate(source: Path, target: Path, keep: float = 0.5) -> Path:
    data = source.read_bytes()
    target.write_bytes(data[: int(len(data) * keep)])
    return target


def decode_all(path: Path) -> list[np.ndarray]:
    """Every frame of a clip, as RGB arrays, in presentation order."""
    with av.open(str(path)) as container:
        return [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
