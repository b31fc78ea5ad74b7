"""Wiring of the ingest service: S3 and the bus around the IngestHandler."""

from __future__ import annotations

import structlog

from services.ingest.allocator import fix_mmap_threshold
from services.ingest.capacity import derive_capacity
from services.ingest.handler import IngestHandler
from shared.events import ClipIngested
from shared.resources import TASKS
from shared.runtime import ServiceRuntime, run_service
from shared.settings import IngestSettings
from shared.storage import S3Store
from shared.tasks.clip_records import ClipRecords

log = structlog.get_logger(__name__)


async def build(runtime: ServiceRuntime[IngestSettings]) -> None:
    capacity = derive_capacity(runtime.settings)
    log.info("ingest capacity", **capacity.describe())
    handler = IngestHandler(
        runtime.settings,
        S3Store(runtime.aws),
        runtime.bus.publish,
        capacity=capacity,
        clips=ClipRecords(runtime.aws, runtime.settings.names.table(TASKS.name)),
    )
    runtime.handle(ClipIngested, handler.handle)


def ingest_settings(settings: IngestSettings) -> IngestSettings:
    """Prefetch only the clips this process works on at once, unless LAVA_BROKER__PREFETCH
    says.

    A prefetched clip waits here while another replica could take it, and a process killed
    for memory requeues every message it holds, each spending one of its deliveries.
    """
    if "prefetch" in settings.broker.model_fields_set:
        return settings
    return settings.replace(broker__prefetch=derive_capacity(settings).clips)


def main() -> None:
    fix_mmap_threshold()
    settings = ingest_settings(IngestSettings.load_or_exit())
    run_service("ingest", build, consumer="ingest", settings=settings)
