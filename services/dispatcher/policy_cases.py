"""The cases of the policy table (``policy.py``), one function per event, all pure."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from services.dispatcher.plan import Draft, Outbound, object_key
from services.dispatcher.policy_types import (
    Abort,
    Hold,
    LabelingFailed,
    NewKey,
    Output,
    Returned,
    Rules,
    Start,
    Sweep,
    job_gate,
)
from shared.dedup import dedup_key_id
from shared.events import (
    ClipFailed,
    FailureStage,
    FramesReady,
    JobOutput,
    LabelsFinalized,
    derived_event_id,
)
from shared.labeling.streaming_job import StreamingJob
from shared.tasks.counters import job_output_counter, task_counter
from shared.tasks.model import (
    AnnotationTask,
    DataObject,
    HistoryEntry,
    JobResult,
    LateOutput,
    ObjectStatus,
    TaskStatus,
)
from shared.tasks.plan import LinkClip

Jobs = Mapping[str, StreamingJob]


# --- Start (FramesReady) ------------------------------------------------------------------------
def start(d: Draft, e: Start, *, rules: Rules, jobs: Jobs, now: float) -> None:
    p = e.frames
    if d.task is not None:
        d.note("task exists; FramesReady was a duplicate")
        if d.task.status is TaskStatus.FAILED:
            reason = d.task.failure_reason or "failed"
            _announce_failure(d, p.clip_id, p.task_id, reason, "dispatch")
        _send_due(d, rules, jobs, now)
        # what its first delivery sent (its level's objects, or others due then), in case a
        # crash cut that short
        _send_again(d, d.of_level(d.task.level), jobs, "FramesReady redelivered")
        return
    if p.gold is None:  # a gold copy's clip id is made up: it has no clip record to join
        d.link = LinkClip(p.clip_id, p.task_id, now, first=p.workflow == p.clip_workflows[0])
    if e.refusal is not None:
        task = new_task(p, now, [], TaskStatus.FAILED, e.refusal, e.trace_context)
        d.set_task(task.model_copy(update={"due_at": now + rules.send_lease}))
        d.confirm_task = task  # ClipFailed published: nothing due
        d.move(None, task_counter(task.status, task.level))
        d.note("task refused", reason=e.refusal)
        _announce_failure(d, p.clip_id, p.task_id, e.refusal, "dispatch")
        return
    task = new_task(p, now, e.levels, trace_context=e.trace_context)
    task = task.model_copy(update={"due_at": now + rules.level_timeout})
    d.set_task(task)
    d.move(None, task_counter(task.status, task.level))
    d.note("task created", "tasks_created", levels=e.levels)
    _create_level(d, task, 1, rules, jobs, now)


def new_task(
    p: FramesReady,
    now: float,
    levels: list[list[str]],
    status: TaskStatus = TaskStatus.ACTIVE,
    reason: str | None = None,
    trace_context: dict[str, str] | None = None,
) -> AnnotationTask:
    return AnnotationTask(
        task_id=p.task_id,
        clip_id=p.clip_id,
        workflow=p.workflow,
        clip_workflows=p.clip_workflows,
        levels=levels,
        status=status,
        failure_reason=reason,
        frames=p.frames,
        drive=p.drive,
        clip=p.clip,
        created_at=now,
        updated_at=now,
        level_started_at=now,
        trace_context=trace_context,
        history=first_history(p, now, status, reason),
        gold=p.gold,
    )


def first_history(
    p: FramesReady, now: float, status: TaskStatus, reason: str | None
) -> list[HistoryEntry]:
    """A task's history starts with its creation, then its level 1 (or its refusal): the
    history alone tells the task's whole life."""
    created = HistoryEntry(
        at=now,
        event="created",
        detail=f"workflow {p.workflow}: {p.frames.frame_count} frames at {p.frames.fps:g} fps",
    )
    if status is TaskStatus.ACTIVE:
        return [created, HistoryEntry(at=now, event="level-started", detail="level 1")]
    return [created, HistoryEntry(at=now, event=status.value, detail=reason or "")]


