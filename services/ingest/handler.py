"""ClipIngested -> validated clip -> frames, sequence file, manifest in S3 -> FramesReady.

The clip's record exists (``ingesting``) as soon as its ClipIngested is taken here. Bad input
(not a video, empty, truncated, unsupported codec, missing object, absurd size or duration, fps
above the source's, a foreign bucket) ends as ``ClipFailed`` with a one-line reason, which the
dispatcher writes into that record; the message is acknowledged and the service carries on.
Transient AWS trouble raises, so the bus requeues the message (bounded by the delivery limit).

Idempotent: object keys derive from (clip id, fps); ``frames.json`` is written last and marks
a finished extraction, so a redelivered event re-announces the same tasks with the same event
ids instead of extracting again.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import re
import tempfile
import threading
import time
from pathlib import Path

import structlog

from services.ingest.budget import ByteBudget
from services.ingest.capacity import IngestCapacity, derive_capacity
from services.ingest.extract import ClipError, FrameExtractor, FrameSample, VideoInfo
from shared.clock import Clock, SystemClock
from shared.events import (
    ClipFailed,
    ClipFrames,
    ClipIngested,
    Event,
    FramesReady,
    derived_event_id,
    new_event,
)
from shared.groundtruth.sequence import ManifestLine, SequenceFile, SequenceFrame
from shared.ids import task_id_of
from shared.layout import ClipLayout, FrameIndex, IndexedFrame, parse_s3_uri
from shared.ports import Publish
from shared.settings import IngestSettings
from shared.storage import ObjectInfo, ObjectMissing, ObjectStore, TooLarge
from shared.tasks.clip_records import ClipRecords

log = structlog.get_logger(__name__)


_SAFE_KEY = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/-]{0,1000}")
# Clips are announced only from where the rig uploads them (shared.layout.raw_key).
RAW_PREFIX = "raw/"


class IngestHandler:
    def __init__(
        self,
        settings: IngestSettings,
        store: ObjectStore,
        publish: Publish,
        capacity: IngestCapacity | None = None,
        clips: ClipRecords | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.publish = publish
        self.capacity = capacity or derive_capacity(settings)
        # The clip records: a clip has one from the moment its ClipIngested is accepted here
        # (None: not recorded, for tests of extraction alone).
        self.clips = clips
        self.clock = clock or SystemClock()
        # Messages beyond this wait (unacknowledged) rather than fight over cores and memory.
        self._decoding = asyncio.Semaphore(self.capacity.clips)

    async def handle(self, event: Event[ClipIngested]) -> None:
        clip = event.payload
        started = time.monotonic()
        new = False
        if self.clips is not None:
            tasks = [task_id_of(clip.clip_id, w) for w in clip.workflows]
            new = await self.clips.accept(clip.clip_id, tasks, self.clock.now().timestamp())
        try:
            index = await self.ingest(clip, new=new)
        except ClipError as exc:
            reason = str(exc)
            log.warning("clip refused", clip_id=clip.clip_id, reason=reason)
            await self.publish(
                new_event(
                    ClipFailed(clip_id=clip.clip_id, stage="ingest", reason=reason),
                    clip.clip_id,
                    event_id=derived_event_id(event.event_id, "ClipFailed"),
                )
            )
            return
        await self._announce(clip, index)
        log.info(
            "clip ingested",
            clip_id=clip.clip_id,
            frames=len(index.frames),
            seconds=round(time.monotonic() - started, 3),
        )

    async def _announce(self, clip: ClipIngested, index: FrameIndex) -> None:
        # One FramesReady per task, with an id derived from the task: a redelivery re-emits
        # the same events, which the dispatcher recognizes.
        frames = ClipFrames(
            sequence_uri=index.sequence_uri,
            manifest_uri=index.manifest_uri,
            frame_count=len(index.frames),
            width=index.width,
            height=index.height,
            fps=clip.fps,
        )
        events = [
            new_event(
                FramesReady(
                    task_id=task_id_of(clip.clip_id, workflow),
                    clip_id=clip.clip_id,
                    workflow=workflow,
                    clip_workflows=clip.workflows,
                    drive=clip.drive,
                    clip=clip.clip,
                    frames=frames,
                ),
                task_id_of(clip.clip_id, workflow),
                event_id=derived_event_id(task_id_of(clip.clip_id, workflow), "FramesReady"),
            )
            for workflow in clip.workflows
        ]
        await asyncio.gather(*(self.publish(e) for e in events))

    # --- the work ---------------------------------------------------------------------------
    def _check_source(self, uri: str) -> tuple[str, str]:
        try:
            bucket, key = parse_s3_uri(uri)
        except ValueError as exc:
            raise ClipError(str(exc)) from None
        if bucket not in self.settings.allowed_clip_buckets:
            allowed = ", ".join(sorted(self.settings.allowed_clip_buckets))
            raise ClipError(
                f"bucket {bucket!r} is not allowed (LAVA_INGEST__ALLOWED_BUCKETS: {allowed})"
            )
        if not _SAFE_KEY.fullmatch(key):
            raise ClipError(f"object key {key!r} has characters outside [A-Za-z0-9._/-]")
        if ".." in key.split("/"):
            raise ClipError(f"object key {key!r} has a '..' segment")
        if not key.startswith(RAW_PREFIX):
            raise ClipError(f"object key {key!r} is not under the raw-clips prefix {RAW_PREFIX}")
        return bucket, key

    async def ingest(self, clip: ClipIngested, *, new: bool = False) -> FrameIndex:
        """The clip's frames, extracted now or (a redelivery) found extracted before.

        ``new``: the clip had no record before this event accepted it, so nothing of it can
        have been extracted (frames are written only after the record) and the look for a
        finished extraction - a GetObject that misses - is skipped."""
        bucket, key = self._check_source(clip.video_uri)
        layout = ClipLayout(self.settings.names.bucket, clip.clip_id, clip.fps)
        done = None if new else await self._finished(layout)
        if done is not None:
            log.info("frames already extracted; re-announcing", clip_id=clip.clip_id)
            return done
        work_dir = self.settings.ingest.work_dir
        async with self._decoding:
            with tempfile.TemporaryDirectory(prefix="lava-ingest-", dir=work_dir) as tmp:
                local = Path(tmp) / "clip"
                info = await self._download(clip, bucket, key, local)
                base_time = (clip.captured_at or info.last_modified).timestamp()
                return await self._extract_and_store(clip, layout, local, base_time)

    async def _download(self, clip: ClipIngested, bucket: str, key: str, local: Path) -> ObjectInfo:
        """The clip to ``local``, size-checked on the GetObject's own response (one request:
        no HEAD before it, and the object checked is the one downloaded)."""
        limit = self.settings.ingest.max_bytes

        def check(info: ObjectInfo) -> None:
            if info.size == 0:
                raise ClipError(f"the clip at {clip.video_uri} is empty (0 bytes)")
            if info.size > limit:
                raise ClipError(
                    f"the clip is {info.size} bytes, above the limit of {limit} "
                    "(LAVA_INGEST__MAX_BYTES)"
                )

        try:
            return await self.store.download(bucket, key, local, max_bytes=limit, check=check)
        except ObjectMissing:
            raise ClipError(f"clip not found at {clip.video_uri}") from None
        except TooLarge:
            raise ClipError(
                f"the clip grew above the limit of {limit} bytes while downloading "
                "(LAVA_INGEST__MAX_BYTES)"
            ) from None

    async def _finished(self, layout: ClipLayout) -> FrameIndex | None:
        try:
            raw = await self.store.get_json(layout.bucket, layout.frame_index_key)
        except ObjectMissing:
            return None
        return FrameIndex.model_validate(raw)

    def _check_video(self, info: VideoInfo) -> None:
        s = self.settings
        containers = set(info.container.split(","))
        if not containers & s.ingest.accepted_containers:
            raise ClipError(
                f"unsupported container {info.container!r} "
                f"(accepted: {', '.join(sorted(s.ingest.accepted_containers))})"
            )
        if info.codec not in s.ingest.accepted_codecs:
            raise ClipError(
                f"unsupported video codec {info.codec!r} "
                f"(accepted: {', '.join(sorted(s.ingest.accepted_codecs))})"
            )
        if info.width > s.ingest.max_width or info.height > s.ingest.max_height:
            raise ClipError(
                f"resolution {info.width}x{info.height} is above the limit of "
                f"{s.ingest.max_width}x{s.ingest.max_height}"
            )
        if min(info.width, info.height) < s.ingest.min_side:
            raise ClipError(f"resolution {info.width}x{info.height} is too small to label")
        if info.duration > s.ingest.max_duration_seconds:
            raise ClipError(
                f"the clip lasts {info.duration:.1f} s, above the limit of "
                f"{s.ingest.max_duration_seconds:g} s (LAVA_INGEST__MAX_DURATION_SECONDS)"
            )

    async def _extract_and_store(
        self, clip: ClipIngested, layout: ClipLayout, local: Path, base_time: float
    ) -> FrameIndex:
        extractor = await asyncio.to_thread(
            FrameExtractor,
            local,
            jpeg_quality=self.settings.ingest.jpeg_quality,
            decode_threads=self.capacity.decode_threads,
            decode_memory=self.capacity.decode_memory_bytes,
            containers=self.settings.ingest.accepted_containers,
        )
        try:
            self._check_video(extractor.info)  # the extractor checks the fps itself
            samples = await self._extract_and_upload(extractor, clip.fps, layout)
            info = extractor.info
        finally:
            extractor.close()
        if not samples:
            raise ClipError("no frames could be extracted")
        samples.sort(key=lambda s: s.index)
        index = frame_index(clip, layout, info, samples)
        await self._write_clip_files(layout, sequence_file(layout, samples, base_time), index)
        log.info(
            "frames extracted",
            clip_id=clip.clip_id,
            frames=len(samples),
            strategy=extractor.stats.strategy,
            decoded=extractor.stats.decoded_frames,
            source_frames=info.frame_count,
            codec=info.codec,
            mean_gop=round(info.mean_gop, 1),
            b_frames=info.has_b_frames,
        )
        return index

    async def _extract_and_upload(
        self, extractor: FrameExtractor, fps: float, layout: ClipLayout
    ) -> list[FrameSample]:
        """Decode in a worker thread while the loop uploads: the frames uploaded (without
        their JPEG bytes). A decoder's ClipError raises here once the uploads are done."""
        loop = asyncio.get_running_loop()
        # JPEGs in memory at once, whatever the fps or resolution: those queued here and
        # uploading share one byte budget (services/ingest/capacity.py has the whole sum).
        budget = ByteBudget(self.capacity.jpeg_buffer_bytes)
        queue: asyncio.Queue[FrameSample | None] = asyncio.Queue()
        stop = threading.Event()

        def produce() -> None:
            # Runs in a worker thread; waits for budget (back-pressure on decoding).
            try:
                for sample in extractor.samples(fps):
                    if stop.is_set():
                        return
                    size = len(sample.jpeg)
                    asyncio.run_coroutine_threadsafe(budget.acquire(size), loop).result()
                    loop.call_soon_threadsafe(queue.put_nowait, sample)
                    del sample
            finally:
                loop.call_soon_threadsafe(queue.put_nowait, None)

        producer = asyncio.create_task(asyncio.to_thread(produce))
        try:
            samples = await self._upload_frames(layout, queue, budget)
        except BaseException:
            stop.set()
            # Keep taking from the queue (giving the bytes back) until the producer has
            # let go of it.
            while not producer.done():
                with contextlib.suppress(asyncio.TimeoutError):
                    taken = await asyncio.wait_for(queue.get(), timeout=0.1)
                    if taken is not None:
                        budget.release(len(taken.jpeg))
            raise
        await producer  # raises ClipError from the decoder, if any
        return samples

    async def _write_clip_files(
        self, layout: ClipLayout, sequence: SequenceFile, index: FrameIndex
    ) -> None:
        """The sequence file, the input manifest naming it, then the frame index."""
        store, bucket = self.store, layout.bucket
        await store.put_bytes(
            bucket, layout.sequence_key, sequence.to_json().encode(), "application/json"
        )
        manifest = ManifestLine.model_validate({"source-ref": layout.uri(layout.sequence_key)})
        await store.put_bytes(
            bucket,
            layout.manifest_key,
            (manifest.to_json() + "\n").encode(),
            "application/jsonlines",
        )
        # Written last: its presence means the extraction is complete.
        await store.put_json(bucket, layout.frame_index_key, index.model_dump_json())

    async def _upload_frames(
        self,
        layout: ClipLayout,
        queue: asyncio.Queue[FrameSample | None],
        budget: ByteBudget,
    ) -> list[FrameSample]:
        gate = asyncio.Semaphore(self.capacity.uploads)
        uploads: set[asyncio.Task[None]] = set()
        failed: list[BaseException] = []
        samples: list[FrameSample] = []  # without their JPEG bytes

        async def upload(sample: FrameSample) -> None:
            try:
                await self.store.put_bytes(
                    layout.bucket, layout.frame_key(sample.index), sample.jpeg, "image/jpeg"
                )
            finally:
                budget.release(len(sample.jpeg))
                gate.release()

        def done(task: asyncio.Task[None]) -> None:
            uploads.discard(task)
            if not task.cancelled() and task.exception() is not None:
                failed.append(task.exception())  # type: ignore[arg-type]

        try:
            while (sample := await queue.get()) is not None:
                await gate.acquire()
                if failed:
                    gate.release()
                    budget.release(len(sample.jpeg))
                    raise failed[0]
                samples.append(dataclasses.replace(sample, jpeg=b""))
                task = asyncio.create_task(upload(sample))
                uploads.add(task)
                task.add_done_callback(done)
                del sample, task  # only the upload task holds the JPEG now
            await asyncio.gather(*uploads)
            if failed:
                raise failed[0]
        except BaseException:
            for pending in uploads:
                pending.cancel()
            raise
        return samples


