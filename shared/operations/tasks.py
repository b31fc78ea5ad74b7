"""Operations on annotation tasks: list, show, retry, stop.

Stop makes ``stopped`` a real, final state (the original's task table kept complete, failed
or stopped). Its writes are ordered so the first one commits and the rest are idempotent:
1. the task becomes ``stopped`` (conditional on ``active`` or ``failed``): from here the
   dispatcher sends nothing for it (no re-sends, re-triggers or re-keys) and records outputs
   that still arrive as late outputs without acting on them;
2. its waiting data objects become ``stopped`` (nothing is due any more);
3. the clip's outcome says ``stopped``.
Stopping a stopped task does 2 and 3 again (finishing a stop a crash interrupted) and reports
that nothing changed.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from shared.dedup import dedup_key_id
from shared.operations.errors import Conflict, NotFound
from shared.tasks.model import (
    AnnotationTask,
    ClipStop,
    DataObject,
    LateOutput,
    ObjectStatus,
    TaskStatus,
)
from shared.tasks.store import TaskStore

STOPPABLE = (TaskStatus.ACTIVE, TaskStatus.FAILED)


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
    task = await store.get_task(task_id)
    if task is None:
        raise NotFound(f"no task {task_id}")
    return TaskDetail(task, await store.objects(task_id), await store.late_outputs(task_id))


async def stop_task(
    store: TaskStore, task_id: str, now: float, by: str, reason: str = ""
) -> StopResult:
    task = await store.get_task(task_id)
    if task is None:
        raise NotFound(f"no task {task_id}")
    changed = False
    if task.status is not TaskStatus.STOPPED:
        if task.status not in STOPPABLE:
            raise Conflict(
                f"task {task_id} is {task.status.value}; only active or failed tasks stop"
            )
        changed = await store.stop_task(task_id, STOPPABLE, now, by, reason)
        if not changed:
            current = await store.get_task(task_id)
            if current is None or current.status is not TaskStatus.STOPPED:
                state = current.status.value if current else "gone"
                raise Conflict(f"task {task_id} changed while stopping (now {state}); look again")
    stopped = await store.stop_objects(task_id, ObjectStatus.STOPPED)
    await store.set_clip_outcome(task.clip_id, ClipStop(task_id=task_id, by=by, reason=reason), now)
    return StopResult(task_id, changed, stopped)


async def retry_task(store: TaskStore, task_id: str, now: float, level_timeout: float) -> list[str]:
    """Make a failed task active again (what `lava tasks retry` does); returns what it did.

    Unfinished objects of its current level wait again, due at once: with a new key if their
    current key expired (Ground Truth has seen it), with the same key otherwise (it may still
    be live). The dispatcher's sweep sends them.
    """
    task = await store.get_task(task_id)
    if task is None:
        raise NotFound(f"no task {task_id}")
    if task.status is not TaskStatus.FAILED:
        raise Conflict(f"task {task_id} is {task.status.value}; only failed tasks are retried")
    if not task.levels:
        raise Conflict(f"task {task_id} cannot be retried: {task.failure_reason}")
    done: list[str] = []
    restarted = []
    for obj in await store.objects(task_id, task.level):
        if obj.status is ObjectStatus.DONE:
            continue
        if obj.key in obj.expired_keys:
            attempt = obj.attempt + 1
            key = dedup_key_id(obj.task_id, obj.job, obj.object_id, attempt)
            obj = obj.model_copy(update={"key": key, "attempt": attempt, "keys": [*obj.keys, key]})
            done.append(f"{obj.job}: new key {key}")
        else:
            done.append(f"{obj.job}: same key {obj.key}")
        restarted.append(obj.model_copy(update={"status": ObjectStatus.WAITING, "due_at": now}))
    await store.restart_objects(restarted)
    if not await store.set_task_status(
        task_id,
        TaskStatus.ACTIVE,
        [TaskStatus.FAILED],
        now,
        due_at=now + level_timeout if restarted else now,
        event="retried",
    ):
        raise Conflict(f"task {task_id} changed while retrying; look again")
    await store.reset_retriggers(task_id)
    return done
