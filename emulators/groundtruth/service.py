"""The emulator process: simulates every streaming job the registry holds with the emulator
backend, picking up jobs registered after start-up, and reports its counters on /metrics and
in the registry (so `lava jobs list` shows them)."""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter

import structlog

from emulators.groundtruth.simulator import JobSimulator
from emulators.groundtruth.store import EmulatedTaskStore
from emulators.settings import EmulatorSettings
from shared.labeling.backends import EmulatorBackend
from shared.labeling.jobs import JobRegistry
from shared.labeling.streaming_job import IN_PROGRESS, STOPPED, StreamingJob
from shared.loops import every
from shared.runtime import ServiceRuntime, run_service

log = structlog.get_logger(__name__)


class Emulator:
    def __init__(self, runtime: ServiceRuntime[EmulatorSettings]) -> None:
        self.runtime = runtime
        self.settings = runtime.settings
        self.registry = JobRegistry(runtime.aws, self.settings)
        self.store = EmulatedTaskStore(runtime.aws, self.settings)
        self.backend = EmulatorBackend(runtime.aws, self.settings)
        self.simulators: dict[str, JobSimulator] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._stops: dict[str, asyncio.Event] = {}
        self._pending: Counter[tuple[str, str]] = Counter()
        metrics = runtime.metrics
        self.events = metrics.counter(
            "lava_gt_emulator_events", "Emulator events per job and kind.", ("job", "kind")
        )
        self.open_gauge = metrics.gauge(
            "lava_gt_emulator_open_tasks", "Open tasks per job.", ("job",)
        )

    def count(self, job: str, kind: str, amount: int) -> None:
        self.events.labels(self.runtime.name, job, kind).inc(amount)
        self._pending[(job, kind)] += amount

    async def flush_counters(self) -> None:
        pending, self._pending = self._pending, Counter()
        by_job: dict[str, dict[str, int]] = {}
        for (job, kind), amount in pending.items():
            by_job.setdefault(job, {})[kind] = amount
        for job, increments in by_job.items():
            try:
                await self.registry.add_counters(job, increments)
            except Exception:
                for kind, amount in increments.items():  # try again next round
                    self._pending[(job, kind)] += amount
                raise
        for name, simulator in self.simulators.items():
            self.open_gauge.labels(self.runtime.name, name).set(simulator.open_count)

    async def refresh(self) -> None:
        jobs = {j.name: j for j in await self.registry.list() if j.backend == "emulator"}
        for name, job in jobs.items():
            running = name in self._tasks and not self._tasks[name].done()
            job = await self._lifecycle(job, running)
            if running and self.simulators[name].job.generation != job.generation:
                self._stops[name].set()  # re-created: the old job is gone
                running = False
                continue  # the new generation starts once the old loop has ended
            if job.status == "InProgress" and not running:
                simulator = JobSimulator(
                    job, self.runtime.aws, self.settings, self.store, self.count
                )
                stop = asyncio.Event()
                self.simulators[name] = simulator
                self._stops[name] = stop
                self._tasks[name] = asyncio.create_task(simulator.run(stop))
                log.info("simulating job", job=name, queue=job.gt_queue_name)
            elif job.status != "InProgress" and running:
                self._stops[name].set()
                log.info("job stopped; no longer simulated", job=name)

    async def _lifecycle(self, job: StreamingJob, running: bool) -> StreamingJob:
        """Ground Truth's own status changes: Initializing -> InProgress after the (scaled)
        initialising period; InProgress -> Stopped after 10 (scaled) idle days."""
        status = await self.backend.describe(job)
        if status.status != job.status and await self.registry.set_status(
            job.name, status.status, None, job.generation
        ):
            log.info("job status", job=job.name, status=status.status)
            job = job.model_copy(update={"status": status.status})
        simulator = self.simulators.get(job.name)
        if (
            running
            and simulator is not None
            and simulator.job.generation == job.generation
            and job.status == IN_PROGRESS
            and simulator.idle()
        ):
            reason = "no input for 10 days (Ground Truth's idle stop, emulated)"
            if await self.registry.set_status(job.name, STOPPED, reason, job.generation):
                log.warning("job idle; stopped", job=job.name)
                job = job.model_copy(update={"status": STOPPED, "status_reason": reason})
        return job

    async def step(self) -> None:
        await self.refresh()
        await self.flush_counters()

    async def loop(self, stop: asyncio.Event) -> None:
        try:
            await every(
                stop,
                self.settings.emulator.poll_seconds,
                self.step,
                "emulator refresh failed; retrying",
            )
        finally:
            for event in self._stops.values():
                event.set()
            await asyncio.gather(*self._tasks.values(), return_exceptions=True)
            with contextlib.suppress(Exception):
                await self.flush_counters()


async def build(runtime: ServiceRuntime[EmulatorSettings]) -> None:
    emulator = Emulator(runtime)
    runtime.add_loop("emulator", emulator.loop)


def main() -> None:
    run_service("gt-emulator", build, uses_bus=False, settings=EmulatorSettings.load_or_exit())
