"""Frames at a requested rate, chosen by presentation timestamp, decoded as little as possible.

Sample k is the first frame whose presentation time is at or after ``k / fps`` seconds from
the clip's first frame. The clip is demuxed once without decoding and without keeping any
packet (only each packet's timestamps and keyframe flag), which gives every frame's timestamp
and the keyframe structure; from that we know exactly which frames are needed before decoding
any. Decoding then reads the packets from the file again, so memory does not grow with the
clip: what is held is the decoders' reference frames and a fixed number of JPEGs.

Decode strategy, chosen per keyframe group (GOP) from the stream itself:
- a GOP holding no needed frame is never decoded;
- inside a needed GOP, decoding stops once its last needed frame is out, and the decoder is
  drained and reset before the next needed GOP (the packet-level equivalent of seeking to the
  keyframe before the next sample).
When keyframes are at least as dense as samples, this decodes about one frame per sample (what
seeking per sample does); when they are sparse, it decodes sequentially and skips the tail of
each GOP after its last sample. Decoding uses FFmpeg's threads, or one single-threaded decoder
per worker, each reading its GOPs through its own demuxer (seeking to the GOP's keyframe); JPEG
encoding (libjpeg-turbo through simplejpeg, straight from the YUV planes) runs beside it.

Samples come out in no particular order (each carries its index); at most ``frame_buffer``
JPEGs wait for the consumer, and a decoded frame waits only while it is being encoded,
whatever the fps. With ``decode_memory``, the number of decoders is capped so that their
pictures (``PICTURES_PER_DECODER`` each, measured) fit in it: a 4K clip gets fewer decoders
than a 1080p one.

The file is opened with FFmpeg's ``protocol_whitelist=file`` and ``format_whitelist`` set to
the accepted containers: a playlist (HLS, concat) or any other demuxer that would open further
files or URLs is refused before it reads anything else.
"""

from __future__ import annotations

import contextlib
import queue
import sys
import threading
from array import array
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import av

from shared.cgroup import read_limits

# Containers accepted when the caller names none (the LAVA_INGEST__CONTAINERS default).
DEFAULT_CONTAINERS = frozenset({"mp4", "mov", "matroska", "webm"})
# Pictures one H.264 decoder holds at its peak, measured with PyAV 18 (FFmpeg 7) on x264
# streams with 3 references and 3 B-frames: +31 MB at 1080p (3.1 MB a picture), +97 MB at 4K
# (12.4 MB): the references, the reordering delay, the picture being decoded and the pool's
# spare. Its encoder adds up to two: the full-range copy being encoded, and in GOP-parallel
# decoding the decoded frame beside it.
# bench/ingest_memory_bench.py measures the whole service.
DECODER_FRAMES = 8
ENCODER_FRAMES = 2
PICTURES_PER_DECODER = DECODER_FRAMES + ENCODER_FRAMES


def picture_bytes(width: int, height: int) -> int:
    """One decoded YUV 4:2:0 picture."""
    return width * height * 3 // 2


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
    start: int  # decode-order index of its keyframe among the video packets
    pts: array[int] = field(default_factory=lambda: array("q"))  # its packets', decode order
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


def _open(path: Path, containers: Iterable[str]) -> Any:
    accepted = ",".join(sorted(containers))
    # Only the local file, only the accepted demuxers: FFmpeg's HLS, concat and similar
    # demuxers open the files or URLs a playlist names (a clip must never read /etc or the
    # pod's service-account token into frames), so they must not even be probed into use.
    options = {"protocol_whitelist": "file", "format_whitelist": accepted}
    try:
        return av.open(str(path), container_options=options)
    except av.error.ArgumentError:
        # FFmpeg answers EINVAL when the probed demuxer is not on the format whitelist.
        raise ClipError(
            f"not a video in an accepted container format (accepted: {accepted.replace(',', ', ')}"
            "; playlists and files that reference other files are refused)"
        ) from None
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


