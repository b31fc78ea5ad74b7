"""Ingest's bounds in one run: speed against ffmpeg, peak RSS of the CLI and of the service.

On the same machine, one after the other, and printed as one table with the load average:

- speed: `lava frames extract` against `ffmpeg -vf fps=N -q:v 2` on 1920x1080 10 s clips at
  GOP 30 and GOP 250, 1 and 5 frames/s (whole commands, alternating, ``--runs`` pairs each);
  the ratio is the median of each pair's ratio (the two runs of a pair see about the same
  load), CPU time (user + system) beside it. Bound: <= 0.95 at GOP 250. Frames are checked
  against a full decode (bench.ingest_bench.check_frames).
- `lava frames extract` peak RSS (the child's ru_maxrss) on 1080p and 4K clips at 1, 5 and
  30 frames/s. Bounds: 150 MB at 1080p, 220 MB at 4K.
- the ingest service's peak RSS per clip (bench.ingest_memory_bench's cases, without its
  throughput part), with that bench's bounds.

    bash bench/setup.sh && python -m bench.ingest_bounds [--runs 7] [--skip-service] [--skip-long]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from bench import ingest_bench, ingest_memory_bench
from lava.local_pipeline import PipelineConfig
from lava.sample_clips import SampleSpec, make_sample

RATIO_BOUND = 0.95  # at GOP 250 (issue 23); GOP 30 is shown for reference
CLI_BOUNDS_MB = {"1080p": 150, "4K": 220}
MB = 1024 * 1024


@dataclass(frozen=True)
class Child:
    wall: float  # seconds
    cpu: float  # user + system seconds
    peak_mb: float  # ru_maxrss
    load: float  # 1-minute load average when it ended


@dataclass
class Row:
    """One line of the table: what, the figure, its bound, whether it was met, a detail."""

    section: str
    case: str
    figure: str
    bound: str
    met: bool
    detail: str = ""


@dataclass
class Report:
    rows: list[Row] = field(default_factory=list)
    loads: list[float] = field(default_factory=list)


def run_child(cmd: list[str], *, peak: bool = False) -> Child:
    """Run ``cmd`` to completion: its wall time, CPU time and, with ``peak``, its peak RSS.

    The peak comes from GNU time: a child's own ru_maxrss counts the pages of the process it
    was forked from (this one, ~150 MB) until it execs, so it cannot show a smaller peak.
    """
    started = time.perf_counter()
    with tempfile.NamedTemporaryFile("r") as peak_file:
        timed = ["/usr/bin/time", "-f", "%M", "-o", peak_file.name, *cmd] if peak else cmd
        process = subprocess.Popen(timed, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        assert process.stderr is not None
        err = process.stderr.read()
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - started
        process.returncode = os.waitstatus_to_exitcode(status)
        if process.returncode != 0:
            raise RuntimeError(f"{cmd[:5]} failed: {err.decode(errors='replace')[-500:]}")
        peak_mb = int(peak_file.read().split()[-1]) / 1024 if peak else 0.0
    cpu = usage.ru_utime + usage.ru_stime
    return Child(wall, cpu, peak_mb, os.getloadavg()[0])


def lava_cmd(video: Path, fps: float, out: Path) -> list[str]:
    lava = [sys.executable, "-m", "lava", "frames", "extract", str(video)]
    return [*lava, "--fps", f"{fps:g}", "--out", str(out), "--quiet"]


def ffmpeg_cmd(video: Path, fps: float, out: Path) -> list[str]:
    ffmpeg = ["ffmpeg", "-loglevel", "error", "-i", str(video)]
    return [*ffmpeg, "-vf", f"fps={fps:g}", "-q:v", "2", str(out / "%06d.jpg")]


def fresh(directory: Path) -> Path:
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True, exist_ok=True)
    return directory


def speed_case(work: Path, video: Path, gop: int, fps: int, runs: int, report: Report) -> None:
    """``runs`` alternating pairs of lava and ffmpeg on one clip and rate."""
    ours_dir, ff_dir = work / f"ours-{gop}-{fps}", work / f"ffmpeg-{gop}-{fps}"
    pairs: list[tuple[Child, Child]] = []
    for _ in range(runs):
        ours = run_child(lava_cmd(video, fps, fresh(ours_dir)))
        ff = run_child(ffmpeg_cmd(video, fps, fresh(ff_dir)))
        pairs.append((ours, ff))
        report.loads += [ours.load, ff.load]
    every = ingest_bench.every_frame(video, work / f"every-{gop}")
    ok, detail = ingest_bench.check_frames(ours_dir, ff_dir, every, 30, fps)
    ratio = statistics.median(o.wall / f.wall for o, f in pairs)
    cpu_ratio = statistics.median(o.cpu / f.cpu for o, f in pairs)
    ours_wall = statistics.median(o.wall for o, _ in pairs)
    ff_wall = statistics.median(f.wall for _, f in pairs)
    spread = sorted(round(o.wall / f.wall, 2) for o, f in pairs)
    bounded = gop == 250
    report.rows.append(
        Row(
            "speed",
            f"GOP {gop}, {fps} fps: lava / ffmpeg wall",
            f"{ratio:.2f} ({ours_wall:.2f} s / {ff_wall:.2f} s; CPU {cpu_ratio:.2f})",
            f"<= {RATIO_BOUND}" if bounded else "-",
            ok and (not bounded or ratio <= RATIO_BOUND),
            f"pairs {spread}; frames {'ok' if ok else 'WRONG'}: {detail}",
        )
    )


def speed(work: Path, by_gop: dict[int, Path], runs: int, report: Report) -> None:
    for gop, video in by_gop.items():
        for fps in (1, 5):
            speed_case(work, video, gop, fps, runs, report)
            print(f"{report.rows[-1].case}: {report.rows[-1].figure}", flush=True)


def cli_memory(work: Path, clips: dict[str, Path], runs: int, report: Report) -> None:
    """Peak RSS of `lava frames extract` (the highest of ``runs``) per clip and rate."""
    for name, size in (("hd", "1080p"), ("uhd", "4K")):
        for fps in (1, 5, 30):
            children = [
                run_child(lava_cmd(clips[name], fps, fresh(work / "cli-memory")), peak=True)
                for _ in range(runs)
            ]
            report.loads += [c.load for c in children]
            peak = max(c.peak_mb for c in children)
            report.rows.append(
                Row(
                    "CLI peak RSS",
                    f"lava frames extract, {size} 10 s, {fps} fps",
                    f"{peak:.0f} MB",
                    f"<= {CLI_BOUNDS_MB[size]} MB",
                    peak <= CLI_BOUNDS_MB[size],
                    f"{runs} runs: {sorted(round(c.peak_mb) for c in children)}",
                )
            )
            print(f"{report.rows[-1].case}: {report.rows[-1].figure}", flush=True)


def service_memory(work: Path, skip_long: bool, report: Report) -> None:
    """bench.ingest_memory_bench's cases (a fresh service process per case)."""
    cases = [c for c in ingest_memory_bench.CASES if not (skip_long and c.clip == "long")]
    config = PipelineConfig(
        namespace=f"ib{uuid.uuid4().hex[:6]}",
        run_dir=work / "run",
        extra_env={"LAVA_LOG__LEVEL": "WARNING"},
    )
    options = argparse.Namespace(skip_throughput=True, clips=0)
    rows, _ = asyncio.run(ingest_memory_bench.measure(config, work, cases, options))
    report.loads.append(os.getloadavg()[0])
    segments = ingest_memory_bench.segment_peaks(rows)
    for case, size, _rest, peak, frames, check in rows:
        bound, met = ingest_memory_bench.judge(case, peak, frames, segments)
        report.rows.append(
            Row(
                "service peak RSS",
                f"ingest service, {case.name} ({size / MB:.0f} MB), {case.fps:g} fps",
                f"{peak:.0f} MB",
                bound,
                met and check == "identical",
                f"frames {check}",
            )
        )


