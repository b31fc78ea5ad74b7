"""Ingest memory benchmark: the ingest service's peak RSS per clip, and its throughput.

Runs a moto server, the machine's RabbitMQ and the ingest service as a real process (default
settings, concurrency derived from this machine's cgroup), and for each case starts a fresh
service, sends one clip through it (upload, ClipIngested, wait for FramesReady) and reads the
process's peak RSS (VmHWM in /proc/<pid>/status). Cases: 1920x1080 10 s at 1, 5 and 30 fps,
3840x2160 10 s at 1 and 30 fps, and a long clip (110 s, ~95% of LAVA_INGEST__MAX_BYTES) made at
bench time by looping a 10 s segment of 74 Mbit/s, measured beside that segment alone. Every
case's frames are checked against a full decode: each uploaded JPEG must be byte-identical to
the JPEG of the expected source frame (the first at or after k/fps s) taken from decoding
every frame of the clip.

Then throughput: N 1080p clips at 1 fps published at once, consumed by one and by two ingest
replicas on the same broker (clips/min).

    python -m bench.ingest_memory_bench [--keep DIR] [--clips 8] [--skip-long] [--skip-4k]
"""

from __future__ import annotations

import argparse
import asyncio
import math
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av

from lava.local_pipeline import LocalPipeline, PipelineConfig
from lava.rig import upload_clip
from lava.sample_clips import SampleClip, SampleSpec, make_sample
from services.ingest.extract import encode_jpeg
from shared.aws import AwsClients
from shared.events import decode_event
from shared.layout import ClipLayout, FrameIndex
from shared.listening import hand_over, listen, port_of
from shared.settings import Settings
from shared.storage import S3Store
from shared.taxonomy.attributes import ClipAttributes, DriveAttributes

MB = 1024 * 1024
GOALS_MB = {"1080p": 150, "4K": 220}
# The long clip against its segment: two peaks of fresh processes, each the highest of several
# per-frame swings of ~4 MB (docs/ingestperf.md: the same case spread 119.4-120.5 MB over 8
# runs, and 119-121 MB across runs of the benches). "Flat" allows one swing: 3 %.
FLAT_TOLERANCE = 0.03
TIMELINE = False


@dataclass(frozen=True)
class Case:
    name: str
    clip: str  # hd, uhd, long
    fps: float
    goal: str  # key of GOALS_MB, or "long" (no higher than the segment with as many frames)


CASES = [
    Case("1080p 10 s", "hd", 1, "1080p"),
    Case("1080p 10 s", "hd", 5, "1080p"),
    Case("1080p 10 s", "hd", 30, "1080p"),
    Case("4K 10 s", "uhd", 1, "4K"),
    Case("4K 10 s", "uhd", 30, "4K"),
    Case("10 s, 74 Mb/s", "segment", 1, "1080p"),
    # Flat in the clip's length: the long clip (the segment looped 11 times) at 1/11 fps
    # yields the segment's 10 frames from 11x the download, packets and index, and must peak
    # no higher than the segment. At 1 fps it yields 110 frames: each frame swings the RSS by
    # ~4 MB (decoded picture, its full-range copy, its JPEG, uploads waiting) and a peak over
    # 110 swings is ~1 MB above one over 10 (docs/ingestperf.md), so that case is held to
    # the 1080p bound instead.
    Case("long 110 s", "long", 1 / 11, "long"),
    Case("long 110 s", "long", 1, "1080p"),
]


# --- clips -------------------------------------------------------------------------------
def reencode(
    source: Path,
    target: Path,
    *,
    size: tuple[int, int],
    options: dict[str, object],
    bit_rate: int | None = None,
    seconds: float | None = None,
) -> Path:
    """Decode ``source`` and encode it again with libx264 (scaled, other rate control)."""
    with av.open(str(source)) as src, av.open(str(target), "w") as out:
        rate = src.streams.video[0].average_rate or Fraction(30)
        stream = out.add_stream("libx264", rate=rate)
        stream.width, stream.height = size
        stream.pix_fmt = "yuv420p"
        if bit_rate:
            stream.bit_rate = bit_rate
        stream.options = options
        limit = math.inf if seconds is None else seconds * float(rate)
        for n, frame in enumerate(src.decode(video=0)):
            if n >= limit:
                break
            scaled = frame.reformat(width=size[0], height=size[1], format="yuv420p")
            scaled.pts = n
            scaled.time_base = Fraction(1) / rate
            for packet in stream.encode(scaled):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return target


