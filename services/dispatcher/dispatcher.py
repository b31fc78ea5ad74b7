"""The dispatcher's handlers: load one task (one Query) -> decide (pure) -> apply the plan.

The dedup-key and resend policy itself is ``policy.py`` (a table of cases, pure); carrying a
plan out, with its commit order and crash points, is ``applier.py``. A decision whose commit
lost a race (another replica or an operator changed the task since it was read: the revision
guard of ``shared/tasks/plan.py``) reads the task again and decides again.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import structlog

from services.dispatcher.applier import PlanApplier, TaskFailure
from services.dispatcher.gold_mix import GoldMixer
from services.dispatcher.jobs import JobDirectory, JobMissing
from services.dispatcher.plan import Plan
from services.dispatcher.policy import (
    Abort,
    LabelingFailed,
    Output,
    PolicyEvent,
    Returned,
    Rules,
    Start,
    Sweep,
    TaskAggregate,
    decide,
)
from services.dispatcher.sender import InputSender
from shared import tracing
from shared.acking import Reject
from shared.clock import Clock
from shared.events import (
    ClipCompleted,
    ClipFailed,
    Event,
    FramesReady,
    LevelCompleted,
    LevelFailed,
    TaskExpired,
)
from shared.labeling.streaming_job import StreamingJob
from shared.loops import every
from shared.ports import Publish
from shared.retry import RetryPolicy
from shared.settings import DispatcherSettings
from shared.tasks.model import ClipCompletion, ClipFailure, ClipStatus, TaskStatus
from shared.tasks.store import DUE_OBJECT, DUE_TASK, TaskStore
from shared.tasks.workflows import WorkflowResolver
from shared.workflows import WorkflowError

log = structlog.get_logger(__name__)

# Decisions in a row that may lose their commit to a concurrent writer before giving up.
RACES = 8


@dataclass
class SweepReport:
    resent: int = 0
    first_sends: int = 0
    retriggered: int = 0
    finalized: int = 0
    failed: int = 0
    advanced: int = 0

    def add(self, plan: Plan) -> None:
        """Count what one task's sweep plan did (a re-trigger's sends are the re-trigger)."""
        for sent in (s for s in plan.sends if not s.retrigger):
            if sent.obj.send_count > 1:
                self.resent += 1
            else:
                self.first_sends += 1
        if plan.outcome in ("retriggered", "finalized", "failed", "advanced"):
            setattr(self, plan.outcome, getattr(self, plan.outcome) + 1)


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
    """The handlers: load the task (one Query) -> decide (pure) -> apply the plan."""

    def __init__(
        self,
        settings: DispatcherSettings,
        store: TaskStore,
        sender: InputSender,
        jobs: JobDirectory,
        workflows: WorkflowResolver,
        publish: Publish,
        clock: Clock,
        gold: GoldMixer | None = None,
    ) -> None:
        self.settings = settings
        self.gold = gold
        self.store = store
        self.jobs = jobs
        self.workflows = workflows
        self.publish = publish
        self.clock = clock
        self.rules = Rules.of(settings.dispatch)
        retry = RetryPolicy(
            base_seconds=settings.dispatch.retry_base_seconds,
            factor=settings.dispatch.retry_factor,
            attempts=settings.dispatch.retry_attempts,
        )
        self.counters = Counters()
        self.applier = PlanApplier(store, sender, publish, clock, retry, self.counters.add)

    def now(self) -> float:
        return self.clock.now().timestamp()

    # --- load -> decide -> apply -----------------------------------------------------------
    async def _aggregate(
        self, task_id: str, levels: list[list[str]] | None = None, *, read: bool = True
    ) -> TaskAggregate:
        """The task as stored (one Query) and its jobs; ``read=False``: assume it is new."""
        task, objects, _ = await self.store.load(task_id) if read else (None, [], [])
        names = {job for level in (task.levels if task else levels or []) for job in level}
        jobs: dict[str, StreamingJob] = {}
        for name in sorted(names):
            try:
                jobs[name] = await self.jobs.get(name)
            except JobMissing:
                continue  # the policy fails the task when it needs the job
        return TaskAggregate(task, tuple(objects), self.rules, jobs)

    async def handle(
        self, task_id: str, event: PolicyEvent, levels: list[list[str]] | None = None
    ) -> Plan:
        """Decide on ``event`` over the task as read and carry the plan out; a commit that
        lost a race (the task changed since it was read) reads again and decides again.

        A FramesReady (``levels`` given) first assumes the task is new, without reading: its
        creation is conditional, so a duplicate loses the commit and is decided on a read."""
        for attempt in range(RACES):
            read = attempt > 0 or levels is None
            aggregate = await self._aggregate(task_id, levels, read=read)
            plan = decide(aggregate, event, self.now())
            if plan.reject is not None:
                raise Reject(plan.reject)
            try:
                if await self._apply(plan, task_id, event, aggregate):
                    return plan
            except TaskFailure as exc:
                return await self._abort(task_id, aggregate, str(exc))
        raise RuntimeError(f"task {task_id} changed under {RACES} decisions in a row; retry later")

    async def _apply(
        self, plan: Plan, task_id: str, event: PolicyEvent, aggregate: TaskAggregate
    ) -> bool:
        """Carry ``plan`` out; a sweep's work runs in its task's trace (re-sends, advances)."""
        if not isinstance(event, Sweep) or aggregate.task is None:
            return await self.applier.apply(plan, task_id)
        with tracing.resuming(aggregate.task.trace_context, "dispatcher sweep task"):
            return await self.applier.apply(plan, task_id)

    async def _abort(self, task_id: str, read: TaskAggregate, reason: str) -> Plan:
        """A lasting AWS failure: the task fails with the reason (read again: the failed
        plan may have committed its claims)."""
        clip_id = read.task.clip_id if read.task else task_id.split(".")[0]
        aggregate = await self._aggregate(task_id)
        plan = decide(aggregate, Abort(clip_id, task_id, reason), self.now())
        await self.applier.apply(plan, task_id)
        return plan

    # --- the events ------------------------------------------------------------------------
    async def on_frames_ready(self, event: Event[FramesReady]) -> None:
        p = event.payload
        try:
            levels = await self.workflows.levels(p.workflow)
            for name in [job for level in levels for job in level]:
                await self.jobs.get(name)
        except (WorkflowError, JobMissing) as exc:
            await self.handle(p.task_id, Start(p, [], str(exc), tracing.carrier()))
            return
        await self.handle(p.task_id, Start(p, levels, trace_context=tracing.carrier()), levels)
        copy = await self.gold.copy_after(p) if self.gold is not None else None
        if copy is not None:  # after the real task: a redelivery repeats both, each made once
            await self.handle(copy.task_id, Start(copy, levels, trace_context=None), levels)

    async def on_level_completed(self, event: Event[LevelCompleted]) -> None:
        await self.handle(event.payload.task_id, Output(event.payload))

    async def on_task_expired(self, event: Event[TaskExpired]) -> None:
        p = event.payload
        returned = Returned(p.job_name, p.data_object_id, p.dedup_key, p.failure_reason)
        await self.handle(p.task_id, returned)

    async def on_level_failed(self, event: Event[LevelFailed]) -> None:
        """A non-expiry failure: a ClientError fails the task; a server-side error is
        re-sent under a new key, exactly like an expiry (Ground Truth has seen the old one)."""
        p = event.payload
        args = (p.job_name, p.data_object_id, p.dedup_key, p.failure_reason)
        await self.handle(p.task_id, Returned(*args) if p.retryable else LabelingFailed(*args))

    # --- clip outcomes ----------------------------------------------------------------------
    async def on_clip_completed(self, event: Event[ClipCompleted]) -> None:
        p = event.payload
        if p.tasks_completed:
            return  # they completed with the clip record, in post-processing's transaction
        now = self.now()
        # The clip record completed first (post-processing, with the dataset entry): its
        # tasks follow here, in one write (docs/clipowner.md). The event names them; an
        # older post-processing's does not, and its record is read for them.
        clip = None if p.task_ids is not None else await self.store.clip(p.clip_id)
        await self.store.move_tasks(
            p.task_ids if p.task_ids is not None else clip.tasks if clip else [],
            TaskStatus.COMPLETED,
            [TaskStatus.FINALIZED, TaskStatus.FINALIZING],
            now,
            event="clip-completed",
        )
        if p.task_ids is not None or (clip is not None and clip.status is ClipStatus.COMPLETED):
            return  # as post-processing recorded it: nothing to write
        completion = ClipCompletion(
            labels_uri=p.labels_uri, summary_uri=p.summary_uri, warnings=p.warnings
        )
        await self.store.set_clip_outcome(p.clip_id, completion, now)

    async def on_clip_failed(self, event: Event[ClipFailed]) -> None:
        p = event.payload
        now = self.now()
        clip = await self.store.clip(p.clip_id)
        if p.stage == "postproc":
            await self.store.move_tasks(
                clip.tasks if clip else [],
                TaskStatus.FAILED,
                [TaskStatus.FINALIZED, TaskStatus.FINALIZING],  # completed tasks stay so
                now,
                reason=f"post-processing: {p.reason}",
            )
        failure = ClipFailure(stage=p.stage, reason=p.reason, task_id=p.task_id)
        await self.store.set_clip_outcome(p.clip_id, failure, now)

    # --- the sweep --------------------------------------------------------------------------
    async def sweep(self, limit: int = 200) -> SweepReport:
        """Re-send what is due (same key), re-trigger overdue levels, finish interrupted work.

        Reads only the due-index entries that are due, then each such task in one Query.
        """
        report = SweepReport()
        now = self.now()
        due = await self.store.due(DUE_OBJECT, now, limit) + await self.store.due(
            DUE_TASK, now, limit
        )
        for task_id in dict.fromkeys(str(item["task_id"]) for item in due):
            report.add(await self.handle(task_id, Sweep()))
        return report

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
