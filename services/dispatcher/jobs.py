"""The streaming jobs the dispatcher sends to, looked up in the registry and cached briefly.

A job is returned whatever its status: whether to send to it now is the dispatcher's decision
(``job_hold``), made per data object.
"""

from __future__ import annotations

import time

from shared.labeling.registry import JobRegistry, StreamingJob


class JobMissing(LookupError):
    pass


class JobDirectory:
    def __init__(self, registry: JobRegistry, ttl_seconds: float = 60.0) -> None:
        self._registry = registry
        self._ttl = ttl_seconds
        self._cache: dict[str, tuple[float, StreamingJob]] = {}

    async def get(self, name: str) -> StreamingJob:
        cached = self._cache.get(name)
        if cached is not None and time.monotonic() - cached[0] < self._ttl:
            return cached[1]
        job = await self._registry.get(name)
        if job is None:
            raise JobMissing(
                f"streaming job {name} is not registered (create it: lava jobs create-defaults)"
            )
        self._cache[name] = (time.monotonic(), job)
        return job

    def forget(self) -> None:
        """Read every job again next time (after the registry was refreshed)."""
        self._cache.clear()

    def remember(self, jobs: list[StreamingJob]) -> None:
        """The jobs as the status refresh just read them (so handlers read none themselves)."""
        self._cache = {job.name: (time.monotonic(), job) for job in jobs}