def _create_level(
    d: Draft, task: AnnotationTask, level: int, rules: Rules, jobs: Jobs, now: float
) -> None:
    """The data objects of ``level`` (one per job), each sent at once (or held)."""
    created = 0
    for job in task.jobs_of(level):
        obj = new_object(task, job, level, now)
        if d.find(job, obj.object_id) is None:  # a level is made once
            created += 1
            _dispatch(d, obj, rules, jobs, now)
    d.count(objects=created, o_waiting=created)


def new_object(task: AnnotationTask, job: str, level: int, now: float) -> DataObject:
    """The clip's data object for ``job``: first attempt, first key, due at once."""
    key = dedup_key_id(task.task_id, job, "0", 1)
    return DataObject(
        task_id=task.task_id,
        job=job,
        level=level,
        source_ref=task.frames.sequence_uri,
        key=key,
        keys=[key],
        due_at=now,
        # its output's events continue the clip's trace (the task's: its FramesReady's)
        trace_context=task.trace_context,
    )


# --- sending ------------------------------------------------------------------------------------
def _dispatch(
    d: Draft, obj: DataObject, rules: Rules, jobs: Jobs, now: float, retrigger: bool = False
) -> None:
    """Send ``obj`` now (claimed by the commit) unless its job takes no input: then hold it."""
    if d.task is not None and d.task.status is not TaskStatus.ACTIVE:
        return  # failed while planning (a job missing, an output to carry missing)
    job = jobs.get(obj.job)
    if job is None:
        reason = f"streaming job {obj.job} is not registered (lava jobs create-defaults)"
        fail(d, reason, now, lease=rules.send_lease)
        return
    gate = job_gate(obj, job)
    if isinstance(gate, Hold):
        held = {"held": gate.reason, "held_since": obj.held_since or now}
        d.set_object(obj.model_copy(update={**held, "due_at": now + rules.job_recheck}))
        d.note("send held", "held", job=obj.job, key=obj.key, reason=gate.reason)
        return
    if isinstance(gate, NewKey):
        d.note("job re-created; new key", "rekeys_new_job", job=obj.job, old=obj.key, new=gate.key)
        renewed = {"key": gate.key, "attempt": gate.attempt, "keys": [*obj.keys, gate.key]}
        obj = obj.model_copy(update=renewed)
    carry = _carry(d, obj, job)
    if isinstance(carry, str):
        fail(d, carry, now, lease=rules.send_lease)
        return
    # The sweep claims with the short lease and confirms the next re-send after the send; an
    # event commits the next re-send at once (its redelivery re-sends: _send_again).
    due = now + (rules.send_lease if d.lease_sends else rules.resend_interval)
    sent = obj.model_copy(
        update={
            "send_count": obj.send_count + 1,
            "last_sent_at": now,
            "due_at": due,
            "generation": job.generation,
            "held": None,
            "held_since": None,
        }
    )
    d.set_object(sent)
    d.send(sent, job, carry, retrigger)
    d.count(hourly=True, sends=1)
    d.note("data object sent", "resends" if obj.send_count else "sends", job=obj.job, key=obj.key)


def _carry(d: Draft, obj: DataObject, job: StreamingJob) -> dict[str, Any] | str | None:
    """Adjustment jobs get the audited job's output (label attribute + metadata); a str: why not."""
    if job.adjusts is None:
        return None
    previous = d.find(job.adjusts, obj.object_id)
    if previous is None or previous.output is None:
        return f"{obj.job} adjusts {job.adjusts}, which has no output"
    out = previous.output
    return {out.label_attribute: out.label_uri, f"{out.label_attribute}-metadata": out.metadata}


def _send_due(d: Draft, rules: Rules, jobs: Jobs, now: float) -> None:
    """Every waiting object whose due time has passed: re-sent with its key (or held)."""
    for obj in list(d.objects.values()):
        due = obj.due_at is not None and obj.due_at <= now
        if obj.status is ObjectStatus.WAITING and due and not d.sending(obj):
            _dispatch(d, obj, rules, jobs, now)
            if d.task is not None and d.task.status is not TaskStatus.ACTIVE:
                return  # a send failed the task