def sample_times(frame_times: Sequence[float], fps: float) -> list[tuple[int, float, int]]:
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


class _SeekMissed(Exception):
    """The demuxer's seek landed after the keyframe it was asked for."""


_DONE = object()
# What a strategy yields: (sample index, frame position, JPEG).
Produced = tuple[int, int, bytes]


class _Encoders:
    """JPEG encoders beside one decoder, in ``pool``.

    The decoder waits for a free encoder before making the next full-range copy, and gives
    each decoded frame back as soon as its copy exists: beside the decoder's own pictures only
    one copy per encoder is alive.
    """

    def __init__(
        self,
        pool: ThreadPoolExecutor,
        threads: int,
        quality: int,
        wanted: dict[int, list[tuple[int, int]]],
    ) -> None:
        self._pool = pool
        self._threads = threads
        self._quality = quality
        self._wanted = wanted
        self._pending: deque[tuple[int, int, Future[bytes]]] = deque()
        self._finished: list[Produced] = []

    def take_all(self, frames: Iterable[Any], check: Callable[[Any], None]) -> None:
        # A function, so no loop variable keeps a frame alive afterwards.
        for frame in frames:
            check(frame)
            targets = self._wanted.get(frame.pts, ())
            if not targets:
                continue
            while len(self._pending) >= self._threads:
                k, position, future = self._pending.popleft()
                self._finished.append((k, position, future.result()))
            full = full_range(frame)
            frame = None
            for k, position in targets:
                future = self._pool.submit(jpeg_of, full, self._quality)
                self._pending.append((k, position, future))
            full = None

    def ready(self) -> Iterator[Produced]:
        """The JPEGs done so far, without waiting."""
        yield from self._finished
        self._finished.clear()
        while self._pending and self._pending[0][2].done():
            k, position, future = self._pending.popleft()
            yield k, position, future.result()

    def rest(self) -> Iterator[Produced]:
        """Every JPEG still to come, waiting for each."""
        yield from self.ready()
        while self._pending:
            k, position, future = self._pending.popleft()
            yield k, position, future.result()

    def cancel(self) -> None:
        for _, _, future in self._pending:
            future.cancel()


