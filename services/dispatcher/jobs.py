"""The streaming jobs as the dispatcher sees them: by name, kept current by the job refresh.

A job is returned whatever its status: whether to send to it now is the policy's decision
(``policy_types.job_gate``, pure), made per data object. Ground Truth facts (handbook;
sms-streaming-create-job): a new streaming job is ``Initializing`` and loses what is published
to its input topic until it is ``InProgress``; it stops by itself after 10 days without input
(or when an operator stops it), and sends to a stopped job go nowhere. Re-creating it makes a
new generation, which has never seen any key.

The refresh (:meth:`JobDirectory.refresh`: the registry's one Scan, then each job's status
from its backend) runs

- every ``LAVA_DISPATCH__JOB_RECHECK_SECONDS`` while some job does not take input: an
  Initializing job is about to take the sends held for it, an ended one is waiting to be
  re-created - the sweep releases those holds only as fast as this refresh notices;
- every ``LAVA_DISPATCH__JOB_LIST_SECONDS`` (much longer) while every job takes input. Then
  the only news can be a job that stopped - by an operator, or by Ground Truth's idle rule,
  which cannot strike a job the dispatcher keeps feeding - and noticing it late loses
  nothing: its waiting objects are found then (``TaskStore.waiting_for_job``), held, and
  sent again with new keys once the job is re-created.

A job name the directory has not seen (a new workflow's job) is read at once (GetItem): the
event that needs it is the invalidation, no refresh is waited for.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import structlog

from shared.labeling.streaming_job import ENDED, StreamingJob

if TYPE_CHECKING:
    from shared.labeling.jobs import JobManager
    from shared.tasks.store import TaskStore

log = structlog.get_logger(__name__)


class JobMissing(LookupError):
    pass


class JobDirectory:
    """The jobs by name as last read, the refresh that keeps them current, and the reaction
    to a job that stopped (its waiting objects become due, so the sweep holds them)."""

    def __init__(self, manager: JobManager, store: TaskStore) -> None:
        self._manager = manager
        self._store = store
        self._jobs: dict[str, StreamingJob] = {}
        self._last: dict[str, tuple[str, int]] = {}

    async def get(self, name: str) -> StreamingJob:
        job = self._jobs.get(name)
        if job is not None:
            return job
        job = await self._manager.registry.get(name)
        if job is None:
            raise JobMissing(
                f"streaming job {name} is not registered (create it: lava jobs create-defaults)"
            )
        self._jobs[name] = job
        return job

    def forget(self) -> None:
        """Read every job again next time (a test changed the registry behind our back)."""
        self._jobs.clear()

    def next_refresh_in(self, recheck: float, listing: float) -> float:
        """Seconds to the next refresh: ``recheck`` while some job takes no input (or none is
        known), ``listing`` once every job is InProgress - then only a stop is news."""
        known = self._jobs.values()
        return listing if known and all(job.accepting_input for job in known) else recheck

    async def refresh(self, now: float) -> list[str]:
        """Ask every job's backend for its status (DescribeLabelingJob); the jobs that stopped
        taking input since the last look, whose waiting objects are now due (to be held)."""
        jobs = await self._manager.refresh()
        self._jobs = {job.name: job for job in jobs}
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
