"""Sending only to jobs that take input: the job lifecycle, as the dispatcher sees it.

Ground Truth facts (handbook; sms-streaming-create-job): a new streaming job is
``Initializing`` and loses what is published to its input topic until it is ``InProgress``; a
streaming job stops by itself after 10 days without input (or when an operator stops it), and
sends to a stopped job go nowhere. Re-creating it (``lava jobs create``) makes a new Ground
Truth job - a new generation in the registry - which has never seen any key.

So, per due data object, the policy holds the send, re-keys it for a re-created job or sends
it (the job gate: ``policy_types.job_gate``, one row of the policy table).

A job that stops while objects wait for its output is noticed when the registry is refreshed
(:meth:`JobWatch.refresh`, every ``LAVA_DISPATCH__JOB_RECHECK_SECONDS``): its waiting objects
become due at once, so the sweep holds them visibly; once the job is re-created and
InProgress, the sweep sends them to the new generation with new keys.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import structlog

from shared.labeling.registry import ENDED

if TYPE_CHECKING:
    from services.dispatcher.jobs import JobDirectory
    from shared.labeling.jobs import JobManager
    from shared.tasks.store import TaskStore

log = structlog.get_logger(__name__)


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
        self._jobs.remember(jobs)
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
