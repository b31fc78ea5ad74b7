"""Wiring of the dispatcher: DynamoDB, SNS and the bus around the Dispatcher."""

from __future__ import annotations

import asyncio
from functools import partial

from services.dispatcher.dispatcher import Dispatcher
from services.dispatcher.gold_mix import GoldMixer
from services.dispatcher.jobs import JobDirectory
from services.dispatcher.sender import InputSender
from shared.aws import AwsClients
from shared.clock import Clock, SystemClock
from shared.events import (
    ClipCompleted,
    ClipFailed,
    FramesReady,
    LevelCompleted,
    LevelFailed,
    TaskExpired,
)
from shared.labeling.jobs import JobManager
from shared.loops import every
from shared.ports import Publish
from shared.quality.gold_clips import GoldClips
from shared.runtime import ServiceRuntime, run_service
from shared.seal import Sealer
from shared.settings import DispatcherSettings
from shared.tasks.store import TaskStore
from shared.tasks.workflows import WorkflowResolver
from shared.workflows import load_catalog


def wire_dispatcher(
    settings: DispatcherSettings,
    aws: AwsClients,
    publish: Publish,
    clock: Clock,
    *,
    sender: InputSender | None = None,
) -> Dispatcher:
    """The dispatcher on its production adapters (DynamoDB store, SNS sender, job registry)."""
    store = TaskStore(aws, settings)
    gold = GoldMixer(
        GoldClips(aws, settings.names.bucket),
        settings.quality.gold_rate,
        settings.quality.gold_refresh_seconds,
        clock,
    )
    return Dispatcher(
        settings,
        store,
        sender
        or InputSender(
            aws,
            settings.dispatch.dedup_key_name,
            Sealer.configured(settings),
        ),
        # Kept current by the job refresh (watch_jobs): handlers read no job.
        JobDirectory(JobManager(aws, settings), store),
        WorkflowResolver(load_catalog(settings.labeling.workflows_file), aws, store.table),
        publish,
        clock,
        gold if settings.quality.gold_rate > 0 else None,
    )


def make_dispatcher(
    runtime: ServiceRuntime[DispatcherSettings], clock: Clock | None = None
) -> Dispatcher:
    dispatcher = wire_dispatcher(
        runtime.settings, runtime.aws, runtime.bus.publish, clock or SystemClock()
    )
    counter = runtime.metrics.counter(
        "lava_dispatch_actions", "Sends, re-sends, re-keys, expirations, failures...", ("action",)
    )
    dispatcher.counters.observer = lambda name, n: counter.labels(runtime.name, name).inc(n)
    return dispatcher


async def watch_jobs(
    runtime: ServiceRuntime[DispatcherSettings], dispatcher: Dispatcher, stop: asyncio.Event
) -> None:
    """Refresh the jobs' statuses (DescribeLabelingJob) and react to stopped jobs: often
    while a job does not take input, seldom once all do (services/dispatcher/jobs.py)."""
    dispatch = runtime.settings.dispatch

    async def step() -> None:
        await dispatcher.jobs.refresh(dispatcher.now())

    def interval() -> float:
        return dispatcher.jobs.next_refresh_in(
            dispatch.job_recheck_seconds, dispatch.job_list_seconds
        )

    await every(stop, interval, step, "job status refresh failed; next round retries")


async def build(runtime: ServiceRuntime[DispatcherSettings]) -> None:
    dispatcher = make_dispatcher(runtime)
    runtime.add_loop("jobs", partial(watch_jobs, runtime, dispatcher))
    runtime.handle(FramesReady, dispatcher.on_frames_ready)
    runtime.handle(LevelCompleted, dispatcher.on_level_completed)
    runtime.handle(TaskExpired, dispatcher.on_task_expired)
    runtime.handle(LevelFailed, dispatcher.on_level_failed)
    runtime.handle(ClipCompleted, dispatcher.on_clip_completed)
    runtime.handle(ClipFailed, dispatcher.on_clip_failed)
    runtime.add_loop("sweep", dispatcher.run_sweeps)


def main() -> None:
    settings = DispatcherSettings.load_or_exit()
    run_service("dispatcher", build, consumer="dispatcher", settings=settings)