def sequence_file(layout: ClipLayout, samples: list[FrameSample], base_time: float) -> SequenceFile:
    """Ground Truth's sequence file of the extracted frames (timestamps from the capture)."""
    return SequenceFile(
        seq_no=0,
        prefix=layout.uri(layout.frames_prefix),
        number_of_frames=len(samples),
        frames=[
            SequenceFrame(
                frame_no=s.index,
                unix_timestamp=int(base_time + s.timestamp),
                frame=layout.frame_name(s.index),
            )
            for s in samples
        ],
    )


def frame_index(
    clip: ClipIngested, layout: ClipLayout, info: VideoInfo, samples: list[FrameSample]
) -> FrameIndex:
    """Our own index of the frames: which source frame each is, and where the files are."""
    return FrameIndex(
        clip_id=clip.clip_id,
        fps=clip.fps,
        source_fps=info.source_fps,
        width=info.width,
        height=info.height,
        video_uri=clip.video_uri,
        sequence_uri=layout.uri(layout.sequence_key),
        manifest_uri=layout.uri(layout.manifest_key),
        frames=[
            IndexedFrame(
                frame_no=s.index,
                timestamp=round(s.timestamp, 6),
                source_frame=s.source_frame,
                file=layout.frame_name(s.index),
            )
            for s in samples
        ],
    )