def _send_again(d: Draft, objects: list[DataObject], jobs: Jobs, why: str) -> None:
    """Send each waiting object again under its key, writing nothing: a redelivered event
    redoes the sends its first delivery committed, in case a crash came before them (a no-op
    for Ground Truth when they went out: it labels a key once). Held objects stay held, and an
    object whose job was re-created waits for the sweep's new key."""
    for obj in objects:
        job = jobs.get(obj.job)
        if obj.status is not ObjectStatus.WAITING or obj.held or d.sending(obj) or job is None:
            continue
        if not job.accepting_input or obj.generation not in (None, job.generation):
            continue
        carry = _carry(d, obj, job)
        if isinstance(carry, str):
            continue
        d.send(obj, job, carry)
        d.note("sent again under its key", "redelivery_sends", why=why, job=obj.job, key=obj.key)


# --- Output (LevelCompleted) --------------------------------------------------------------------
def _stored(d: Draft, job: str, object_id: str, key: str) -> DataObject | None:
    obj = d.find(job, object_id)
    if obj is None:
        d.reject = f"no data object {job}/{object_id} in task {_task_id(d, key)}"
    return obj


def _task_id(d: Draft, key: str) -> str:
    return d.task.task_id if d.task is not None else key.split("/")[0]


def output(d: Draft, e: Output, *, rules: Rules, jobs: Jobs, now: float) -> None:
    p = e.completed
    obj = d.find(p.job_name, p.data_object_id)
    if obj is None:
        d.reject = f"no data object {p.job_name}/{p.data_object_id} in task {p.task_id}"
        return
    if p.dedup_key not in obj.keys:
        d.reject = f"dedup key {p.dedup_key} was never sent for {p.job_name} of {p.task_id}"
        return
    if _set_aside(d, obj, p.dedup_key, "output", now, label_uri=p.label_uri):
        return
    if d.task is None or d.task.status is TaskStatus.FAILED:
        d.note("completion for a task that is not running; ignored")
        return
    if obj.status is ObjectStatus.WAITING:
        result = JobResult(
            label_attribute=p.label_attribute,
            label_uri=p.label_uri,
            metadata=p.metadata,
            adjustment_status=p.adjustment_status,
            worker=p.worker,
        )
        done = {"status": ObjectStatus.DONE, "output": result, "done_at": now, "due_at": None}
        d.set_object(obj.model_copy(update=done))
        d.count(hourly=True, outputs=1, **{job_output_counter(obj.job): 1})
        d.count(o_waiting=-1)
        d.note("level output recorded", "outputs", job=obj.job, task_level=obj.level)
    else:
        d.note("duplicate completion ignored", job=obj.job)
        _redo_output(d, obj, jobs)
    progress(d, rules, jobs, now)


def _redo_output(d: Draft, obj: DataObject, jobs: Jobs) -> None:
    """A repeated output redoes what recording it did, in case a crash cut that short: the
    next level's sends (same keys) or LabelsFinalized (same event id)."""
    task = d.task
    if task is None or obj.status is not ObjectStatus.DONE:
        return
    if task.status is TaskStatus.FINALIZED and obj.level == len(task.levels):
        _publish_finalized(d, task, jobs)
        d.note("LabelsFinalized published again", "redelivery_publishes")
    elif task.status is TaskStatus.ACTIVE and obj.level == task.level - 1:
        _send_again(d, d.of_level(task.level), jobs, "output repeated")


def _set_aside(d: Draft, obj: DataObject, key: str, what: str, now: float, **detail: Any) -> bool:
    """An output or expiry for a stopped task: kept for the record, never acted upon."""
    if d.task is None or d.task.status is not TaskStatus.STOPPED:
        return False
    late = LateOutput(
        task_id=obj.task_id,
        job=obj.job,
        object_id=obj.object_id,
        key=key,
        what=what,
        at=now,
        **detail,
    )
    d.put_late(late)
    d.note("output for a stopped task recorded and ignored", "late_outputs", job=obj.job, kind=what)
    return True