def loop(segment: Path, target: Path, times: int) -> Path:
    """``segment`` played ``times`` times in one file (packets copied, timestamps shifted)."""
    with av.open(str(segment)) as first:
        video = first.streams.video[0]
        last = max(int(p.pts or 0) + int(p.duration or 0) for p in first.demux(video) if p.size)
    with av.open(str(target), "w") as out:
        stream = None
        for n in range(times):
            with av.open(str(segment)) as src:
                video = src.streams.video[0]
                if stream is None:
                    stream = out.add_stream_from_template(video)
                for packet in src.demux(video):
                    if not packet.size or packet.pts is None or packet.dts is None:
                        continue
                    packet.pts += n * last
                    packet.dts += n * last
                    packet.stream = stream
                    out.mux(packet)
    return target


def make_clips(work: Path, max_bytes: int, want: set[str]) -> dict[str, Path]:
    clips: dict[str, Path] = {}
    hd = work / "hd.mp4"
    if not hd.exists():
        print("encoding the 1080p 10 s sample clip...", flush=True)
        made: SampleClip = make_sample(work, SampleSpec(seconds=10, gop=30, seed=30), name="hd")
        assert made.video == hd
    clips["hd"] = hd
    uhd = work / "uhd.mp4"
    if "uhd" in want and not uhd.exists():
        print("encoding the 4K clip (the 1080p one scaled up)...", flush=True)
        # x264's veryfast with medium's reference count (3) and B-frames: the decoder holds
        # what a typical encoder's stream makes it hold.
        reencode(
            hd,
            uhd,
            size=(3840, 2160),
            options={"preset": "veryfast", "g": "30", "x264-params": "ref=3:bframes=3"},
        )
    if "uhd" in want:
        clips["uhd"] = uhd
    long = work / "long.mp4"
    segment = work / "segment.mp4"
    if want & {"long", "segment"} and not (long.exists() and segment.exists()):
        seconds, times = 10, 11  # 110 s, under the 120 s duration limit
        target = 0.95 * max_bytes
        bit_rate = int(target * 8 / (seconds * times))
        print(
            f"encoding a {seconds} s segment at {bit_rate / 1e6:.0f} Mbit/s (CBR with filler)"
            f" and looping it {times} times...",
            flush=True,
        )
        segment = reencode(
            hd,
            work / "segment.mp4",
            size=(1920, 1080),
            bit_rate=bit_rate,
            options={
                "preset": "ultrafast",
                "g": "30",
                "x264-params": "nal-hrd=cbr:force-cfr=1",
                "minrate": str(bit_rate),
                "maxrate": str(bit_rate),
                "bufsize": str(bit_rate // 8),
            },
        )
        loop(segment, long, times)
    if "long" in want:
        clips["long"] = long
    if "segment" in want:
        clips["segment"] = segment
    return clips


# --- the service ---------------------------------------------------------------------------
def status_mb(pid: int, field: str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return 0.0


async def wait_for_outcome(
    settings: Settings, clip_ids: set[str], timeout: float
) -> dict[str, str]:
    """Wait until each clip has a FramesReady (on the dispatcher's queue) or a ClipFailed.

    ``settings`` must be the run's shared user (``LocalPipeline.admin``): the operator identity
    a run acts as may neither read the dispatcher's queue nor declare a queue of its own.
    """
    import aio_pika

    outcome: dict[str, str] = {}
    connection = await aio_pika.connect(settings.broker.amqp_url.get_secret_value())
    try:
        channel = await connection.channel()
        queues = [
            await channel.get_queue(settings.names.queue("dispatcher"), ensure=True),
        ]
        failed_queue = await channel.declare_queue(
            f"{settings.names.queue('bench')}-{uuid.uuid4().hex[:6]}", exclusive=True
        )
        exchange = await channel.get_exchange(settings.names.exchange, ensure=True)
        await failed_queue.bind(exchange, routing_key="ClipFailed")
        queues.append(failed_queue)
        deadline = time.monotonic() + timeout
        while set(outcome) < clip_ids and time.monotonic() < deadline:
            got = False
            for queue in queues:
                message = await queue.get(no_ack=True, fail=False)
                if message is None:
                    continue
                got = True
                event = decode_event(message.body)
                clip_id = getattr(event.payload, "clip_id", "")
                if event.type == "ClipFailed":
                    outcome[clip_id] = "failed: " + str(getattr(event.payload, "reason", ""))
                else:
                    outcome.setdefault(clip_id, "ok")
            if not got:
                await asyncio.sleep(0.05)
    finally:
        await connection.close()
    return outcome


def spawn_ingest(run: LocalPipeline, log: Path) -> subprocess.Popen[bytes]:
    # its health socket is bound here and handed down (shared/listening.py)
    with listen() as health, log.open("ab") as out:
        port = port_of(health)
        handed = hand_over({"health": health})
        process = subprocess.Popen(
            [sys.executable, "-m", "services.ingest"],
            env={**run.env_for("ingest", port), **handed.env},
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            pass_fds=handed.fds,
        )
    process.port = port  # type: ignore[attr-defined]
    return process


def _answers(port: int) -> bool:
    import urllib.request

    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1):
            return True
    except OSError:
        return False


async def wait_ready(process: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    port = process.port  # type: ignore[attr-defined]
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"ingest exited with {process.returncode}")
        if await asyncio.to_thread(_answers, port):
            return
        await asyncio.sleep(0.2)
    raise RuntimeError("ingest not ready")


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


# --- checking frames -----------------------------------------------------------------------
async def check_frames(
    store: S3Store, settings: Settings, clip_id: str, fps: float, video: Path
) -> str:
    """'' when every uploaded frame is byte-identical to the expected one, else the problem."""
    layout = ClipLayout(settings.names.bucket, clip_id, fps)
    index = FrameIndex.model_validate(await store.get_json(layout.bucket, layout.frame_index_key))
    frames = sorted(index.frames, key=lambda f: f.frame_no)
    source_fps = index.source_fps
    expected = [math.ceil(k * source_fps / fps - 1e-9) for k in range(len(frames))]
    if [f.frame_no for f in frames] != list(range(len(frames))):
        return "frame numbers are not 0..n-1"
    if [f.source_frame for f in frames] != expected:
        return "source frames differ from the first at or after k/fps"
    wanted: dict[int, list[int]] = {}
    for f in frames:
        wanted.setdefault(f.source_frame, []).append(f.frame_no)
    mismatched = 0
    checked = 0
    with av.open(str(video)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        last = max(wanted)
        for position, frame in enumerate(container.decode(stream)):  # presentation order
            for k in wanted.get(position, ()):
                mine = await store.get_bytes(layout.bucket, layout.frame_key(k))
                checked += 1
                if mine != encode_jpeg(frame, settings.ingest.jpeg_quality):
                    mismatched += 1
            if position >= last:
                break
    if checked != len(frames):
        return f"only {checked} of {len(frames)} frames found in the full decode"
    return f"{mismatched} of {checked} frames differ" if mismatched else ""


# --- main ----------------------------------------------------------------------------------
async def run_case(
    run: LocalPipeline, settings: Settings, aws: AwsClients, case: Case, video: Path, work: Path
) -> tuple[float, float, int, str]:
    process = spawn_ingest(run, work / "ingest.log")
    try:
        await wait_ready(process)
        rest = status_mb(process.pid, "VmRSS")
        clip_id = f"bench-{case.clip}-{uuid.uuid4().hex[:8]}"
        payload = await upload_clip(
            settings,
            video,
            *_attributes(),
            fps=case.fps,
            workflows=["vehicles"],
            clip_id=clip_id,
            aws=aws,
        )
        timeline: list[tuple[float, float]] = []
        watching = asyncio.Event()

        async def watch() -> None:
            # RSS over time, for --timeline (where the peak happens)
            begin = time.monotonic()
            while not watching.is_set() and process.poll() is None:
                timeline.append((time.monotonic() - begin, status_mb(process.pid, "VmRSS")))
                await asyncio.sleep(0.05)

        watcher = asyncio.create_task(watch())
        outcome = await wait_for_outcome(run.admin or settings, {payload.clip_id}, timeout=1800)
        watching.set()
        await watcher
        peak = status_mb(process.pid, "VmHWM")
        if TIMELINE:
            step = max(1, len(timeline) // 40)
            print(" ".join(f"{t:.1f}s:{m:.0f}" for t, m in timeline[::step]))
    finally:
        stop(process)
    result = outcome.get(payload.clip_id, "timed out")
    if result != "ok":
        return rest, peak, 0, result
    store = S3Store(aws)
    problem = await check_frames(store, settings, payload.clip_id, case.fps, video)
    layout = ClipLayout(settings.names.bucket, payload.clip_id, case.fps)
    index = FrameIndex.model_validate(await store.get_json(layout.bucket, layout.frame_index_key))
    return rest, peak, len(index.frames), problem or "identical"


def _attributes() -> tuple[DriveAttributes, ClipAttributes]:
    drive = DriveAttributes(
        drive_id="bench-drive", weather="clear", time_of_day="daytime", route="I-280 N"
    )
    return drive, ClipAttributes(scene="highway", traffic="free-flowing", traffic_density="low")


async def throughput(
    run: LocalPipeline,
    settings: Settings,
    aws: AwsClients,
    video: Path,
    clips: int,
    replicas: int,
    work: Path,
) -> tuple[float, float]:
    """Clips/min over ``clips`` clips published at once, and the highest peak RSS of a replica."""
    processes = [spawn_ingest(run, work / f"ingest-{n}.log") for n in range(replicas)]
    try:
        for process in processes:
            await wait_ready(process)
        ids = set()
        started = time.monotonic()
        for _ in range(clips):
            payload = await upload_clip(
                settings,
                video,
                *_attributes(),
                fps=1,
                workflows=["vehicles"],
                clip_id=f"tp-{uuid.uuid4().hex[:10]}",
                aws=aws,
            )
            ids.add(payload.clip_id)
        outcome = await wait_for_outcome(run.admin or settings, ids, timeout=1800)
        wall = time.monotonic() - started
        peaks = [status_mb(p.pid, "VmHWM") for p in processes]
    finally:
        for process in processes:
            stop(process)
    bad = {k: v for k, v in outcome.items() if v != "ok"}
    if len(outcome) < clips or bad:
        raise RuntimeError(f"throughput run incomplete: {len(outcome)}/{clips}, {bad}")
    return clips / wall * 60, max(peaks)


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", type=Path, default=None, help="Keep (and reuse) clips here.")
    parser.add_argument("--clips", type=int, default=8, help="Clips per throughput run.")
    parser.add_argument("--skip-long", action="store_true")
    parser.add_argument("--skip-4k", action="store_true")
    parser.add_argument("--skip-throughput", action="store_true")
    parser.add_argument("--only", default="", help="Comma-separated case indices to run.")
    parser.add_argument(
        "--env", action="append", default=[], help="KEY=VALUE for the service (repeatable)."
    )
    parser.add_argument("--timeline", action="store_true", help="Print RSS over each case.")
    args = parser.parse_args()
    global TIMELINE
    TIMELINE = args.timeline
    work = args.keep or Path(tempfile.mkdtemp(prefix="lava-ingest-memory-"))
    work.mkdir(parents=True, exist_ok=True)
    cases = [c for c in CASES if not (args.skip_long and c.clip == "long")]
    cases = [c for c in cases if not (args.skip_4k and c.clip == "uhd")]
    if args.only:
        cases = [CASES[int(i)] for i in args.only.split(",")]
    config = PipelineConfig(
        namespace=f"im{uuid.uuid4().hex[:6]}",
        run_dir=work / "run",
        extra_env={"LAVA_LOG__LEVEL": "WARNING", **dict(e.split("=", 1) for e in args.env)},
    )
    rows, rates = await measure(config, work, cases, args)
    failed = print_results(rows, rates, args.clips)
    if args.keep is None:
        shutil.rmtree(work, ignore_errors=True)
    return 1 if failed else 0


# A case measured: the case, its clip's size, RSS at rest and at peak (MB), frames, frame check.
Row = tuple[Case, int, float, float, int, str]


async def measure(
    config: PipelineConfig, work: Path, cases: list[Case], args: argparse.Namespace
) -> tuple[list[Row], list[tuple[int, float, float]]]:
    """Every case on a pipeline of stand-ins only; then throughput with 1 and 2 replicas."""
    run = LocalPipeline(config)
    settings = await run.start(services=())
    rows: list[Row] = []
    rates: list[tuple[int, float, float]] = []
    try:
        clips = await asyncio.to_thread(
            make_clips, work, settings.ingest.max_bytes, {c.clip for c in cases}
        )
        async with AwsClients(settings) as aws:
            for case in cases:
                video = clips[case.clip]
                rest, peak, frames, check = await run_case(run, settings, aws, case, video, work)
                rows.append((case, video.stat().st_size, rest, peak, frames, check))
                print(
                    f"{case.name:<11} {case.fps:>3g} fps: {frames:>4} frames, "
                    f"{video.stat().st_size / MB:7.1f} MB clip, RSS at rest {rest:5.0f} MB, "
                    f"peak {peak:5.0f} MB; frames {check}",
                    flush=True,
                )
            if not args.skip_throughput:
                for replicas in (1, 2):
                    rate, peak = await throughput(
                        run, settings, aws, clips["hd"], args.clips, replicas, work
                    )
                    rates.append((replicas, rate, peak))
                    print(f"{replicas} replica(s): {rate:.1f} clips/min", flush=True)
    finally:
        await run.stop()
    return rows, rates


def segment_peaks(rows: list[Row]) -> dict[int, float]:
    """The 10 s segment's peak by frames extracted: the long clip (the segment looped, the
    same stream 11 times longer) is judged against the segment with as many frames."""
    return {r[4]: r[3] for r in rows if r[0].clip == "segment"}


def judge(case: Case, peak: float, frames: int, segments: dict[int, float]) -> tuple[str, bool]:
    """A case's bound (as printed) and whether its peak is within it."""
    if case.goal != "long":
        return f"<= {GOALS_MB[case.goal]} MB", peak <= GOALS_MB[case.goal]
    segment = segments.get(frames)
    if segment is None:  # the segment case was not run
        return "-", True
    bound = f"<= its 10 s segment ({segment:.0f} MB), {frames} frames too, + 3 %"
    return bound, peak <= segment * (1 + FLAT_TOLERANCE)


def print_results(rows: list[Row], rates: list[tuple[int, float, float]], clips: int) -> bool:
    """The table against the goals; True when a goal was not met."""
    print("\npeak RSS of the ingest service (VmHWM), default settings\n")
    print(
        f"{'case':<11} {'fps':>4} {'frames':>6} {'clip MB':>8} {'rest MB':>8} {'peak MB':>8}  goal"
    )
    failed = False
    segments = segment_peaks(rows)
    for case, size, rest, peak, frames, check in rows:
        goal, ok = judge(case, peak, frames, segments)
        ok = ok and check == "identical"
        failed |= not ok
        print(
            f"{case.name:<11} {case.fps:>4g} {frames:>6} {size / MB:>8.1f} {rest:>8.0f} "
            f"{peak:>8.0f}  {goal}: {'met' if ok else 'NOT met'} (frames {check})"
        )
    for replicas, rate, peak in rates:
        print(
            f"throughput, {replicas} ingest replica(s), {clips} x 1080p 10 s at 1 fps: "
            f"{rate:.1f} clips/min (peak RSS of a replica, clips in parallel: {peak:.0f} MB)"
        )
    return failed


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
