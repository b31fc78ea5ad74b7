"""Wiring of the post-processing service: S3, the dataset index and the bus."""

from __future__ import annotations

from services.postproc.handler import PostprocHandler
from shared.dataset.index import DatasetIndex
from shared.events import LabelsFinalized
from shared.idempotency import IdempotencyGuard
from shared.runtime import ServiceRuntime, run_service
from shared.settings import PostprocSettings
from shared.storage import S3Store


async def build(runtime: ServiceRuntime[PostprocSettings]) -> None:
    handler = PostprocHandler(
        runtime.settings,
        S3Store(runtime.aws),
        DatasetIndex(runtime.aws, runtime.settings),
        runtime.bus.publish,
        IdempotencyGuard(runtime.aws, runtime.settings, consumer="postproc"),
    )
    runtime.handle(LabelsFinalized, handler.handle)


def main() -> None:
    run_service("postproc", build, consumer="postproc", settings=PostprocSettings.load_or_exit())