def progress(d: Draft, rules: Rules, jobs: Jobs, now: float) -> None:
    """A complete level moves on: the next level, or LabelsFinalized after the last."""
    task = d.task
    if task is None:
        return
    if task.status is TaskStatus.FINALIZING:
        _finalize(d, task, jobs, rules, now)
        return
    if task.status is not TaskStatus.ACTIVE:
        return
    done = {o.job for o in d.of_level(task.level) if o.status is ObjectStatus.DONE}
    if not set(task.jobs_of(task.level)) <= done:
        return
    if task.final_level:
        finalizing = _moved(d, task, TaskStatus.FINALIZING, now, "levels-done")
        if d.lease_sends:  # the sweep's: confirmed after the publish
            finalizing = finalizing.model_copy(update={"due_at": now + rules.send_lease})
        d.set_task(finalizing)
        _finalize(d, finalizing, jobs, rules, now)
        return
    level = task.level + 1
    history = HistoryEntry(at=now, event="level-started", detail=f"level {level}")
    advanced = task.model_copy(
        update={
            "level": level,
            "level_started_at": now,
            "updated_at": now,
            "level_retriggers": 0,
            "due_at": now + rules.level_timeout,
            "history": [*task.history, history],
        }
    )
    d.set_task(advanced)
    d.move(task_counter(task.status, task.level), task_counter(task.status, level))
    d.note("level complete; next level", "levels_advanced", task_level=level)
    _create_level(d, advanced, level, rules, jobs, now)


def _moved(
    d: Draft,
    task: AnnotationTask,
    status: TaskStatus,
    now: float,
    event: str | None = None,
    reason: str | None = None,
    *,
    on_confirm: bool = False,
) -> AnnotationTask:
    """``task`` in ``status`` (history, counters); its due time cleared."""
    entry = HistoryEntry(at=now, event=event or status.value, detail=reason or "")
    update: dict[str, Any] = {
        "status": status,
        "updated_at": now,
        "due_at": None,
        "history": [*task.history, entry],
    }
    if reason is not None:
        update["failure_reason"] = reason
    before, after = task_counter(task.status, task.level), task_counter(status, task.level)
    d.move(before, after, on_confirm=on_confirm)
    return task.model_copy(update=update)


def _finalize(d: Draft, task: AnnotationTask, jobs: Jobs, rules: Rules, now: float) -> None:
    """Publish LabelsFinalized (a derived id: a re-publish is a duplicate). An event commits
    the task finalized (its redelivery publishes again: _redo_output); the sweep confirms it
    after the publish. Either way the finalized task stays due at the re-send interval until
    its clip completes (ClipCompleted clears it): an event whose every delivery failed to
    publish is published again then, not lost. A gold copy, which no ClipCompleted follows,
    is not due."""
    outputs = _publish_finalized(d, task, jobs)
    moved = _moved(d, task, TaskStatus.FINALIZED, now, "labels-finalized", on_confirm=d.lease_sends)
    # A gold copy has no clip to complete (nothing would clear it): never due.
    due = now + rules.resend_interval if task.gold is None else None
    finalized = moved.model_copy(update={"due_at": due})
    if d.lease_sends:
        d.confirm_task = finalized
    else:
        d.set_task(finalized)
    d.note("labels finalized", "tasks_finalized", outputs=outputs)
    d.outcome = "finalized"


def _publish_finalized(d: Draft, task: AnnotationTask, jobs: Jobs) -> int:
    """Publish the task's LabelsFinalized (every level's outputs) under the task's derived id;
    the number of outputs."""
    outputs = []
    for obj in sorted(d.objects.values(), key=lambda o: (o.level, o.job)):
        job = jobs.get(obj.job)
        if obj.output is None or job is None:
            continue
        outputs.append(
            JobOutput(
                job_name=obj.job,
                job_type=job.job_type,
                level=obj.level,
                label_attribute=obj.output.label_attribute,
                label_uri=obj.output.label_uri,
                adjusts=job.adjusts,
                metadata=obj.output.metadata,
                worker=obj.output.worker,
            )
        )
    payload = LabelsFinalized(
        task_id=task.task_id,
        clip_id=task.clip_id,
        workflow=task.workflow,
        clip_workflows=task.clip_workflows,
        drive=task.drive,
        clip=task.clip,
        frames=task.frames,
        outputs=outputs,
        gold=task.gold,
    )
    d.events.append(Outbound(payload, derived_event_id(task.task_id, "LabelsFinalized")))
    return len(outputs)


