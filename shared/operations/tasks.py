"""Operations on annotation tasks: list, show, retry, stop.

Stop makes ``stopped`` a real, final state (the original's task table kept complete, failed
or stopped). The task and its waiting data objects stop in ONE commit (``shared/tasks/operator.py``,
each item guarded by the revision read): from then on the dispatcher sends nothing for it (no
re-sends, re-triggers or re-keys) and records outputs that still arrive as late outputs
without acting on them. Then the clip's outcome says ``stopped``. Stopping a stopped task
stops what still waits and writes the clip's outcome again (finishing a stop a crash
interrupted) and reports that nothing changed.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from shared.operations.errors import Conflict, NotFound
from shared.tasks import operator
from shared.tasks.model import (
    AnnotationTask,
    ClipStop,
    DataObject,
    LateOutput,
    TaskStatus,
)
from shared.tasks.store import TaskStore

STOPPABLE = (TaskStatus.ACTIVE, TaskStatus.FAILED)
RACES = 5  # a stop that keeps losing to the dispatcher's commits gives up (a Conflict)


@dataclass(frozen=True)
class TaskDetail:
    task: AnnotationTask
    objects: list[DataObject]
    late_outputs: list[LateOutput] = field(default_factory=list)


@dataclass(frozen=True)
class StopResult:
    task_id: str
    changed: bool  # False: it was stopped already
    objects_stopped: int


async def show_task(store: TaskStore, task_id: str) -> TaskDetail:
    task, objects, late = await store.load(task_id)
    if task is None:
        raise NotFound(f"no task {task_id}")
    return TaskDetail(task, objects, late)


async def stop_task(
    store: TaskStore, task_id: str, now: float, by: str, reason: str = ""
) -> StopResult:
    for _ in range(RACES):
        task, objects, _late = await store.load(task_id)
        if task is None:
            raise NotFound(f"no task {task_id}")
        if task.status not in (*STOPPABLE, TaskStatus.STOPPED):
            raise Conflict(
                f"task {task_id} is {task.status.value}; only active or failed tasks stop"
            )
        changes, stopped = operator.stop(task, objects, now, by, reason)
        if await store.commit(changes):
            stop = ClipStop(task_id=task_id, by=by, reason=reason)
            await store.set_clip_outcome(task.clip_id, stop, now)
            return StopResult(task_id, task.status is not TaskStatus.STOPPED, stopped)
    raise Conflict(f"task {task_id} changed while stopping; look again")


async def retry_task(store: TaskStore, task_id: str, now: float, level_timeout: float) -> list[str]:
    """Make a failed task active again (what `lava tasks retry` does); returns what it did.

    Unfinished objects of its current level wait again, due at once: with a new key if their
    current key expired (Ground Truth has seen it), with the same key otherwise (it may still
    be live). The dispatcher's sweep sends them.
    """
    task, objects, _late = await store.load(task_id)
    if task is None:
        raise NotFound(f"no task {task_id}")
    if task.status is not TaskStatus.FAILED:
        raise Conflict(f"task {task_id} is {task.status.value}; only failed tasks are retried")
    if not task.levels:
        raise Conflict(f"task {task_id} cannot be retried: {task.failure_reason}")
    changes, done = operator.retry(task, objects, now, level_timeout)
    if not await store.commit(changes):
        raise Conflict(f"task {task_id} changed while retrying; look again")
    return done
