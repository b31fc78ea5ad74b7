"""How much ingest does at once, from the pod's CPU and memory limits, and what it costs.

Memory is a function of these numbers, never of the clip: a clip streams to local disk, its
packets are read back from the file, decoded frames wait for at most ``2 x encode threads``
encodes, and JPEGs wait in queues of fixed length. Per process:

    peak RSS ~= BASE + clips x (decoders x DECODER_FRAMES x frame + jpegs x jpeg)

    frame   = width x height x 1.5 bytes (one YUV 4:2:0 picture)
    jpeg    = width x height x JPEG_BYTES_PER_PIXEL (quality 90, detailed road scenes)
    decoders = decode threads per clip (one decoder each in GOP-parallel decoding, or one
               frame-threaded decoder holding about as many frames)
    jpegs   = frame queue + uploads + EXTRACTOR_JPEGS

The constants are measured by ``python -m bench.ingest_memory_bench`` (README, Ingest memory).
"""

from __future__ import annotations

from dataclasses import dataclass

from shared.cgroup import Limits, read_limits
from shared.settings import Settings

MB = 1024 * 1024
# The ingest process at rest (interpreter, PyAV/FFmpeg, aiobotocore, aio-pika, metrics).
BASE_BYTES = 100 * MB
# Pictures a decoder holds at its peak: H.264 references (x264 default 3, High profile up to
# 16 at small sizes but at most ~5 at 4K by the level's DPB size) + reordering delay + the
# picture being decoded + the one being converted for JPEG.
DECODER_FRAMES = 8
# JPEG size of a 1080p frame of the sample road scenes at quality 90: 557-588 KB.
JPEG_BYTES_PER_PIXEL = 0.3
# JPEGs between the encoder and the handler (the extractor's own buffer plus one in hand).
EXTRACTOR_JPEGS = 5
# Uploads per clip when memory allows (S3 PUT latency ~20-50 ms: 16 keep a core's encoder busy).
MAX_UPLOADS = 16
# Share of the memory limit planned for; the rest absorbs allocator fragmentation.
MEMORY_HEADROOM = 0.85


@dataclass(frozen=True)
class IngestCapacity:
    clips: int
    decode_threads: int  # per clip
    uploads: int  # per clip
    frame_queue: int  # per clip
    width: int  # the largest frame accepted
    height: int
    limits: Limits

    @property
    def frame_bytes(self) -> int:
        return int(self.width * self.height * 1.5)

    @property
    def jpeg_bytes(self) -> int:
        return int(self.width * self.height * JPEG_BYTES_PER_PIXEL)

    def clip_bytes(self) -> int:
        """Memory one clip in flight takes at the largest resolution accepted."""
        decoding = self.decode_threads * DECODER_FRAMES * self.frame_bytes
        jpegs = (self.frame_queue + self.uploads + EXTRACTOR_JPEGS) * self.jpeg_bytes
        return decoding + jpegs

    def memory_bytes(self) -> int:
        """The peak RSS to plan for (a pod's memory request; add headroom for the limit)."""
        return BASE_BYTES + self.clips * self.clip_bytes()

    def describe(self) -> dict[str, object]:
        return {
            "clips": self.clips,
            "decode_threads": self.decode_threads,
            "uploads": self.uploads,
            "frame_queue": self.frame_queue,
            "cpu_limit": self.limits.cpus,
            "memory_limit_mb": None
            if self.limits.memory_bytes is None
            else self.limits.memory_bytes // MB,
            "planned_memory_mb": self.memory_bytes() // MB,
        }


def derive_capacity(settings: Settings, limits: Limits | None = None) -> IngestCapacity:
    """Clips, decoder threads and uploads: the settings where set, else from the limits.

    - clips: one per usable CPU (decoding is CPU-bound), fewer if the memory limit cannot
      hold them at the largest resolution accepted; at least one.
    - decode threads: the usable CPUs shared among the clips, at least one each.
    - uploads: up to 16 per clip, fewer when memory is short; at least two.
    """
    limits = limits if limits is not None else read_limits()
    cpus = limits.usable_cpus()
    queue = settings.ingest_frame_queue
    width, height = settings.ingest_max_width, settings.ingest_max_height

    def shape(clips: int, uploads: int) -> IngestCapacity:
        threads = settings.ingest_decode_threads or max(1, cpus // clips)
        return IngestCapacity(clips, threads, uploads, queue, width, height, limits)

    budget = None
    if limits.memory_bytes is not None:
        budget = int(limits.memory_bytes * MEMORY_HEADROOM)

    def fits(c: IngestCapacity) -> bool:
        return budget is None or c.memory_bytes() <= budget

    uploads = settings.ingest_upload_concurrency or MAX_UPLOADS
    if settings.ingest_concurrency:
        clips = settings.ingest_concurrency
    else:
        clips = cpus
        while clips > 1 and not fits(shape(clips, uploads)):
            clips -= 1
    if not settings.ingest_upload_concurrency:
        while uploads > 2 and not fits(shape(clips, uploads)):
            uploads //= 2
    return shape(clips, uploads)