# --- Returned (TaskExpired, retryable LevelFailed) ----------------------------------------------
def returned(d: Draft, e: Returned, *, rules: Rules, jobs: Jobs, now: float) -> None:
    """One new key per return, never more, up to ``max_expirations``."""
    obj = _stored(d, e.job, e.object_id, e.key)
    if obj is None or _set_aside(d, obj, e.key, "expired", now, detail=e.reason):
        return
    if d.task is None or d.task.status is not TaskStatus.ACTIVE:
        d.note("expiry for a task that is not running; ignored")
        return
    if e.key != obj.key or obj.status is not ObjectStatus.WAITING:
        d.note("stale or repeated expiry ignored", key=e.key, current=obj.key)
        if obj.expired_keys[-1:] == [e.key]:  # its new key (and what else it sent), if a
            _send_again(d, d.of_level(obj.level), jobs, "return repeated")  # crash cut it short
        return
    d.note("data object returned unlabeled", "expirations", job=obj.job, key=e.key)
    expired = {
        "expirations": obj.expirations + 1,
        "expired_keys": [*obj.expired_keys, e.key],
    }
    d.count(hourly=True, expirations=1)
    if obj.expirations + 1 > rules.max_expirations:
        d.set_object(obj.model_copy(update=expired))
        reason = (
            f"{obj.job}: data object expired {obj.expirations + 1} times "
            f"(LAVA_DISPATCH__MAX_EXPIRATIONS={rules.max_expirations}); last: {e.reason}"
        )
        fail(d, reason, now, "labeling", rules.send_lease)
        return
    attempt = obj.attempt + 1
    key = dedup_key_id(obj.task_id, obj.job, obj.object_id, attempt)
    rekeyed = {**expired, "key": key, "attempt": attempt, "keys": [*obj.keys, key], "due_at": now}
    d.set_object(obj.model_copy(update=rekeyed))
    d.count(hourly=True, rekeys=1)
    d.note("expired; re-sending with a new key", "rekeys", old=e.key, new=key)
    _send_due(d, rules, jobs, now)


def labeling_failed(d: Draft, e: LabelingFailed, *, rules: Rules, jobs: Jobs, now: float) -> None:
    obj = _stored(d, e.job, e.object_id, e.key)
    if obj is None or _set_aside(d, obj, e.key, "failed", now, detail=e.reason):
        return
    if d.task is None or d.task.status is not TaskStatus.ACTIVE:
        d.note("failure for a task that is not running; ignored")
        return
    reason = f"Ground Truth could not label {e.job}: {e.reason}"
    fail(d, reason, now, "labeling", rules.send_lease)


# --- failure ------------------------------------------------------------------------------------
def fail(
    d: Draft, reason: str, now: float, stage: FailureStage = "dispatch", lease: float = 0.0
) -> None:
    """The task fails (if it still runs): nothing of it is due any more; ClipFailed.

    The failed task stays due until the confirmation (``lease`` seconds): a crash before
    ClipFailed is published leaves it to the sweep, which publishes it again."""
    task = d.task
    if task is None:
        return
    if task.status in (TaskStatus.ACTIVE, TaskStatus.FINALIZING):
        failed = _moved(d, task, TaskStatus.FAILED, now, reason=reason)
        d.set_task(failed.model_copy(update={"due_at": now + lease}))
        d.confirm_task = failed
        d.note("task failed", "tasks_failed", reason=reason)
    _stop_waiting(d, ObjectStatus.FAILED)
    _announce_failure(d, task.clip_id, task.task_id, reason, stage)
    d.outcome = "failed"


