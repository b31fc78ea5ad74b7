"""The operator's transitions of a task (stop, retry), pure: the aggregate as read -> Changes.

Like the dispatcher's decisions (``services/dispatcher/policy.py``), each is committed in ONE
request by :meth:`TaskStore.commit`, every item guarded by the revision read: a dispatcher
decision made on an older read loses its commit and is made again on the new state (a stopped
task sends nothing more).
"""

from __future__ import annotations

from shared.dedup import dedup_key_id
from shared.tasks.counters import task_counter
from shared.tasks.model import AnnotationTask, DataObject, HistoryEntry, ObjectStatus, TaskStatus
from shared.tasks.plan import Changes, PutObject, PutTask, Write


def _put_task(task: AnnotationTask, **update: object) -> PutTask:
    return PutTask(task.model_copy(update={**update, "rev": task.rev + 1}), task.rev)


def _put_object(obj: DataObject, **update: object) -> PutObject:
    return PutObject(obj.model_copy(update={**update, "rev": obj.rev + 1}), obj.rev)


def stop(
    task: AnnotationTask, objects: list[DataObject], now: float, by: str, reason: str
) -> tuple[Changes, int]:
    """The task ``stopped`` (final; if it is not yet) and its waiting objects with it; how
    many objects stop."""
    writes: list[Write] = []
    counts: dict[str, int] = {}
    if task.status is not TaskStatus.STOPPED:
        detail = f"by {by}" + (f": {reason}" if reason else "")
        entry = HistoryEntry(at=now, event="stopped", detail=detail)
        writes.append(
            _put_task(
                task,
                status=TaskStatus.STOPPED,
                stopped_by=by,
                updated_at=now,
                due_at=None,
                history=[*task.history, entry],
            )
        )
        counts[task_counter(task.status, task.level)] = -1
        counts[task_counter(TaskStatus.STOPPED, task.level)] = 1
    waiting = [o for o in objects if o.status is ObjectStatus.WAITING]
    for obj in waiting:
        writes.append(_put_object(obj, status=ObjectStatus.STOPPED, due_at=None))
    if waiting:
        counts["o_waiting"] = -len(waiting)
    return Changes(writes=tuple(writes), counts=counts, at=now), len(waiting)


def retry(
    task: AnnotationTask, objects: list[DataObject], now: float, level_timeout: float
) -> tuple[Changes, list[str]]:
    """A failed task active again: unfinished objects of its level wait again, due at once -
    with a new key if their key expired (Ground Truth has seen it), the same key otherwise
    (it may still be live); what was done, per object."""
    done: list[str] = []
    writes: list[Write] = []
    counts = {task_counter(TaskStatus.FAILED, task.level): -1}
    counts[task_counter(TaskStatus.ACTIVE, task.level)] = 1
    counts["o_waiting"] = counts["rekeys"] = 0
    for obj in (o for o in objects if o.level == task.level):
        if obj.status is ObjectStatus.DONE:
            continue
        update: dict[str, object] = {"status": ObjectStatus.WAITING, "due_at": now}
        if obj.key in obj.expired_keys:
            attempt = obj.attempt + 1
            key = dedup_key_id(obj.task_id, obj.job, obj.object_id, attempt)
            update.update(key=key, attempt=attempt, keys=[*obj.keys, key])
            counts["rekeys"] += 1
            done.append(f"{obj.job}: new key {key}")
        else:
            done.append(f"{obj.job}: same key {obj.key}")
        counts["o_waiting"] += obj.status is not ObjectStatus.WAITING
        writes.append(_put_object(obj, **update))
    entry = HistoryEntry(at=now, event="retried")
    writes.insert(
        0,
        _put_task(
            task,
            status=TaskStatus.ACTIVE,
            updated_at=now,
            level_retriggers=0,
            failure_reason=None,
            due_at=now + level_timeout if writes else now,
            history=[*task.history, entry],
        ),
    )
    return Changes(writes=tuple(writes), counts=counts, at=now), done
