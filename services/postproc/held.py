"""The clip's held tasks: a finalized task waits here for its clip's other workflows.

Each task's event is held with what its own event worked out for the merge (its adjustment
diffs: the level-1 files are then not read again), all in one item of the dataset table: a
hold is one UpdateItem that returns the clip's whole held set (``DatasetIndex.hold``). Tasks
held one item each by an older post-processing are read only when the set looks incomplete,
so a clip in flight across an upgrade still completes - and so does a task the held set has
no room for (DynamoDB's 400 KB item), held alone in the older form.
"""

from __future__ import annotations

import structlog
from pydantic import BaseModel, ConfigDict, Field

from services.postproc.summary import AdjustmentDiff
from shared.dataset.index import DatasetIndex, HeldSetFull
from shared.events import LabelsFinalized

log = structlog.get_logger(__name__)


class HeldTask(BaseModel):
    """One finalized task as held: its event and, by adjusting job, its adjustment diffs."""

    # A later version may hold more: an older replica reading it during a rollout ignores it.
    model_config = ConfigDict(extra="ignore")

    event: LabelsFinalized
    adjustments: dict[str, AdjustmentDiff] = Field(default_factory=dict)


def missing(p: LabelsFinalized, held: dict[str, HeldTask]) -> list[str]:
    """The clip's workflows none of the held tasks is for."""
    return sorted(set(p.clip_workflows) - {h.event.workflow for h in held.values()})


async def hold(
    index: DatasetIndex, p: LabelsFinalized, adjustments: dict[str, AdjustmentDiff]
) -> dict[str, HeldTask]:
    """Hold ``p`` and return the clip's held tasks, by task id (one request; two when the
    set looks incomplete: the tasks an older version held one item each)."""
    mine = HeldTask(event=p, adjustments=adjustments)
    try:
        stored = await index.hold(p.clip_id, p.task_id, mine.model_dump_json())
    except HeldSetFull as exc:  # held in an item of its own: read with the older ones below
        log.warning("held set full; task held alone", task_id=p.task_id, error=str(exc))
        await index.hold_alone(p.clip_id, p.task_id, p.model_dump_json())
        stored = await index.held_set(p.clip_id)
    held = {task_id: HeldTask.model_validate_json(value) for task_id, value in stored.items()}
    if missing(p, held):
        for task_id, event in (await index.held_one_by_one(p.clip_id)).items():
            held.setdefault(task_id, HeldTask(event=LabelsFinalized.model_validate_json(event)))
    return held
