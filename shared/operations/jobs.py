"""Operations on streaming labeling jobs (``shared.labeling.jobs.JobManager`` does the work)."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import TypeVar

from shared.labeling.backends import BackendError
from shared.labeling.jobs import Created, JobConfigError, JobManager
from shared.labeling.streaming_job import Backend, StreamingJob
from shared.operations.errors import Invalid, NotFound
from shared.workflows import WorkflowError

T = TypeVar("T")


async def _refusing(work: Awaitable[T]) -> T:
    try:
        return await work
    except (JobConfigError, BackendError, WorkflowError) as exc:
        raise Invalid(str(exc)) from None


async def create_job(
    manager: JobManager, name: str, job_type: str, adjusts: str | None, backend: Backend
) -> Created:
    """Idempotent: the same configuration again is a no-op, a different one refused."""
    return await _refusing(manager.create(name, job_type, adjusts=adjusts, backend=backend))


async def _current(manager: JobManager, name: str, archived: bool = False) -> StreamingJob:
    """The job by name; an archived one is gone to the API (404) unless asked for."""
    job = await manager.registry.get(name)
    if job is None or (job.archived_at is not None and not archived):
        raise NotFound(f"no job named {name}" + (" (archived)" if job else ""))
    return job


async def describe_job(manager: JobManager, name: str, archived: bool = False) -> StreamingJob:
    """The registry entry with its live status from the backend (recorded if it changed)."""
    job = await _current(manager, name, archived)
    live = await _refusing(manager.backend(job.backend).describe(job))
    if live.status != job.status or live.reason != job.status_reason:
        await manager.registry.set_status(name, live.status, live.reason, job.generation)
        job = job.model_copy(update={"status": live.status, "status_reason": live.reason})
    return job


async def archive_job(manager: JobManager, name: str) -> StreamingJob:
    """Stop (unless ended) and archive: gone from the API, kept for the tasks naming it."""
    await _current(manager, name)
    return await _refusing(manager.archive(name))


async def stop_job(manager: JobManager, name: str) -> StreamingJob:
    await _current(manager, name)
    return await _refusing(manager.stop(name))
