"""How much ingest does at once, from the pod's CPU and memory limits, and what it costs.

Memory is a function of these numbers, never of the clip: a clip streams to local disk, its
packets are read back from the file, a decoded frame waits only while it is encoded, and JPEGs
wait under a byte budget. Per process, for frames of at most ``P`` bytes (YUV 4:2:0 picture at
the largest resolution accepted) and JPEGs of at most ``J`` bytes:

    peak RSS <= BASE + clips x clip
    clip      = WORKING                                               threads, HTTP, demuxer
              + min(threads x 10 x P, max(DECODE_MEMORY, 10 x P))    decoders and encoders
              + JPEG_BUFFER                                           queued and uploading
              + (2 + threads) x J                                     inside the extractor

``threads`` is decode threads per clip, ``10`` the pictures one decoder and its encoder hold
(extract.PICTURES_PER_DECODER, measured). docs/services/ingest.md, "Ingest memory", has the numbers.
"""

from __future__ import annotations

from dataclasses import dataclass

from services.ingest.extract import PICTURES_PER_DECODER, picture_bytes
from shared.cgroup import Limits, read_limits
from shared.settings import IngestSettings

MB = 1024 * 1024
# The ingest process with no clip: interpreter and imports (PyAV/FFmpeg, aiobotocore, aio-pika,
# pydantic, structlog, prometheus): 88 MB at rest; the first clip adds its S3 and DynamoDB
# clients (~8 MB) and numpy (~12 MB), which WORKING_BYTES covers (docs/ingestperf.md).
BASE_BYTES = 85 * MB
# What a clip in flight costs beyond its pictures and JPEGs (thread stacks, HTTP buffers,
# demuxer and scaler state, allocator slack): the measured 1080p peaks minus the model.
WORKING_BYTES = 25 * MB
# JPEG bytes per pixel at quality 90 of detailed road scenes (557-588 KB at 1080p, 2.2 MB at
# 4K from the sample clips): an upper bound for planning, not a limit.
JPEG_BYTES_PER_PIXEL = 0.3
# JPEGs the extractor holds besides the budget: its output queue (2) and one per decoder.
EXTRACTOR_QUEUE = 2
# Uploads per clip: as many as the JPEG budget holds at the largest frame, within these
# (frames/s x PUT latency: 60 x 0.1 s needs 6; more only wait for the budget).
MIN_UPLOADS = 4
MAX_UPLOADS = 16
# Share of the memory limit planned for; the rest absorbs allocator fragmentation.
MEMORY_HEADROOM = 0.85


@dataclass(frozen=True)
class IngestCapacity:
    clips: int
    decode_threads: int  # per clip, before the decode memory cap
    uploads: int  # per clip
    jpeg_buffer_bytes: int  # per clip
    decode_memory_bytes: int  # per clip
    width: int  # the largest frame accepted
    height: int
    limits: Limits

    def clip_bytes(self, width: int | None = None, height: int | None = None) -> int:
        """Memory one clip in flight takes, for frames of this size (default: the largest)."""
        w, h = width or self.width, height or self.height
        per_decoder = PICTURES_PER_DECODER * picture_bytes(w, h)
        decoding = min(
            self.decode_threads * per_decoder, max(self.decode_memory_bytes, per_decoder)
        )
        jpeg = int(w * h * JPEG_BYTES_PER_PIXEL)
        extractor = (EXTRACTOR_QUEUE + self.decode_threads) * jpeg
        return WORKING_BYTES + decoding + self.jpeg_buffer_bytes + extractor

    def memory_bytes(self, width: int | None = None, height: int | None = None) -> int:
        """The peak RSS to plan for: every clip slot busy with frames of this size."""
        return BASE_BYTES + self.clips * self.clip_bytes(width, height)

    def describe(self) -> dict[str, object]:
        return {
            "clips": self.clips,
            "decode_threads": self.decode_threads,
            "uploads": self.uploads,
            "jpeg_buffer_mb": round(self.jpeg_buffer_bytes / MB, 1),
            "decode_memory_mb": round(self.decode_memory_bytes / MB, 1),
            "cpu_limit": self.limits.cpus,
            "memory_limit_mb": None
            if self.limits.memory_bytes is None
            else self.limits.memory_bytes // MB,
            "planned_memory_mb": self.memory_bytes() // MB,
            "planned_memory_1080p_mb": self.memory_bytes(1920, 1080) // MB,
        }


def derive_capacity(settings: IngestSettings, limits: Limits | None = None) -> IngestCapacity:
    """Clips, decoder threads and uploads: the settings where set, else from the limits.

    - clips: one per usable CPU (decoding is CPU-bound), fewer if the memory limit cannot hold
      them with frames at the largest resolution accepted; at least one.
    - decode threads: the usable CPUs shared among the clips, at least one each.
    - uploads: as many JPEGs of the largest frame as the JPEG budget holds (4 to 16).
    """
    limits = limits if limits is not None else read_limits()
    cpus = limits.usable_cpus()

    def shape(clips: int, uploads: int) -> IngestCapacity:
        return IngestCapacity(
            clips=clips,
            decode_threads=settings.ingest.decode_threads or max(1, cpus // clips),
            uploads=uploads,
            jpeg_buffer_bytes=int(settings.ingest.jpeg_buffer_mb * MB),
            decode_memory_bytes=int(settings.ingest.decode_memory_mb * MB),
            width=settings.ingest.max_width,
            height=settings.ingest.max_height,
            limits=limits,
        )

    budget = None
    if limits.memory_bytes is not None:
        budget = int(limits.memory_bytes * MEMORY_HEADROOM)

    def fits(capacity: IngestCapacity) -> bool:
        return budget is None or capacity.memory_bytes() <= budget

    largest = settings.ingest.max_width * settings.ingest.max_height
    largest_jpeg = int(largest * JPEG_BYTES_PER_PIXEL)
    uploads = settings.ingest.upload_concurrency or min(
        MAX_UPLOADS, max(MIN_UPLOADS, int(settings.ingest.jpeg_buffer_mb * MB) // largest_jpeg)
    )
    if settings.ingest.concurrency:
        clips = settings.ingest.concurrency
    else:
        clips = cpus
        while clips > 1 and not fits(shape(clips, uploads)):
            clips -= 1
    return shape(clips, uploads)
