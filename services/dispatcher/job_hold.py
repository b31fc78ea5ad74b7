"""Sending only to jobs that take input: the job lifecycle, as the dispatcher sees it.

Ground Truth facts (handbook; sms-streaming-create-job): a new streaming job is
``Initializing`` and loses what is published to its input topic until it is ``InProgress``; a
streaming job stops by itself after 10 days without input (or when an operator stops it), and
sends to a stopped job go nowhere. Re-creating it (``lava jobs create``) makes a new Ground
Truth job - a new generation in the registry - which has never seen any key.

So, per due data object (the decision is pure, :func:`decide`):

- job InProgress, same generation as the last send (or never sent): send (same key);
- job InProgress, a newer generation than the last send: a new key, then send;
- anything else (Initializing, Stopping, Stopped, Failed, Completed): hold - the object stays
  waiting with ``held`` = the reason (``lava status`` shows it) and is looked at again after
  ``LAVA_DISPATCH__JOB_RECHECK_SECONDS``.

A job that stops while objects wait for its output is noticed when the registry is refreshed
(:meth:`JobWatch.refresh`, every ``LAVA_DISPATCH__JOB_RECHECK_SECONDS``): its waiting objects
become due at once, so the sweep holds them visibly; once the job is re-created and
InProgress, the sweep sends them to the new generation with new keys.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import structlog

from shared.dedup import dedup_key_id
from shared.labeling.registry import ENDED, StreamingJob
from shared.tasks.model import DataObject

if TYPE_CHECKING:
    from services.dispatcher.jobs import JobDirectory
    from shared.labeling.jobs import JobManager
    from shared.tasks.store import TaskStore

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class Send:
    pass


@dataclass(frozen=True)
class Hold:
    reason: str


@dataclass(frozen=True)
class NewKey:
    attempt: int
    key: str


Decision = Send | Hold | NewKey


def decide(obj: DataObject, job: StreamingJob) -> Decision:
    if not job.accepting_input:
        why = f" ({job.status_reason})" if job.status_reason else ""
        return Hold(f"waiting for job {job.name} to be InProgress: it is {job.status}{why}")
    if obj.generation is not None and obj.generation != job.generation:
        attempt = obj.attempt + 1
        return NewKey(attempt, dedup_key_id(obj.task_id, obj.job, obj.object_id, attempt))
    return Send()


class JobWatch:
    """Keeps the dispatcher's view of job statuses current and reacts to jobs that stopped."""

    def __init__(self, manager: JobManager, store: TaskStore, jobs: JobDirectory) -> None:
        self._manager = manager
        self._store = store
        self._jobs = jobs
        self._last: dict[str, tuple[str, int]] = {}

    async def refresh(self, now: float) -> list[str]:
        """Ask every job's backend for its status (DescribeLabelingJob); the jobs that stopped
        taking input since the last look, whose waiting objects are now due (to be held)."""
        jobs = await self._manager.refresh()
        self._jobs.forget()
        ended = []
        for job in jobs:
            before = self._last.get(job.name)
            self._last[job.name] = (job.status, job.generation)
            # Newly ended (or ended before this process looked: after a restart, look once).
            if job.status not in ENDED or before == (job.status, job.generation):
                continue
            ended.append(job.name)
            waiting = await self._store.waiting_for_job(job.name)
            for obj in waiting:
                await self._store.due_now(obj, now)
            log.warning(
                "job stopped taking input; its data objects are held",
                job=job.name,
                status=job.status,
                reason=job.status_reason,
                held=len(waiting),
            )
        return ended