def print_table(report: Report, started: str, runs: int) -> bool:
    """The table; True when every bound was met."""
    loads = report.loads or [os.getloadavg()[0]]
    print(
        f"\ningest bounds, {started} - {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, "
        f"{os.cpu_count()} CPUs, 1-min load average median {statistics.median(loads):.1f} "
        f"(min {min(loads):.1f}, max {max(loads):.1f}); speed: median of {runs} pairs\n"
    )
    width = max(len(r.case) for r in report.rows)
    for r in report.rows:
        print(
            f"{r.section:<17} {r.case:<{width}}  {r.figure:<40} {r.bound:<30} "
            f"{'met' if r.met else 'NOT met'}"
        )
        if r.detail:
            print(f"{'':<17} {'':<{width}}  {r.detail}")
    met = all(r.met for r in report.rows)
    print(f"\nall bounds {'met' if met else 'NOT met'}")
    return met


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7, help="Pairs per speed case.")
    parser.add_argument("--memory-runs", type=int, default=2, help="CLI runs per memory case.")
    parser.add_argument("--skip-speed", action="store_true")
    parser.add_argument("--skip-service", action="store_true")
    parser.add_argument("--skip-long", action="store_true", help="Skip the service's long clip.")
    parser.add_argument("--keep", type=Path, default=None, help="Keep (and reuse) clips here.")
    args = parser.parse_args()
    if shutil.which("ffmpeg") is None or not Path("/usr/bin/time").exists():
        print("ffmpeg or GNU time not found: run bash bench/setup.sh first", file=sys.stderr)
        return 2
    work = args.keep or Path(tempfile.mkdtemp(prefix="lava-ingest-bounds-"))
    work.mkdir(parents=True, exist_ok=True)
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    report = Report()
    # The memory bench's 1080p clip is ingest_bench's GOP 30 clip (same spec and seed).
    clips = ingest_memory_bench.make_clips(work, 1024**3, {"hd", "uhd"})
    gop250 = work / "bench-gop250.mp4"
    if not gop250.exists():
        make_sample(work, SampleSpec(seconds=10, gop=250, seed=250), name="bench-gop250")
    if not args.skip_speed:
        speed(work, {30: clips["hd"], 250: gop250}, args.runs, report)
    cli_memory(work, clips, args.memory_runs, report)
    if not args.skip_service:
        service_memory(work, args.skip_long, report)
    met = print_table(report, started, args.runs)
    if args.keep is None:
        shutil.rmtree(work, ignore_errors=True)
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
