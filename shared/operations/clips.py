"""Reading a clip: its record, and each stage's state derived from the record and its tasks."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from shared.operations.errors import NotFound
from shared.tasks.clip_policy import ClipStage, clip_stages
from shared.tasks.model import ClipRecord
from shared.tasks.store import TaskStore


@dataclass(frozen=True)
class ClipDetail:
    record: ClipRecord
    stages: list[ClipStage]


async def show_clip(store: TaskStore, clip_id: str) -> ClipDetail:
    """The record (one GetItem) and its tasks (one GetItem each, together)."""
    record = await store.clip(clip_id)
    if record is None:
        raise NotFound(f"no clip {clip_id}")
    ids = sorted(record.tasks)
    tasks = await asyncio.gather(*(store.get_task(t) for t in ids))
    return ClipDetail(record, clip_stages(record, dict(zip(ids, tasks, strict=True))))
