"""The clip record's rules: which change applies in which state, and each stage's state.

A clip's record (``ClipRecord``) is its one owner of state. Changes come from four writers
(docs/clipowner.md): an accepted ``ClipIngested`` (control API or ingest), a task's creation
(dispatcher, on ``FramesReady``), an outcome (``ClipFailed``, a stop, ``ClipCompleted``) and
post-processing's completion (with the dataset entry, in one transaction). The table below is
the whole policy; ``shared.tasks.clip_records`` turns each row into a DynamoDB condition.

- ``accept``: a new clip starts ``ingesting``; a clip that failed *at ingest* is ingesting again
  (a new submission, or the rig's upload again: nothing else ran for it); any other record
  only gains the tasks;
- ``task``: a task was created: ``ingesting`` (or no record) -> ``labeling``; otherwise the
  record only gains the task (a later task never rewrites an outcome);
- ``fail`` / ``stop``: from anything but ``completed`` (a completed clip keeps its labels; the
  later task's failure stays on that task);
- ``complete``: from any state (a retried or later task may complete a failed clip).
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from shared.tasks.model import (
    AnnotationTask,
    ClipFailure,
    ClipRecord,
    ClipStatus,
    TaskStatus,
)

Change = Literal["accept", "task", "fail", "stop", "complete"]

_ANY = frozenset({None, *ClipStatus})
# the states (None: no record yet) each change moves a clip out of; elsewhere it moves nothing
MOVES_FROM: dict[Change, frozenset[ClipStatus | None]] = {
    "accept": frozenset({None}),  # + failed at ingest (failed_at_ingest)
    "task": frozenset({None, ClipStatus.INGESTING}),
    "fail": _ANY - {ClipStatus.COMPLETED},
    "stop": _ANY - {ClipStatus.COMPLETED},
    "complete": _ANY,
}
TARGET: dict[Change, ClipStatus] = {
    "accept": ClipStatus.INGESTING,
    "task": ClipStatus.LABELING,
    "fail": ClipStatus.FAILED,
    "stop": ClipStatus.STOPPED,
    "complete": ClipStatus.COMPLETED,
}


def failed_at_ingest(record: ClipRecord | None) -> bool:
    outcome = record.outcome if record else None
    return isinstance(outcome, ClipFailure) and outcome.stage == "ingest"


def next_status(record: ClipRecord | None, change: Change) -> ClipStatus | None:
    """The status ``change`` moves the clip to, or None when it leaves the status as it is
    (the write then only adds tasks, or nothing)."""
    current = record.status if record else None
    if change == "accept" and failed_at_ingest(record):
        return TARGET[change]
    return TARGET[change] if current in MOVES_FROM[change] else None


# --- each stage's state, derived from the record and its tasks ------------------------------
class StageState(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    STOPPED = "stopped"


class ClipStage(BaseModel):
    """One stage of a clip: ingest, each level of each task, post-processing."""

    model_config = ConfigDict(frozen=True)

    # a closed grammar (levels are numbered): a pattern in the OpenAPI document
    stage: str = Field(pattern=r"^(ingest|labeling|level [1-9][0-9]*|post-processing)$")
    task_id: str | None = None
    level: int | None = None
    state: StageState
    reason: str | None = None


_AFTER_LABELING = (TaskStatus.FINALIZING, TaskStatus.FINALIZED, TaskStatus.COMPLETED)


def clip_stages(record: ClipRecord, tasks: Mapping[str, AnnotationTask | None]) -> list[ClipStage]:
    """Ingest, every level of every task (by task id), post-processing: each one's state."""
    failure = record.outcome if isinstance(record.outcome, ClipFailure) else None
    ingest = StageState.DONE
    if failure is not None and failure.stage == "ingest":
        ingest = StageState.FAILED
    elif record.status is ClipStatus.INGESTING:
        ingest = StageState.RUNNING
    stages = [
        ClipStage(
            stage="ingest",
            state=ingest,
            reason=failure.reason if ingest is StageState.FAILED and failure else None,
        )
    ]
    for task_id in sorted(record.tasks):
        stages += _task_stages(task_id, tasks.get(task_id), ingest)
    stages.append(_postproc_stage(record, failure, [t for t in tasks.values() if t]))
    return stages


def _task_stages(task_id: str, task: AnnotationTask | None, ingest: StageState) -> list[ClipStage]:
    if task is None:  # not created yet (frames not ready), or never (ingest failed)
        state = StageState.FAILED if ingest is StageState.FAILED else StageState.PENDING
        return [ClipStage(stage="labeling", task_id=task_id, state=state)]
    if not task.levels:  # refused at creation (unknown workflow or job)
        return [
            ClipStage(
                stage="labeling",
                task_id=task_id,
                state=StageState.FAILED,
                reason=task.failure_reason,
            )
        ]
    return [_level_stage(task, level) for level in range(1, len(task.levels) + 1)]


def _level_stage(task: AnnotationTask, level: int) -> ClipStage:
    state, reason = StageState.PENDING, None
    if level < task.level or task.status in _AFTER_LABELING:
        state = StageState.DONE
    elif level == task.level:
        state, reason = {
            TaskStatus.ACTIVE: (StageState.RUNNING, None),
            TaskStatus.FAILED: (StageState.FAILED, task.failure_reason),
            TaskStatus.STOPPED: (StageState.STOPPED, task.stopped_by),
        }[task.status]
    return ClipStage(
        stage=f"level {level}", task_id=task.task_id, level=level, state=state, reason=reason
    )


def _postproc_stage(
    record: ClipRecord, failure: ClipFailure | None, tasks: list[AnnotationTask]
) -> ClipStage:
    if record.status is ClipStatus.COMPLETED:
        return ClipStage(stage="post-processing", state=StageState.DONE)
    if failure is not None and failure.stage == "postproc":
        return ClipStage(stage="post-processing", state=StageState.FAILED, reason=failure.reason)
    finalized = any(t.status in (TaskStatus.FINALIZING, TaskStatus.FINALIZED) for t in tasks)
    state = StageState.RUNNING if finalized else StageState.PENDING
    return ClipStage(stage="post-processing", state=state)
