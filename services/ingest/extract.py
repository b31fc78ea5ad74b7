"""Frames at a requested rate, chosen by presentation timestamp, decoded as little as possible.

Sample k is the first frame whose presentation time is at or after ``k / fps`` seconds from
the clip's first frame. The clip is demuxed once (cheap: no decoding) which gives every
frame's timestamp and the keyframe structure; from that we know exactly which frames are
needed before decoding any.

The compressed packets are kept in memory between demuxing and decoding (a 10 s 1080p clip is
5-20 MB; ingest refuses files above ``LAVA_INGEST_MAX_BYTES``).

Decode strategy, chosen per keyframe group (GOP) from the stream itself:
- a GOP holding no needed frame is never decoded;
- inside a needed GOP, decoding stops once its last needed frame is out, and the decoder is
  drained and reset before the next needed GOP (the packet-level equivalent of seeking to the
  keyframe before the next sample).
When keyframes are at least as dense as samples, this decodes about one frame per sample (what
seeking per sample does); when they are sparse, it decodes sequentially and skips the tail of
each GOP after its last sample. Decoding uses FFmpeg's threads; JPEG encoding (libjpeg-turbo through
simplejpeg, straight from the YUV planes) runs on a thread pool beside it.
"""

from __future__ import annotations

import itertools
import os
import threading
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import av

# Comparing float times: a frame within this of k/fps counts as "at" it.
_EPSILON = 1e-6
# Draining the decoder to skip a GOP's tail idles its threads for a few frames' time; a tail
# shorter than this is cheaper to decode through (measured: a drain costs ~10 frame decodes).
_MIN_TAIL_TO_SKIP = 12
# How much faster FFmpeg's frame threads decode one GOP than a single thread (measured ~1.6
# on two cores); GOP-parallel decoding is chosen when it beats that.
_FRAME_THREAD_SPEEDUP = 1.6


class ClipError(ValueError):
    """The clip cannot be used; the message is one line a person can act on."""


@dataclass(frozen=True)
class VideoInfo:
    container: str
    codec: str
    width: int
    height: int
    frame_count: int
    duration: float
    source_fps: float
    keyframes: int
    has_b_frames: bool

    @property
    def mean_gop(self) -> float:
        return self.frame_count / max(1, self.keyframes)


@dataclass(frozen=True)
class FrameSample:
    """Sample ``index`` of the clip: the source frame chosen for time ``index / fps``."""

    index: int
    timestamp: float  # seconds from the clip's first frame
    source_frame: int  # position of the frame in presentation order
    jpeg: bytes


@dataclass
class ExtractionStats:
    strategy: str = ""
    decoded_frames: int = 0
    skipped_gops: int = 0
    samples: int = 0
    corrupt_frames: int = 0


@dataclass
class _Gop:
    packets: list[Any] = field(default_factory=list)
    needed: set[int] = field(default_factory=set)  # pts values of needed frames in this GOP


def _container_signature(path: Path) -> str | None:
    """The container a file claims to be by its first bytes, if it is a known video one."""
    with path.open("rb") as f:
        head = f.read(12)
    if head[4:8] == b"ftyp":
        return "MP4/MOV"
    if head[:4] == b"\x1a\x45\xdf\xa3":
        return "Matroska/WebM"
    return None


def _open(path: Path) -> Any:
    try:
        return av.open(str(path))
    except av.error.InvalidDataError as exc:
        claimed = _container_signature(path)
        if claimed is not None:
            raise ClipError(f"truncated or corrupt {claimed} file ({_av_reason(exc)})") from None
        raise ClipError(f"not a readable video file ({_av_reason(exc)})") from None
    except av.error.FFmpegError as exc:
        raise ClipError(f"could not open the clip ({_av_reason(exc)})") from None


def _av_reason(exc: BaseException) -> str:
    text = getattr(exc, "strerror", None) or str(exc)
    return str(text).split(":")[0].strip() if text else type(exc).__name__