def _stop_waiting(d: Draft, status: ObjectStatus) -> None:
    for obj in list(d.objects.values()):
        if obj.status is ObjectStatus.WAITING:
            d.set_object(obj.model_copy(update={"status": status, "due_at": None}))
            d.count(o_waiting=-1)
            d.unsend(obj)


def _announce_failure(
    d: Draft, clip_id: str, task_id: str, reason: str, stage: FailureStage
) -> None:
    failed = ClipFailed(clip_id=clip_id, task_id=task_id, stage=stage, reason=reason)
    d.events.append(Outbound(failed, derived_event_id(task_id, "ClipFailed")))


def abort(d: Draft, e: Abort, *, rules: Rules, jobs: Jobs, now: float) -> None:
    if d.task is None:
        _announce_failure(d, e.clip_id, e.task_id, e.reason, e.stage)
        return
    fail(d, e.reason, now, e.stage, rules.send_lease)


# --- the sweep ----------------------------------------------------------------------------------
def sweep(d: Draft, e: Sweep, *, rules: Rules, jobs: Jobs, now: float) -> None:
    task = d.task
    if task is None:
        return
    if task.status is TaskStatus.STOPPED:
        # An object written after the stop (by a writer that read the task before it).
        _stop_waiting(d, ObjectStatus.STOPPED)
        return
    task_due = task.due_at is not None and task.due_at <= now
    if task.status is TaskStatus.FINALIZING and task_due:
        _finalize(d, task, jobs, rules, now)
        return
    if task.status is TaskStatus.FINALIZED and task_due:  # its clip has not completed yet
        _publish_finalized(d, task, jobs)
        d.confirm_task = task.model_copy(update={"due_at": now + rules.resend_interval})
        d.note("LabelsFinalized published again; the clip has not completed", "republished")
        return
    if task.status is TaskStatus.FAILED and task_due:  # a crash before ClipFailed's publish
        reason = task.failure_reason or "failed"
        _announce_failure(d, task.clip_id, task.task_id, reason, "dispatch")
        d.confirm_task = task.model_copy(update={"due_at": None})
        return
    if task.status is not TaskStatus.ACTIVE:
        return
    _send_due(d, rules, jobs, now)
    if task_due and d.task is not None and d.task.status is TaskStatus.ACTIVE:
        _level_deadline(d, d.task, rules, jobs, now)


def _level_deadline(d: Draft, task: AnnotationTask, rules: Rules, jobs: Jobs, now: float) -> None:
    waiting = [o for o in d.of_level(task.level) if o.status is ObjectStatus.WAITING]
    if not waiting:
        d.outcome = "advanced"
        progress(d, rules, jobs, now)  # a level completed by an older version, never moved
        return
    if all(o.held for o in waiting):
        # Its jobs take no input (job gate): waiting is not the workforce's fault.
        d.set_task(task.model_copy(update={"due_at": now + rules.level_timeout}))
        return
    if task.level_retriggers >= rules.level_max_retriggers:
        reason = (
            f"level {task.level} not complete after {task.level_retriggers} re-triggers "
            f"({', '.join(o.job for o in waiting)} still waiting)"
        )
        fail(d, reason, now, "labeling", rules.send_lease)
        return
    history = HistoryEntry(at=now, event="level-retriggered", detail=f"level {task.level}")
    retriggered = {
        "level_retriggers": task.level_retriggers + 1,
        "due_at": now + rules.level_timeout,
        "updated_at": now,
        "history": [*task.history, history],
    }
    d.set_task(task.model_copy(update=retriggered))
    d.note("level overdue; re-triggering", "level_retriggers", task_level=task.level)
    d.outcome = "retriggered"
    # Same keys: the policy never re-keys a live item. What this sweep sends already is not
    # sent twice.
    for obj in waiting:
        current = d.objects.get(object_key(obj), obj)
        if not d.sending(current) and not current.held:
            _dispatch(d, current, rules, jobs, now, retrigger=True)
