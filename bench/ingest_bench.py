"""Ingest benchmark: `lava frames extract` against the ffmpeg command line.

For a 1920x1080 10 s clip at GOP 30 and GOP 250, extract 1 and 5 frames/s with both tools,
several runs each (alternating), and print the median wall times and their ratio. Both are
timed as whole commands, interpreter start-up included. Every run's frames are checked: same
count as ffmpeg, and each frame matches ffmpeg's frame at that timestamp (mean absolute pixel
difference far below that of the neighbouring source frame).

    bash bench/setup.sh && python -m bench.ingest_bench [--runs 5] [--keep DIR]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import simplejpeg

from lava.sample_clips import SampleSpec, make_sample

TARGET_RATIO = 0.8


def timed(cmd: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    return time.perf_counter() - started


def frames_in(directory: Path) -> list[Path]:
    return sorted(directory.glob("*.jpg"))


def load(path: Path) -> np.ndarray:
    image: np.ndarray = simplejpeg.decode_jpeg(path.read_bytes()).astype(np.int16)
    return image


def check_frames(
    ours: Path, ffmpeg: Path, every: list[Path], source_fps: int, fps: int
) -> tuple[bool, str]:
    """Our frame k must be source frame ceil(k * source_fps / fps): the first at or after k/fps.

    ``every`` holds every source frame (decoded by ffmpeg, not timed). ffmpeg's fps filter
    picks differently (the frame nearest the middle of each interval), so its output is only
    compared by count.
    """
    a, b = frames_in(ours), frames_in(ffmpeg)
    if len(a) != len(b):
        return False, f"{len(a)} frames vs ffmpeg's {len(b)}"
    worst, closest = 0.0, 1e9
    for k, path in enumerate(a):
        expected = -(-k * source_fps // fps)
        mine = load(path)
        worst = max(worst, float(np.abs(mine - load(every[expected])).mean()))
        for other in (expected - 1, expected + 1):
            if 0 <= other < len(every):
                closest = min(closest, float(np.abs(mine - load(every[other])).mean()))
    ok = worst < closest / 3
    return (
        ok,
        f"diff to the expected source frame <= {worst:.2f}, to its neighbours >= {closest:.2f}",
    )


# One case measured: GOP, frames/s, frames written, median seconds (ours, ffmpeg), their
# ratio, whether the frames are the right ones, and how far off they were.
Row = tuple[int, int, int, float, float, float, bool, str]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--keep", type=Path, default=None, help="Keep clips and frames here.")
    args = parser.parse_args()
    if shutil.which("ffmpeg") is None:
        print("ffmpeg not found: run bash bench/setup.sh first", file=sys.stderr)
        return 2
    work = args.keep or Path(tempfile.mkdtemp(prefix="lava-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    rows = []
    for gop in (30, 250):
        clip = make_sample(work, SampleSpec(seconds=10, gop=gop, seed=gop), name=f"bench-gop{gop}")
        every = every_frame(clip.video, work / f"every-{gop}")
        for fps in (1, 5):
            rows.append(measure(work, clip.video, gop, fps, every, args.runs))
    failed = any(not ok or ratio > TARGET_RATIO for *_, ratio, ok, _ in rows)
    print(f"\n1920x1080, 10 s, {args.runs} runs each, median wall time (whole command)\n")
    print(f"{'GOP':>4} {'fps':>4} {'frames':>6} {'lava':>8} {'ffmpeg':>8} {'ratio':>6}  frames ok")
    for gop, fps, n, ours, ff, ratio, ok, detail in rows:
        flag = "" if ratio <= TARGET_RATIO else "  (above target)"
        print(
            f"{gop:>4} {fps:>4} {n:>6} {ours:>7.3f}s {ff:>7.3f}s {ratio:>6.2f}  "
            f"{'yes' if ok else 'NO'}: {detail}{flag}"
        )
    print(
        f"\ntarget: ratio <= {TARGET_RATIO} in every case -> {'met' if not failed else 'NOT met'}"
    )
    if args.keep is None:
        shutil.rmtree(work, ignore_errors=True)
    return 1 if failed else 0


def every_frame(video: Path, directory: Path) -> list[Path]:
    """Every source frame as a JPEG, decoded by ffmpeg (the reference; not timed)."""
    directory.mkdir(exist_ok=True)
    subprocess.run(
        [
            "ffmpeg",
            "-loglevel",
            "error",
            "-i",
            str(video),
            "-vsync",
            "0",
            "-q:v",
            "2",
            str(directory / "%06d.jpg"),
        ],
        check=True,
    )
    return frames_in(directory)


def measure(work: Path, video: Path, gop: int, fps: int, every: list[Path], runs: int) -> Row:
    """``runs`` extractions with each tool, alternating; their medians and a frame check."""
    ours_dir, ff_dir = work / f"ours-{gop}-{fps}", work / f"ffmpeg-{gop}-{fps}"
    lava = [sys.executable, "-m", "lava", "frames", "extract", str(video), "--fps", str(fps)]
    ffmpeg = ["ffmpeg", "-loglevel", "error", "-i", str(video), "-vf", f"fps={fps}", "-q:v", "2"]
    ours_times, ff_times = [], []
    for _ in range(runs):
        for d in (ours_dir, ff_dir):
            shutil.rmtree(d, ignore_errors=True)
            d.mkdir()
        ours_times.append(timed([*lava, "--out", str(ours_dir), "--quiet"]))
        ff_times.append(timed([*ffmpeg, str(ff_dir / "%06d.jpg")]))
    ok, detail = check_frames(ours_dir, ff_dir, every, 30, fps)
    ours, ff = statistics.median(ours_times), statistics.median(ff_times)
    return (gop, fps, len(frames_in(ours_dir)), ours, ff, ours / ff, ok, detail)


if __name__ == "__main__":
    sys.exit(main())