class _Handoff:
    """The bounded queue from GOP decoders to the consumer; once ``stop`` is set, puts give up."""

    def __init__(self, size: int) -> None:
        self.items: queue.Queue[Any] = queue.Queue(maxsize=size)
        self.stop = threading.Event()

    def put(self, item: Any) -> bool:
        while not self.stop.is_set():
            try:
                self.items.put(item, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False


class FrameExtractor:
    """Extracts JPEG frames from one local clip file."""

    def __init__(
        self,
        path: Path,
        *,
        jpeg_quality: int = 90,
        decode_threads: int | None = None,
        encode_threads: int = 2,
        frame_buffer: int = 2,
        decode_memory: int | None = None,
        containers: Iterable[str] = DEFAULT_CONTAINERS,
    ) -> None:
        self.path = path
        self.jpeg_quality = jpeg_quality
        # Frame threads, one per usable core (the cgroup's CPU limit, not the node's cores):
        # measured faster here than FFmpeg's default of cores + 1.
        self.decode_threads = decode_threads or read_limits().usable_cpus()
        self.frame_buffer = max(1, frame_buffer)
        self.containers = frozenset(containers)
        self.stats = ExtractionStats()
        warm_encoder()
        # Kept open for the first decode: a second open would run FFmpeg's stream probing
        # again, which decodes the first frames (~30 ms at 1080p) before any work starts.
        self._probed: Any = _open(path, self.containers)
        try:
            self._load(self._probed)
        except BaseException:
            self.close()
            raise
        if decode_memory is not None:
            each = PICTURES_PER_DECODER * picture_bytes(self.info.width, self.info.height)
            self.decode_threads = min(self.decode_threads, max(1, decode_memory // each))
        # Each encoder holds one decoded frame and its full-range copy: no more of them than
        # decoders (the encoders keep up with the decoders at every size measured).
        self.encode_threads = max(1, min(encode_threads, self.decode_threads))

    def close(self) -> None:
        """Close the probed file if no decode has taken it (decodes close what they open)."""
        container, self._probed = self._probed, None
        if container is not None:
            container.close()

    def __enter__(self) -> FrameExtractor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- probing ----------------------------------------------------------------------------
    def _load(self, container: Any) -> None:
        if not container.streams.video:
            raise ClipError("the file has no video stream")
        stream = container.streams.video[0]
        ctx = stream.codec_context
        if stream.time_base is None:
            raise ClipError("the video stream has no time base")
        self._time_base: Fraction = stream.time_base
        # One pass over the packets keeping only their timestamps: a few numbers per frame,
        # in arrays (8 bytes a number, not a 32-byte int object and its list slot: a 110 s
        # clip's 3,300 packets took 0.4 MB more than its 10 s segment's 300).
        pts = array("q")
        dts = array("q")
        keys = bytearray()
        last_duration = 0
        try:
            for packet in container.demux(stream):
                if packet.size == 0:
                    continue
                if packet.pts is None:
                    raise ClipError("the video stream has frames without timestamps")
                pts.append(packet.pts)
                dts.append(packet.dts if packet.dts is not None else packet.pts)
                keys.append(1 if packet.is_keyframe else 0)
                last_duration = packet.duration or 0
        except av.error.FFmpegError as exc:
            raise ClipError(f"truncated or corrupt video ({_av_reason(exc)})") from None
        if not pts:
            raise ClipError("the video stream holds no frames")
        if stream.frames and len(pts) < stream.frames:
            raise ClipError(
                f"truncated video: {len(pts)} of the {stream.frames} frames its header "
                "announces are present"
            )
        if not keys[0]:
            raise ClipError("the video does not start with a keyframe (truncated at the start?)")
        self._pts, self._dts, self._keys = pts, dts, keys
        pts_sorted = array("q", sorted(pts))
        self._first_pts = pts_sorted[0]
        self._pts_sorted = pts_sorted
        self._frame_times = array(
            "d", (float((p - self._first_pts) * self._time_base) for p in pts_sorted)
        )
        frame_duration = float(last_duration * self._time_base) or (
            1 / float(stream.average_rate) if stream.average_rate else 0.0
        )
        duration = self._frame_times[-1] + frame_duration
        rate = stream.average_rate or stream.guessed_rate
        self.info = VideoInfo(
            container=container.format.name,
            codec=ctx.name,
            width=ctx.width,
            height=ctx.height,
            frame_count=len(pts),
            duration=duration,
            source_fps=float(rate) if rate else len(pts) / max(duration, _EPSILON),
            keyframes=sum(keys),
            has_b_frames=pts != pts_sorted,
        )

    # --- extraction -------------------------------------------------------------------------
    def plan(self, fps: float) -> list[tuple[int, float, int]]:
        return sample_times(self._frame_times, fps)

    def _gops(self, needed_pts: set[int]) -> list[_Gop]:
        gops: list[_Gop] = []
        for i, (pts, key) in enumerate(zip(self._pts, self._keys, strict=True)):
            if key or not gops:
                gops.append(_Gop(start=i))
            gop = gops[-1]
            gop.pts.append(pts)
            if pts in needed_pts:
                gop.needed.add(pts)
        # Open GOPs: a frame presented before its GOP's keyframe may reference the previous
        # GOP, so that GOP must be decoded too.
        for i in range(1, len(gops)):
            key_pts = gops[i].pts[0]
            if any(pts < key_pts for pts in gops[i].needed) and not gops[i - 1].needed:
                gops[i - 1].needed.add(-1)  # decode it all, emit nothing from it
        return gops

    def samples(self, fps: float) -> Iterator[FrameSample]:
        """Yield every sample, in no particular order; raises :class:`ClipError` on bad input."""
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
        produced: Iterator[Produced]
        if parallel:
            work = self._work(gops, decode_tails=False)  # no drains to avoid in parallel
            self.stats.strategy = f"GOP-parallel ({len(work)} GOPs on {workers} decoders)"
            produced = self._gop_parallel(work, wanted, workers)
        else:
            self.stats.strategy = "sequential (frame-threaded, skipping unneeded GOP tails)"
            produced = self._sequential(gops, work, wanted)
        seen: set[int] = set()
        try:
            for k, position, jpeg in produced:
                if k in seen:
                    continue
                seen.add(k)
                yield FrameSample(k, self._frame_times[position], position, jpeg)
        except av.error.FFmpegError as exc:
            raise ClipError(f"truncated or corrupt video ({_av_reason(exc)})") from None
        finally:
            close = getattr(produced, "close", None)
            if close is not None:
                close()
        if self.stats.corrupt_frames:
            raise ClipError(
                f"truncated or corrupt video: {self.stats.corrupt_frames} corrupt frames"
            )
        if len(seen) < len(plan):
            raise ClipError(
                f"truncated or corrupt video: {len(plan) - len(seen)} of {len(plan)} frames "
                "could not be decoded"
            )

    @staticmethod
    def _open_gops(gops: list[_Gop]) -> bool:
        return any(p < g.pts[0] for g in gops[1:] for p in g.pts)

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
                last = len(gop.pts) - 1
            else:
                last = max(i for i, p in enumerate(gop.pts) if p in gop.needed)
                following = gops[gi + 1] if gi + 1 < len(gops) else None
                tail = len(gop.pts) - 1 - last
                short = tail < _MIN_TAIL_TO_SKIP
                if decode_tails and short and following is not None and following.needed:
                    last = len(gop.pts) - 1
            work.append((gop, last))
        return work

    # --- reading packets again ----------------------------------------------------------------
    def _packets(self, container: Any, stream: Any, first: int = 0) -> Iterator[tuple[int, Any]]:
        """(decode-order index, packet) from packet ``first`` on, checked against the probe.

        Seeks to ``first``'s keyframe; when the demuxer lands after it (an index that does not
        match), reads from the start instead.
        """
        try:
            yield from self._packets_after_seek(container, stream, first)
        except _SeekMissed:
            container.seek(0)
            yield from self._packets_from(container.demux(stream), 0, first)

    def _packets_after_seek(
        self, container: Any, stream: Any, first: int
    ) -> Iterator[tuple[int, Any]]:
        # Always: the probed container was read to its end before its first decode.
        container.seek(self._dts[first], stream=stream, backward=True, any_frame=False)
        demuxed = container.demux(stream)
        for packet in demuxed:
            if packet.size == 0:
                continue
            if packet.pts == self._pts[first] and packet.is_keyframe:
                yield first, packet
                yield from self._packets_from(demuxed, first + 1, first + 1)
                return
            if packet.dts is not None and packet.dts > self._dts[first]:
                raise _SeekMissed
        raise _SeekMissed

    def _packets_from(
        self, demuxed: Iterator[Any], index: int, first: int
    ) -> Iterator[tuple[int, Any]]:
        """Packets numbered from ``index``, yielded from ``first`` on."""
        for packet in demuxed:
            if packet.size == 0:
                continue
            if index >= len(self._pts) or packet.pts != self._pts[index]:
                raise ClipError("the clip changed while it was being read")
            if index >= first:
                yield index, packet
            index += 1

    def _take_probed(self) -> Any:
        """The probed container, once (None after that); only the consumer's thread calls it."""
        container, self._probed = self._probed, None
        return container

    def _reopen(self, threads: int, container: Any = None) -> tuple[Any, Any]:
        """``container`` (the probed one) or a new one, its decoder set to ``threads``."""
        if container is None:
            container = _open(self.path, self.containers)
        stream = container.streams.video[0]
        if threads > 1:
            stream.thread_type = "FRAME"
        stream.thread_count = threads
        return container, stream

    def _check(self, frame: Any) -> None:
        self.stats.decoded_frames += 1
        if getattr(frame, "is_corrupt", False):
            self.stats.corrupt_frames += 1

    # --- the two strategies -----------------------------------------------------------------
    def _sequential(
        self,
        gops: list[_Gop],
        work: list[tuple[_Gop, int]],
        wanted: dict[int, list[tuple[int, int]]],
    ) -> Iterator[Produced]:
        if not work:
            return
        container, stream = self._reopen(self.decode_threads, self._take_probed())
        encoders: _Encoders | None = None
        try:
            with ThreadPoolExecutor(max_workers=self.encode_threads) as pool:
                encoders = _Encoders(pool, self.encode_threads, self.jpeg_quality, wanted)
                yield from self._feed(container, stream, gops, work, encoders)
                yield from encoders.rest()
        finally:
            if encoders is not None:
                encoders.cancel()
            container.close()

    def _feed(
        self,
        container: Any,
        stream: Any,
        gops: list[_Gop],
        work: list[tuple[_Gop, int]],
        encoders: _Encoders,
    ) -> Iterator[Produced]:
        """One decoder fed each needed GOP up to its last needed packet; drained between GOPs
        unless the next one continues this one. Yields the JPEGs ready as it goes."""
        ctx = stream.codec_context
        number = {id(g): i for i, g in enumerate(gops)}
        last_of = {number[id(g)]: last for g, last in work}
        gop_of = [gi for gi, g in enumerate(gops) for _ in g.pts]
        final = number[id(work[-1][0])]
        fed_through: int | None = None  # the GOP whose packets were all fed, if any
        for i, packet in self._packets(container, stream, work[0][0].start):
            gi = gop_of[i]
            gop = gops[gi]
            j = i - gop.start
            last = last_of.get(gi)
            if last is None or j > last:
                continue
            if j == 0 and (fed_through is None or gi == 0 or fed_through != gi - 1):
                ctx.flush_buffers()
            encoders.take_all(ctx.decode(packet), self._check)
            yield from encoders.ready()
            if j < last:
                continue
            following = gops[gi + 1] if gi + 1 < len(gops) else None
            if last == len(gop.pts) - 1 and following is not None and following.needed:
                fed_through = gi  # the next GOP continues without a drain
            else:
                fed_through = None
                encoders.take_all(ctx.decode(None), self._check)  # drain what this GOP holds
                yield from encoders.ready()
            if gi == final:
                break

    def _gop_parallel(
        self,
        work: list[tuple[_Gop, int]],
        wanted: dict[int, list[tuple[int, int]]],
        workers: int,
    ) -> Iterator[Produced]:
        # Each worker owns a demuxer and a single-threaded decoder and takes the next GOP when
        # it is free; JPEGs meet in a bounded queue, so a slow consumer pauses the decoders.
        out = _Handoff(self.frame_buffer)
        todo = iter(work)
        lock = threading.Lock()
        probed = self._take_probed()  # the first worker decodes with it
        threads = [
            threading.Thread(
                target=self._gop_worker,
                args=(todo, lock, wanted, out, probed if n == 0 else None),
                name=f"lava-decode-{n}",
                daemon=True,
            )
            for n in range(min(workers, len(work)))
        ]
        for thread in threads:
            thread.start()
        running = len(threads)
        try:
            while running:
                item = out.items.get()
                if item is _DONE:
                    running -= 1
                elif isinstance(item, BaseException):
                    raise item
                else:
                    yield item
        finally:
            out.stop.set()
            for thread in threads:
                while thread.is_alive():
                    with contextlib.suppress(queue.Empty):
                        out.items.get(timeout=0.05)
                thread.join()

    def _gop_worker(
        self,
        todo: Iterator[tuple[_Gop, int]],
        lock: threading.Lock,
        wanted: dict[int, list[tuple[int, int]]],
        out: _Handoff,
        container: Any,
    ) -> None:
        """One decoding thread: takes GOPs from ``todo`` until none is left or ``out`` stops;
        an error is handed to the consumer, raised there. It decodes with ``container`` if
        given, else opens its own; either way it closes it."""
        try:
            container, stream = self._reopen(1, container)
            ctx = stream.codec_context
            used = False
            while not out.stop.is_set():
                with lock:
                    item = next(todo, None)
                if item is None:
                    break
                if used:
                    ctx.flush_buffers()
                used = True
                if not self._decode_gop(container, stream, item, wanted, out, lock):
                    return
        except BaseException as exc:  # handed to the consumer, raised there
            out.put(exc)
        finally:
            if container is not None:
                container.close()
            out.put(_DONE)

    def _decode_gop(
        self,
        container: Any,
        stream: Any,
        item: tuple[_Gop, int],
        wanted: dict[int, list[tuple[int, int]]],
        out: _Handoff,
        lock: threading.Lock,
    ) -> bool:
        """Decode one GOP through its ``last`` packet and drain it; False once ``out`` stopped."""
        gop, last = item
        ctx = stream.codec_context
        count = corrupt = 0

        def take(frames: Iterable[Any]) -> bool:
            nonlocal count, corrupt
            for frame in frames:
                count += 1
                corrupt += bool(getattr(frame, "is_corrupt", False))
                for k, position in wanted.get(frame.pts, ()):
                    if not out.put((k, position, self._encode(frame))):
                        return False
            return True

        for i, packet in self._packets(container, stream, gop.start):
            if not take(ctx.decode(packet)):
                return False
            if i - gop.start >= last:
                break
        if not take(ctx.decode(None)):
            return False
        with lock:
            self.stats.decoded_frames += count
            self.stats.corrupt_frames += corrupt
        return True

    def _encode(self, frame: Any) -> bytes:
        return encode_jpeg(frame, self.jpeg_quality)


def full_range(frame: Any) -> Any:
    """The frame in full-range YUV 4:2:0 (a copy unless it already is)."""
    # JPEG (JFIF) wants full-range YCbCr; converting the range (not the colour space) and
    # compressing the planes directly skips two colour conversions an RGB path would do.
    return frame if frame.format.name == "yuvj420p" else frame.reformat(format="yuvj420p")


def _import_encoder() -> None:
    import numpy  # noqa: F401
    import simplejpeg  # noqa: F401


def warm_encoder() -> None:
    """Import the JPEG encoder (numpy + simplejpeg: ~60-80 ms of CPU) on a thread of its own,
    now, while the caller opens and probes the clip (FFmpeg's stream probing runs without the
    GIL) and a core is idle. Imported later, on the first encoding thread, it ran while both
    cores decoded and lengthened the decode by ~40 ms (5 % of a 1 frame/s extraction at GOP
    250). Python's import lock makes a first encode wait for it, never import it twice."""
    if "simplejpeg" not in sys.modules:
        threading.Thread(target=_import_encoder, name="lava-encoder-import", daemon=True).start()


def jpeg_of(full: Any, quality: int) -> bytes:
    """JPEG of a full-range YUV 4:2:0 frame (libjpeg-turbo, straight from the planes)."""
    # Imported where used (a process that never encodes skips ~60-80 ms and ~12 MB);
    # FrameExtractor starts the import early on a thread of its own (warm_encoder).
    import numpy as np
    import simplejpeg

    y, u, v = (
        np.frombuffer(p, np.uint8).reshape(p.height, p.line_size)[:, : p.width] for p in full.planes
    )
    return bytes(simplejpeg.encode_jpeg_yuv_planes(y, u, v, quality=quality))


def encode_jpeg(frame: Any, quality: int) -> bytes:
    """A decoded frame as JPEG, the way every sample is encoded (deterministic)."""
    return jpeg_of(full_range(frame), quality)
