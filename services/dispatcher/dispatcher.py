"""The dispatcher: annotation tasks through their levels, under the dedup-key and resend policy.

Policy (handbook, "The dedup-key and resend policy"):
- every data object is sent with a dedup key ``{task}/{try}/{job}/{object}``;
- a waiting object is re-sent every ``resend_interval`` with the **same** key - a no-op for
  Ground Truth if the item is still queued, a rescue if the 14-day queue retention dropped it;
- when Ground Truth reports an expired task, the object is re-sent with a **new** key (Ground
  Truth has seen the old one); never re-key otherwise - a new key for a live item duplicates
  work in the worker portal;
- a level not complete within ``level_timeout`` is re-triggered the same way (same keys);
- transient AWS errors are retried (5 s, x2, 8 attempts by default); anything else fails the
  task with its reason and publishes ClipFailed.

Sends are claimed with a conditional write before they happen, so two replicas never send the
same thing twice; the claim is a short lease, so a replica that dies mid-send is covered.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any, TypeVar

import structlog
from botocore.exceptions import ClientError

from services.dispatcher.job_hold import Hold, NewKey, Send, decide
from services.dispatcher.jobs import JobDirectory, JobMissing
from services.dispatcher.sender import InputSender, SendFailed, SendInterrupted
from shared import tracing
from shared.acking import Reject
from shared.aws import describe_error, is_transient
from shared.clock import Clock
from shared.dedup import dedup_key_id
from shared.events import (
    ClipCompleted,
    ClipFailed,
    Event,
    FailureStage,
    FramesReady,
    JobOutput,
    LabelsFinalized,
    LevelCompleted,
    LevelFailed,
    TaskExpired,
    derived_event_id,
    new_event,
)
from shared.loops import every
from shared.ports import Publish
from shared.retry import RetryPolicy
from shared.settings import DispatcherSettings
from shared.tasks.model import (
    AnnotationTask,
    ClipCompletion,
    ClipFailure,
    DataObject,
    JobResult,
    LateOutput,
    ObjectStatus,
    TaskStatus,
)
from shared.tasks.store import DUE_OBJECT, DUE_TASK, TaskStore
from shared.tasks.workflows import WorkflowResolver
from shared.workflows import WorkflowError

log = structlog.get_logger(__name__)

T = TypeVar("T")


class TaskFailure(Exception):
    """Something the task cannot get past; it fails with this reason."""


def _transient(exc: BaseException) -> bool:
    return is_transient(exc) or isinstance(exc, SendInterrupted)


@dataclass
class SweepReport:
    resent: int = 0
    first_sends: int = 0
    retriggered: int = 0
    finalized: int = 0
    failed: int = 0
    advanced: int = 0


@dataclass
class Counters:
    """What the dispatcher did, for metrics and tests."""

    counts: dict[str, int] = field(default_factory=dict)
    observer: Callable[[str, int], None] | None = None

    def add(self, name: str, amount: int = 1) -> None:
        self.counts[name] = self.counts.get(name, 0) + amount
        if self.observer is not None:
            self.observer(name, amount)


class Dispatcher:
    def __init__(
        self,
        settings: DispatcherSettings,
        store: TaskStore,
        sender: InputSender,
        jobs: JobDirectory,
        workflows: WorkflowResolver,
        publish: Publish,
        clock: Clock,
    ) -> None:
        self.settings = settings
        self.store = store
        self.sender = sender
        self.jobs = jobs
        self.workflows = workflows
        self.publish = publish
        self.clock = clock
        self.retry = RetryPolicy(
            base_seconds=settings.dispatch.retry_base_seconds,
            factor=settings.dispatch.retry_factor,
            attempts=settings.dispatch.retry_attempts,
        )
        self.counters = Counters()

    # --- helpers ----------------------------------------------------------------------------
    def now(self) -> float:
        return self.clock.now().timestamp()

    async def _aws(self, what: str, operation: Callable[[], Awaitable[T]]) -> T:
        """An AWS operation under the retry policy; a lasting failure fails the task."""
        try:
            return await self.retry.call(
                operation, clock=self.clock, what=what, transient=_transient
            )
        except (ClientError, SendFailed, SendInterrupted) as exc:
            kind = "transient error persisted" if _transient(exc) else "failed"
            raise TaskFailure(f"{what} {kind} ({describe_error(exc)})") from exc
        except OSError as exc:
            raise TaskFailure(f"{what} failed ({exc!r})") from exc

    @staticmethod
    def _new_object(task: AnnotationTask, job: str, level: int, now: float) -> DataObject:
        key = dedup_key_id(task.task_id, job, "0", 1)
        return DataObject(
            task_id=task.task_id,
            job=job,
            level=level,
            source_ref=task.frames.sequence_uri,
            key=key,
            keys=[key],
            due_at=now,  # due at once: sending is claimed like any other due send
            # the output's events continue this trace (the task's, if a sweep made it)
            trace_context=tracing.carrier() or task.trace_context,
        )

    # --- FramesReady ------------------------------------------------------------------------
    async def on_frames_ready(self, event: Event[FramesReady]) -> None:
        p = event.payload
        now = self.now()
        try:
            levels = await self.workflows.levels(p.workflow)
            for name in [job for level in levels for job in level]:
                await self.jobs.get(name)
        except (WorkflowError, JobMissing) as exc:
            await self._create_failed(p, now, str(exc))
            return
        task = self._task_of(p, now, levels)
        objects = [self._new_object(task, job, 1, now) for job in levels[0]]
        level_due = now + self.settings.dispatch.level_timeout_seconds
        try:
            created = await self._aws(
                "creating the task", lambda: self.store.create_task(task, objects, level_due)
            )
            if created:
                log.info("task created", levels=levels)
                self.counters.add("tasks_created")
                await self._send(objects)  # just written, due now: no need to read them back
            else:
                log.info("task exists; FramesReady was a duplicate")
                await self._send_due(task.task_id)
        except TaskFailure as exc:
            await self.fail(task.task_id, task.clip_id, str(exc))

    @staticmethod
    def _task_of(
        p: FramesReady,
        now: float,
        levels: list[list[str]],
        status: TaskStatus = TaskStatus.ACTIVE,
        reason: str | None = None,
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
            trace_context=tracing.carrier(),
        )

    async def _create_failed(self, p: FramesReady, now: float, reason: str) -> None:
        task = self._task_of(p, now, [], TaskStatus.FAILED, reason)
        if await self.store.create_task(task, [], level_due=None):
            log.warning("task refused", reason=reason)
        await self._announce_failure(p.task_id, p.clip_id, reason)

    # --- sending ----------------------------------------------------------------------------
    async def _carry(
        self, obj: DataObject, job_adjusts: str | None, known: list[DataObject]
    ) -> dict[str, Any] | None:
        """Adjustment jobs get the audited job's output (label attribute + metadata)."""
        if job_adjusts is None:
            return None
        previous = next(
            (o for o in known if o.job == job_adjusts and o.object_id == obj.object_id), None
        ) or await self.store.find_object(obj.task_id, job_adjusts, obj.object_id)
        if previous is None or previous.output is None:
            raise TaskFailure(f"{obj.job} adjusts {job_adjusts}, which has no output")
        out = previous.output
        return {out.label_attribute: out.label_uri, f"{out.label_attribute}-metadata": out.metadata}

    async def _send(
        self, objects: list[DataObject], known: list[DataObject] | None = None
    ) -> list[DataObject]:
        """Claim and send due objects (same key); the ones this replica sent.

        ``known`` are objects already read (the audited level), to spare a read per adjuster.
        """
        now = self.now()
        objects = await self._release(objects, now)
        lease = now + self.settings.dispatch.send_lease_seconds
        claimed: list[DataObject] = []
        for obj in objects:
            if await self._aws("claiming a send", partial(self.store.claim_send, obj, lease)):
                claimed.append(obj)
        if not claimed:
            return []
        batch = []
        generation: dict[str, int] = {}
        for obj in claimed:
            job = await self.jobs.get(obj.job)
            generation[obj.job] = job.generation
            batch.append((obj, job, await self._carry(obj, job.adjusts, known or [])))
        await self._aws("SNS PublishBatch", lambda: self.sender.send(batch))
        next_due = self.now() + self.settings.dispatch.resend_interval_seconds
        for obj in claimed:
            await self._aws(
                "recording a send",
                partial(self.store.sent, obj, now, next_due, generation[obj.job]),
            )
            self.counters.add("resends" if obj.send_count else "sends")
            log.info(
                "data object sent",
                job=obj.job,
                key=obj.key,
                send=obj.send_count + 1,
                task_level=obj.level,
            )
        return claimed

    async def _release(self, objects: list[DataObject], now: float) -> list[DataObject]:
        """The objects whose job takes input (job_hold.decide), re-keyed for a re-created job;
        the others are held, visibly, until the job is InProgress."""
        ready = []
        recheck = now + self.settings.dispatch.job_recheck_seconds
        for obj in objects:
            match decide(obj, await self.jobs.get(obj.job)):
                case Hold(reason):
                    held = partial(self.store.hold, obj, reason, now, recheck)
                    if await self._aws("holding a send", held):
                        self.counters.add("held")
                        log.info("send held", job=obj.job, key=obj.key, reason=reason)
                case NewKey(attempt, key):
                    renew = partial(self.store.new_generation_key, obj, key, attempt)
                    if await self._aws("re-keying for a re-created job", renew):
                        self.counters.add("rekeys_new_job")
                        log.info("job re-created; new key", job=obj.job, old=obj.key, new=key)
                        update = {"key": key, "attempt": attempt, "keys": [*obj.keys, key]}
                        ready.append(obj.model_copy(update=update))
                case Send():
                    ready.append(obj)
        return ready

    async def _send_due(self, task_id: str) -> list[DataObject]:
        now = self.now()
        due = [
            o
            for o in await self.store.objects(task_id)
            if o.status is ObjectStatus.WAITING and o.due_at is not None and o.due_at <= now
        ]
        return await self._send(due)

    # --- LevelCompleted ---------------------------------------------------------------------
    async def on_level_completed(self, event: Event[LevelCompleted]) -> None:
        p = event.payload
        obj = await self.store.find_object(p.task_id, p.job_name, p.data_object_id)
        if obj is None:
            raise Reject(f"no data object {p.job_name}/{p.data_object_id} in task {p.task_id}")
        if p.dedup_key not in obj.keys:
            raise Reject(f"dedup key {p.dedup_key} was never sent for {p.job_name} of {p.task_id}")
        result = JobResult(
            label_attribute=p.label_attribute,
            label_uri=p.label_uri,
            metadata=p.metadata,
            adjustment_status=p.adjustment_status,
        )
        task = await self.store.get_task(p.task_id)
        if task is not None and task.status is TaskStatus.STOPPED:
            await self._record_late(
                p.task_id, p.job_name, p.data_object_id, p.dedup_key, "output", p.label_uri
            )
            return
        if task is None or task.status is TaskStatus.FAILED:
            log.info("completion for a task that is not running; ignored")
            return
        try:
            recorded = await self._aws(
                "recording an output",
                lambda: self.store.record_output(obj, p.dedup_key, result, self.now()),
            )
            if recorded:
                self.counters.add("outputs")
                log.info("level output recorded", job=p.job_name, task_level=obj.level)
            else:
                log.info("duplicate completion ignored", job=p.job_name)
            # Also after a duplicate: the replica that recorded it may have died before this.
            # The task read above is current enough: advancing is conditional on its level.
            await self._maybe_advance(p.task_id, task)
        except TaskFailure as exc:
            await self.fail(p.task_id, task.clip_id, str(exc))

    async def _maybe_advance(self, task_id: str, task: AnnotationTask | None = None) -> None:
        task = task or await self.store.get_task(task_id)
        if task is None:
            return
        if task.status is TaskStatus.FINALIZING:
            await self._finalize(task)
            return
        if task.status is not TaskStatus.ACTIVE:
            return
        objects = await self.store.objects(task_id, task.level)
        done = {o.job for o in objects if o.status is ObjectStatus.DONE}
        if not set(task.jobs_of(task.level)) <= done:
            return
        now = self.now()
        if task.final_level:
            if await self._aws(
                "finalizing the task",
                lambda: self.store.set_task_status(
                    task_id,
                    TaskStatus.FINALIZING,
                    [TaskStatus.ACTIVE],
                    now,
                    due_at=now,  # if we die before publishing, the sweep publishes
                    event="levels-done",
                    level=task.level,
                ),
            ):
                await self._finalize(task)  # it reads only what a status change leaves alone
            return
        next_level = task.level + 1
        new = [self._new_object(task, job, next_level, now) for job in task.jobs_of(next_level)]
        level_due = now + self.settings.dispatch.level_timeout_seconds
        if await self._aws(
            "starting the next level", lambda: self.store.advance(task, new, now, level_due)
        ):
            self.counters.add("levels_advanced")
            log.info(
                "level complete; next level", task_level=next_level, jobs=task.jobs_of(next_level)
            )
            await self._send(new, known=objects)  # just written, due now

    async def _finalize(self, task: AnnotationTask) -> None:
        objects = await self.store.objects(task.task_id)
        outputs = []
        for obj in sorted(objects, key=lambda o: (o.level, o.job)):
            if obj.output is None:
                continue
            job = await self.jobs.get(obj.job)
            outputs.append(
                JobOutput(
                    job_name=obj.job,
                    job_type=job.job_type,
                    level=obj.level,
                    label_attribute=obj.output.label_attribute,
                    label_uri=obj.output.label_uri,
                    adjusts=job.adjusts,
                    metadata=obj.output.metadata,
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
        )
        await self.publish(
            new_event(
                payload,
                task.task_id,
                event_id=derived_event_id(task.task_id, "LabelsFinalized"),
                now=self.clock.now,
            )
        )
        if await self.store.set_task_status(
            task.task_id,
            TaskStatus.FINALIZED,
            [TaskStatus.FINALIZING],
            self.now(),
            event="labels-finalized",
        ):
            self.counters.add("tasks_finalized")
            log.info("labels finalized", outputs=len(outputs))

    # --- TaskExpired / LevelFailed ----------------------------------------------------------
    async def on_task_expired(self, event: Event[TaskExpired]) -> None:
        p = event.payload
        await self._returned_unlabeled(
            p.task_id, p.job_name, p.data_object_id, p.dedup_key, p.failure_reason
        )

    async def on_level_failed(self, event: Event[LevelFailed]) -> None:
        """A non-expiry failure: a ClientError fails the task; a server-side error is
        re-sent under a new key, exactly like an expiry (Ground Truth has seen the old one)."""
        p = event.payload
        if p.retryable:
            await self._returned_unlabeled(
                p.task_id, p.job_name, p.data_object_id, p.dedup_key, p.failure_reason
            )
            return
        obj = await self.store.find_object(p.task_id, p.job_name, p.data_object_id)
        if obj is None:
            raise Reject(f"no data object {p.job_name}/{p.data_object_id} in task {p.task_id}")
        task = await self.store.get_task(p.task_id)
        if task is not None and task.status is TaskStatus.STOPPED:
            await self._record_late(
                p.task_id,
                p.job_name,
                p.data_object_id,
                p.dedup_key,
                "failed",
                None,
                p.failure_reason,
            )
            return
        if task is None or task.status is not TaskStatus.ACTIVE:
            log.info("failure for a task that is not running; ignored")
            return
        await self.fail(
            p.task_id,
            task.clip_id,
            f"Ground Truth could not label {p.job_name}: {p.failure_reason}",
            stage="labeling",
        )

    async def _returned_unlabeled(
        self, task_id: str, job: str, object_id: str, dedup_key: str, reason: str
    ) -> None:
        """Ground Truth gave an object back unlabeled under ``dedup_key``: one new key per
        return, never more, up to ``dispatch_max_expirations``."""
        obj = await self.store.find_object(task_id, job, object_id)
        if obj is None:
            raise Reject(f"no data object {job}/{object_id} in task {task_id}")
        task = await self.store.get_task(task_id)
        if task is not None and task.status is TaskStatus.STOPPED:
            await self._record_late(task_id, job, object_id, dedup_key, "expired", None, reason)
            return
        if task is None or task.status is not TaskStatus.ACTIVE:
            log.info("expiry for a task that is not running; ignored")
            return
        if dedup_key != obj.key or obj.status is not ObjectStatus.WAITING:
            # Already re-keyed for this expiry (a duplicate event), or an old key: one new
            # key per expiry, never more.
            log.info("stale or repeated expiry ignored", key=dedup_key, current=obj.key)
            return
        self.counters.add("expirations")
        if obj.expirations + 1 > self.settings.dispatch.max_expirations:
            await self.store.note_expiry(obj, dedup_key, self.now())
            await self.fail(
                task_id,
                task.clip_id,
                f"{job}: data object expired {obj.expirations + 1} times "
                f"(LAVA_DISPATCH__MAX_EXPIRATIONS={self.settings.dispatch.max_expirations}); "
                f"last: {reason}",
                stage="labeling",
            )
            return
        attempt = obj.attempt + 1
        new_key = dedup_key_id(obj.task_id, obj.job, obj.object_id, attempt)
        try:
            if await self._aws(
                "re-keying after an expiry",
                lambda: self.store.rekey(obj, dedup_key, new_key, attempt, self.now()),
            ):
                self.counters.add("rekeys")
                log.info("expired; re-sending with a new key", old=dedup_key, new=new_key)
                await self._send_due(task_id)
        except TaskFailure as exc:
            await self.fail(task_id, task.clip_id, str(exc))

    # --- clip outcomes ----------------------------------------------------------------------
    async def on_clip_completed(self, event: Event[ClipCompleted]) -> None:
        p = event.payload
        now = self.now()
        clip = await self.store.clip(p.clip_id)
        # Tasks first: a clip shown as completed has completed tasks.
        for task_id in clip.tasks if clip else []:
            await self.store.set_task_status(
                task_id,
                TaskStatus.COMPLETED,
                [TaskStatus.FINALIZED, TaskStatus.FINALIZING],
                now,
                event="clip-completed",
            )
        completion = ClipCompletion(
            labels_uri=p.labels_uri, summary_uri=p.summary_uri, warnings=p.warnings
        )
        await self.store.set_clip_outcome(p.clip_id, completion, now)

    async def on_clip_failed(self, event: Event[ClipFailed]) -> None:
        p = event.payload
        now = self.now()
        clip = await self.store.clip(p.clip_id)
        if p.stage == "postproc":
            for task_id in clip.tasks if clip else []:
                await self.store.set_task_status(
                    task_id,
                    TaskStatus.FAILED,
                    [TaskStatus.FINALIZED, TaskStatus.FINALIZING],  # completed tasks stay so
                    now,
                    reason=f"post-processing: {p.reason}",
                )
        failure = ClipFailure(stage=p.stage, reason=p.reason, task_id=p.task_id)
        await self.store.set_clip_outcome(p.clip_id, failure, now)

    # --- stopped tasks ----------------------------------------------------------------------
    async def _record_late(
        self,
        task_id: str,
        job: str,
        object_id: str,
        key: str,
        kind: str,
        label_uri: str | None,
        detail: str = "",
    ) -> None:
        """An output for a stopped task: kept for the record, never acted upon."""
        await self.store.record_late(
            LateOutput(
                task_id=task_id,
                job=job,
                object_id=object_id,
                key=key,
                what=kind,
                at=self.now(),
                label_uri=label_uri,
                detail=detail,
            )
        )
        self.counters.add("late_outputs")
        log.info("output for a stopped task recorded and ignored", job=job, kind=kind)

    async def _without_stopped(
        self, by_task: dict[str, list[DataObject]]
    ) -> dict[str, list[DataObject]]:
        """Due objects whose task was stopped are stopped instead of sent.

        The stop marks its task's waiting objects itself; this covers an object written after
        that (a next level created by a replica that read the task just before the stop).
        """
        running: dict[str, list[DataObject]] = {}
        for task_id, objects in by_task.items():
            task = await self.store.get_task(task_id)
            if task is not None and task.status is TaskStatus.STOPPED:
                for obj in objects:
                    await self.store.stop_object(obj, ObjectStatus.STOPPED)
                continue
            running[task_id] = objects
        return running

    # --- failure ----------------------------------------------------------------------------
    async def fail(
        self, task_id: str, clip_id: str, reason: str, stage: FailureStage = "dispatch"
    ) -> None:
        now = self.now()
        changed = await self.store.set_task_status(
            task_id,
            TaskStatus.FAILED,
            [TaskStatus.ACTIVE, TaskStatus.FINALIZING],
            now,
            reason=reason,
        )
        await self.store.stop_objects(task_id)
        if changed:
            self.counters.add("tasks_failed")
            log.error("task failed", reason=reason)
        await self._announce_failure(task_id, clip_id, reason, stage)

    async def _announce_failure(
        self, task_id: str, clip_id: str, reason: str, stage: FailureStage = "dispatch"
    ) -> None:
        await self.publish(
            new_event(
                ClipFailed(clip_id=clip_id, task_id=task_id, stage=stage, reason=reason),
                task_id,
                event_id=derived_event_id(task_id, "ClipFailed"),
                now=self.clock.now,
            )
        )

    # --- the sweep --------------------------------------------------------------------------
    async def sweep(self, limit: int = 200) -> SweepReport:
        """Re-send what is due (same key), re-trigger overdue levels, finish interrupted work.

        Reads only the due-index entries that are due, so its cost follows what is due.
        """
        report = SweepReport()
        now = self.now()
        due = await self.store.due(DUE_OBJECT, now, limit)
        due_objects = [DataObject.model_validate(item) for item in due]
        by_task: dict[str, list[DataObject]] = {}
        for obj in due_objects:
            by_task.setdefault(obj.task_id, []).append(obj)
        for task_id, objects in (await self._without_stopped(by_task)).items():
            try:
                with tracing.resuming(objects[0].trace_context, "dispatcher sweep re-send"):
                    sent = await self._send(objects)
            except TaskFailure as exc:
                task = await self.store.get_task(task_id)
                await self.fail(task_id, task.clip_id if task else task_id, str(exc))
                report.failed += 1
                continue
            resent = sum(1 for o in sent if o.send_count)
            report.resent += resent
            report.first_sends += len(sent) - resent
        for raw in await self.store.due(DUE_TASK, now, limit):
            task = AnnotationTask.model_validate(raw)
            try:
                with tracing.resuming(task.trace_context, "dispatcher sweep task"):
                    await self._sweep_task(task, now, report)
            except TaskFailure as exc:
                await self.fail(task.task_id, task.clip_id, str(exc))
                report.failed += 1
        return report

    async def _sweep_task(self, task: AnnotationTask, now: float, report: SweepReport) -> None:
        if task.status is TaskStatus.FINALIZING:
            await self._finalize(task)
            report.finalized += 1
            return
        if task.status is not TaskStatus.ACTIVE:
            return
        objects = await self.store.objects(task.task_id, task.level)
        waiting = [o for o in objects if o.status is ObjectStatus.WAITING]
        if not waiting:
            await self._maybe_advance(task.task_id)  # a crash between output and advance
            report.advanced += 1
            return
        if all(o.held for o in waiting):
            # Its jobs take no input (job_hold): waiting is not the workforce's fault.
            next_due = now + self.settings.dispatch.level_timeout_seconds
            await self.store.postpone_level(task, now, next_due)
            return
        if task.level_retriggers >= self.settings.dispatch.level_max_retriggers:
            await self.fail(
                task.task_id,
                task.clip_id,
                f"level {task.level} not complete after {task.level_retriggers} re-triggers "
                f"({', '.join(o.job for o in waiting)} still waiting)",
                stage="labeling",
            )
            report.failed += 1
            return
        next_due = now + self.settings.dispatch.level_timeout_seconds
        if await self.store.retrigger_level(task, now, next_due):
            self.counters.add("level_retriggers")
            log.warning("level overdue; re-triggering", task_level=task.level, waiting=len(waiting))
            report.retriggered += 1
            # Same keys: the policy never re-keys a live item. What this sweep re-sent already
            # is not sent twice.
            stale = [o for o in waiting if o.last_sent_at is None or o.last_sent_at < now]
            await self._send(stale)

    async def run_sweeps(self, stop: asyncio.Event) -> None:
        """The sweep loop (a runtime background loop)."""
        await every(
            stop,
            self.settings.dispatch.sweep_interval_seconds,
            self._logged_sweep,
            "sweep failed; next round retries",
        )

    async def _logged_sweep(self) -> None:
        started = time.monotonic()
        report = await self.sweep()
        if any(vars(report).values()):
            log.info("sweep", **vars(report), seconds=round(time.monotonic() - started, 3))