def sample_times(frame_times: list[float], fps: float) -> list[tuple[int, float, int]]:
    """(sample index, target time, source frame position) for every sample the clip holds.

    ``frame_times`` are the presentation times of the frames, sorted, relative to the first.
    """
    picks: list[tuple[int, float, int]] = []
    position = 0
    k = 0
    while True:
        target = k / fps
        while position < len(frame_times) and frame_times[position] < target - _EPSILON:
            position += 1
        if position >= len(frame_times):
            return picks
        picks.append((k, target, position))
        k += 1


class FrameExtractor:
    """Extracts JPEG frames from one local clip file."""

    def __init__(
        self,
        path: Path,
        *,
        jpeg_quality: int = 90,
        decode_threads: int | None = None,
        encode_threads: int = 2,
    ) -> None:
        self.path = path
        self.jpeg_quality = jpeg_quality
        # Frame threads, one per core: measured faster here than FFmpeg's default of cores + 1.
        self.decode_threads = decode_threads or os.cpu_count() or 2
        self.encode_threads = encode_threads
        self.stats = ExtractionStats()
        self._container = _open(path)
        try:
            self._load()
        except BaseException:
            self._container.close()
            raise

    def close(self) -> None:
        self._container.close()

    def __enter__(self) -> FrameExtractor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- probing ----------------------------------------------------------------------------
    def _load(self) -> None:
        container = self._container
        if not container.streams.video:
            raise ClipError("the file has no video stream")
        stream = container.streams.video[0]
        ctx = stream.codec_context
        if stream.time_base is None:
            raise ClipError("the video stream has no time base")
        self._stream = stream
        self._time_base: Fraction = stream.time_base
        packets = []
        try:
            for packet in container.demux(stream):
                if packet.size == 0:
                    continue
                if packet.pts is None:
                    raise ClipError("the video stream has frames without timestamps")
                packets.append(packet)
        except av.error.FFmpegError as exc:
            raise ClipError(f"truncated or corrupt video ({_av_reason(exc)})") from None
        if not packets:
            raise ClipError("the video stream holds no frames")
        if stream.frames and len(packets) < stream.frames:
            raise ClipError(
                f"truncated video: {len(packets)} of the {stream.frames} frames its header "
                "announces are present"
            )
        if not packets[0].is_keyframe:
            raise ClipError("the video does not start with a keyframe (truncated at the start?)")
        self._packets = packets
        pts_sorted = sorted(p.pts for p in packets)
        self._first_pts = pts_sorted[0]
        self._pts_sorted = pts_sorted
        self._frame_times = [float((pts - self._first_pts) * self._time_base) for pts in pts_sorted]
        last = packets[-1]
        frame_duration = float((last.duration or 0) * self._time_base) or (
            1 / float(stream.average_rate) if stream.average_rate else 0.0
        )
        duration = self._frame_times[-1] + frame_duration
        rate = stream.average_rate or stream.guessed_rate
        decode_order_pts = [p.pts for p in packets]
        self.info = VideoInfo(
            container=container.format.name,
            codec=ctx.name,
            width=ctx.width,
            height=ctx.height,
            frame_count=len(packets),
            duration=duration,
            source_fps=float(rate) if rate else len(packets) / max(duration, _EPSILON),
            keyframes=sum(1 for p in packets if p.is_keyframe),
            has_b_frames=decode_order_pts != pts_sorted,
        )

    # --- extraction -------------------------------------------------------------------------
    def plan(self, fps: float) -> list[tuple[int, float, int]]:
        return sample_times(self._frame_times, fps)

    def _gops(self, needed_pts: set[int]) -> list[_Gop]:
        gops: list[_Gop] = []
        for packet in self._packets:
            if packet.is_keyframe or not gops:
                gops.append(_Gop())
            gop = gops[-1]
            gop.packets.append(packet)
            if packet.pts in needed_pts:
                gop.needed.add(packet.pts)
        # Open GOPs: a frame presented before its GOP's keyframe may reference the previous
        # GOP, so that GOP must be decoded too.
        for i in range(1, len(gops)):
            key_pts = gops[i].packets[0].pts
            if any(pts < key_pts for pts in gops[i].needed) and not gops[i - 1].needed:
                gops[i - 1].needed.add(-1)  # decode it all, emit nothing from it
        return gops

    def samples(self, fps: float) -> Iterator[FrameSample]:
        """Yield the samples in order; raises :class:`ClipError` on undecodable input."""
        if not 0 < fps <= self.info.source_fps + _EPSILON:
            raise ClipError(
                f"requested {fps:g} frames/s but the clip has {self.info.source_fps:g} frames/s"
            )
        plan = self.plan(fps)
        wanted: dict[int, list[tuple[int, int]]] = {}
        for k, _target, position in plan:
            wanted.setdefault(self._pts_sorted[position], []).append((k, position))
        gops = self._gops(set(wanted))
        work = self._work(gops, decode_tails=True)
        self.stats = ExtractionStats(skipped_gops=len(gops) - len(work), samples=len(plan))
        decoded = sum(last + 1 for _, last in work)
        biggest = max((last + 1 for _, last in work), default=0)
        workers = self.decode_threads
        # Independent GOPs decode in parallel with no waiting between frames, which beats
        # FFmpeg's frame threads - unless one GOP holds most of the work (sparse keyframes).
        # Open GOPs (frames shown before their keyframe, referencing the previous GOP) need one
        # decoder across GOP boundaries.
        parallel = (
            workers > 1
            and len(work) > 1
            and biggest * _FRAME_THREAD_SPEEDUP < decoded
            and not self._open_gops(gops)
        )
        try:
            if parallel:
                work = self._work(gops, decode_tails=False)  # no drains to avoid in parallel
                self.stats.strategy = f"GOP-parallel ({len(work)} GOPs on {workers} decoders)"
                yield from self._ordered(self._gop_parallel(work, wanted, workers), len(plan))
            else:
                self.stats.strategy = "sequential (frame-threaded, skipping unneeded GOP tails)"
                yield from self._ordered(self._sequential(gops, work, wanted), len(plan))
        except av.error.FFmpegError as exc:
            raise ClipError(f"truncated or corrupt video ({_av_reason(exc)})") from None
        if self.stats.corrupt_frames:
            raise ClipError(
                f"truncated or corrupt video: {self.stats.corrupt_frames} corrupt frames"
            )

    @staticmethod
    def _open_gops(gops: list[_Gop]) -> bool:
        return any(p.pts < g.packets[0].pts for g in gops[1:] for p in g.packets)

    def _work(self, gops: list[_Gop], decode_tails: bool) -> list[tuple[_Gop, int]]:
        """The GOPs to decode, each with the index of the last packet to feed.

        With ``decode_tails``, a short tail after a GOP's last sample is decoded through when
        the next GOP is needed too: one continuous decode beats a drain of a threaded decoder.
        """
        work = []
        for gi, gop in enumerate(gops):
            if not gop.needed:
                continue
            if -1 in gop.needed:
                last = len(gop.packets) - 1
            else:
                last = max(i for i, p in enumerate(gop.packets) if p.pts in gop.needed)
                following = gops[gi + 1] if gi + 1 < len(gops) else None
                tail = len(gop.packets) - 1 - last
                short = tail < _MIN_TAIL_TO_SKIP
                if decode_tails and short and following is not None and following.needed:
                    last = len(gop.packets) - 1
            work.append((gop, last))
        return work

    def _ordered(
        self, produced: Iterator[list[tuple[int, int, bytes]]], expected: int
    ) -> Iterator[FrameSample]:
        """Samples in index order from batches that may arrive out of order."""
        pending: dict[int, tuple[int, bytes]] = {}
        next_out = 0
        for batch in produced:
            for k, position, jpeg in batch:
                pending[k] = (position, jpeg)
            while next_out in pending:
                position, jpeg = pending.pop(next_out)
                yield FrameSample(next_out, self._frame_times[position], position, jpeg)
                next_out += 1
        if next_out < expected:
            raise ClipError(
                f"truncated or corrupt video: {expected - next_out} of {expected} frames "
                "could not be decoded"
            )

    def _check(self, frame: Any) -> None:
        self.stats.decoded_frames += 1
        if getattr(frame, "is_corrupt", False):
            self.stats.corrupt_frames += 1

    def _sequential(
        self,
        gops: list[_Gop],
        work: list[tuple[_Gop, int]],
        wanted: dict[int, list[tuple[int, int]]],
    ) -> Iterator[list[tuple[int, int, bytes]]]:
        stream = self._stream
        stream.thread_type = "FRAME"
        stream.thread_count = self.decode_threads
        ctx = stream.codec_context
        with ThreadPoolExecutor(max_workers=self.encode_threads) as pool:
            futures: list[tuple[int, int, Future[bytes]]] = []

            def take(frame: Any) -> None:
                self._check(frame)
                for k, position in wanted.get(frame.pts, ()):
                    futures.append((k, position, pool.submit(self._encode, frame)))

            fed_through: _Gop | None = None  # the GOP whose packets were all fed, if any
            for gop, last in work:
                index = gops.index(gop)
                if fed_through is None or index == 0 or gops[index - 1] is not fed_through:
                    ctx.flush_buffers()
                for packet in gop.packets[: last + 1]:
                    for frame in ctx.decode(packet):
                        take(frame)
                following = gops[index + 1] if index + 1 < len(gops) else None
                if last == len(gop.packets) - 1 and following is not None and following.needed:
                    fed_through = gop  # the next GOP continues without a drain
                else:
                    fed_through = None
                    for frame in ctx.decode(None):  # drain what this GOP still holds
                        take(frame)
                done = [(k, p, f.result()) for k, p, f in futures if f.done()]
                futures = [x for x in futures if not x[2].done()]
                yield done
            yield [(k, p, f.result()) for k, p, f in futures]

    def _gop_parallel(
        self,
        work: list[tuple[_Gop, int]],
        wanted: dict[int, list[tuple[int, int]]],
        workers: int,
    ) -> Iterator[list[tuple[int, int, bytes]]]:
        template = self._stream.codec_context
        local = threading.local()

        def decode(gop: _Gop, last: int) -> tuple[list[tuple[int, int, bytes]], int, int]:
            ctx = getattr(local, "ctx", None)
            if ctx is None:
                ctx = av.CodecContext.create(template.name, "r")
                ctx.extradata = template.extradata
                ctx.thread_count = 1
                local.ctx = ctx
            else:
                ctx.flush_buffers()
            out: list[tuple[int, int, bytes]] = []
            count = corrupt = 0

            def take(frame: Any) -> None:
                nonlocal count, corrupt
                count += 1
                corrupt += bool(getattr(frame, "is_corrupt", False))
                for k, position in wanted.get(frame.pts, ()):
                    out.append((k, position, self._encode(frame)))

            for packet in gop.packets[: last + 1]:
                for frame in ctx.decode(packet):
                    take(frame)
            for frame in ctx.decode(None):
                take(frame)
            return out, count, corrupt

        with ThreadPoolExecutor(max_workers=workers) as pool:
            in_flight: list[Future[tuple[list[tuple[int, int, bytes]], int, int]]] = []
            queue = iter(work)
            for item in itertools.islice(queue, 2 * workers):
                in_flight.append(pool.submit(decode, *item))
            while in_flight:
                batch, count, corrupt = in_flight.pop(0).result()
                self.stats.decoded_frames += count
                self.stats.corrupt_frames += corrupt
                following = next(queue, None)
                if following is not None:
                    in_flight.append(pool.submit(decode, *following))
                yield batch

    def _encode(self, frame: Any) -> bytes:
        # Imported here, on the encoding thread: the import (~40 ms) then overlaps with the
        # decoder's first frames instead of delaying them (it matters for a CLI run).
        import numpy as np
        import simplejpeg

        # JPEG (JFIF) wants full-range YCbCr; converting the range (not the colour space) and
        # compressing the planes directly skips two colour conversions an RGB path would do.
        full = frame if frame.format.name == "yuvj420p" else frame.reformat(format="yuvj420p")
        y, u, v = (
            np.frombuffer(p, np.uint8).reshape(p.height, p.line_size)[:, : p.width]
            for p in full.planes
        )
        jpeg = simplejpeg.encode_jpeg_yuv_planes(y, u, v, quality=self.jpeg_quality)
        return bytes(jpeg)
