"""Wiring of the post-processing service: S3, the dataset index and the bus."""

from __future__ import annotations

from services.postproc.handler import PostprocHandler
from services.postproc.quality import QualityRecorder
from shared.dataset.index import DatasetIndex
from shared.events import LabelsFinalized
from shared.idempotency import IdempotencyGuard
from shared.quality.records import QualityRecords
from shared.runtime import ServiceRuntime, run_service
from shared.settings import PostprocSettings
from shared.storage import S3Store


async def build(runtime: ServiceRuntime[PostprocSettings]) -> None:
    settings = runtime.settings
    store = S3Store(runtime.aws)
    handler = PostprocHandler(
        settings,
        store,
        DatasetIndex(runtime.aws, settings),
        runtime.bus.publish,
        IdempotencyGuard(runtime.aws, settings, consumer="postproc"),
        QualityRecorder(
            store,
            QualityRecords(runtime.aws, settings.names.bucket),
            settings.postproc.moved_iou,
        )
        if settings.postproc.quality_records
        else None,
    )
    runtime.handle(LabelsFinalized, handler.handle)


def main() -> None:
    run_service("postproc", build, consumer="postproc", settings=PostprocSettings.load_or_exit())
