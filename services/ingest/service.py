"""Wiring of the ingest service: S3 and the bus around the IngestHandler."""

from __future__ import annotations

from services.ingest.handler import IngestHandler
from shared.events import ClipIngested
from shared.runtime import ServiceRuntime, run_service
from shared.storage import S3Store


async def build(runtime: ServiceRuntime) -> None:
    handler = IngestHandler(runtime.settings, S3Store(runtime.aws), runtime.bus.publish)
    runtime.handle(ClipIngested, handler.handle)


def main() -> None:
    run_service("ingest", build, consumer="ingest")
