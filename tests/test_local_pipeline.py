"""LocalPipeline's own contract: what `start` starts (benches start parts of a pipeline)."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from lava.local_pipeline import LocalPipeline, PipelineConfig

pytestmark = [pytest.mark.integration]


async def test_a_pipeline_started_with_no_services_starts_none(
    tmp_path: Path, rabbitmq: str
) -> None:
    """The ingest memory bench starts its own ingest beside stand-ins only: an empty tuple
    once fell back to every service, and their dispatcher took the events the bench awaited."""
    run = LocalPipeline(PipelineConfig(namespace=f"p{uuid.uuid4().hex[:7]}", run_dir=tmp_path))
    try:
        await run.start(services=())
        assert run.settings is not None and run.moto is not None
        assert run.processes == {}
    finally:
        assert await run.stop() == {}
