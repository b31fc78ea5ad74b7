"""Wiring of the ingest service: S3 and the bus around the IngestHandler."""

from __future__ import annotations

import structlog

from services.ingest.allocator import fix_mmap_threshold
from services.ingest.capacity import derive_capacity
from services.ingest.handler import IngestHandler
from shared.events import ClipIngested
from shared.runtime import ServiceRuntime, run_service
from shared.settings import Settings, load_settings
from shared.storage import S3Store

log = structlog.get_logger(__name__)


async def build(runtime: ServiceRuntime) -> None:
    capacity = derive_capacity(runtime.settings)
    log.info("ingest capacity", **capacity.describe())
    handler = IngestHandler(
        runtime.settings, S3Store(runtime.aws), runtime.bus.publish, capacity=capacity
    )
    runtime.handle(ClipIngested, handler.handle)


def ingest_settings(settings: Settings) -> Settings:
    """Prefetch only the clips this process works on at once, unless LAVA_PREFETCH says.

    A prefetched clip waits here while another replica could take it, and a process killed
    for memory requeues every message it holds, each spending one of its deliveries.
    """
    if "prefetch" in settings.model_fields_set:
        return settings
    return settings.model_copy(update={"prefetch": derive_capacity(settings).clips})


def main() -> None:
    fix_mmap_threshold()
    run_service("ingest", build, consumer="ingest", settings=ingest_settings(load_settings()))
