"""The dispatcher sends only to jobs that take input: held while a job is Initializing or
stopped, visible in `lava status`, resumed with new keys once the job is re-created."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from devstack.testing.events import completed, frames_ready
from lava.status import snapshot
from services.dispatcher.policy_types import Hold, NewKey, Send
from services.dispatcher.policy_types import job_gate as decide
from shared.aws import AwsClients
from shared.clock import FakeClock
from shared.labeling.jobs import JobManager
from shared.labeling.streaming_job import StreamingJob
from shared.operations.status import pipeline_status
from shared.settings import Settings
from shared.tasks.model import DataObject, ObjectStatus
from tests.support.dispatch import (
    DAY,
    Recorder,
    create_jobs,
    dispatch_settings,
    inputs,
    make,
)


def _obj(**changes: Any) -> DataObject:
    base: dict[str, Any] = {
        "task_id": "c.vehicles",
        "job": "VOTVehicle",
        "level": 1,
        "source_ref": "s3://b/c/sequence.json",
        "key": "c.vehicles/1-abcd/VOTVehicle/0",
    }
    return DataObject(**{**base, **changes})


def test_decide_is_a_table_of_cases() -> None:
    job = StreamingJob(
        name="VOTVehicle",
        gt_name="x-VOTVehicle",
        arn="arn",
        job_type="vehicle",
        task_type="VideoObjectTracking",
        label_attribute="VOTVehicle-ref",
        input_topic_arn="in",
        output_topic_arn="out",
        label_config_uri="s3://b/l.json",
        backend="emulator",
        created_at=datetime.now(UTC),
        task_availability_seconds=60,
        task_time_limit_seconds=60,
        max_concurrent_tasks=10,
    )
    assert decide(_obj(), job) == Send()  # never sent
    assert decide(_obj(generation=1), job) == Send()
    initializing = job.model_copy(update={"status": "Initializing"})
    held = decide(_obj(), initializing)
    assert isinstance(held, Hold) and "it is Initializing" in held.reason
    stopped = job.model_copy(update={"status": "Stopped", "status_reason": "idle 10 days"})
    held = decide(_obj(generation=1), stopped)
    assert isinstance(held, Hold) and "Stopped (idle 10 days)" in held.reason
    renewed = decide(_obj(generation=1), job.model_copy(update={"generation": 2}))
    assert isinstance(renewed, NewKey) and renewed.attempt == 2
    assert renewed.key.startswith("c.vehicles/2-") and renewed.key.endswith("/VOTVehicle/0")


@pytest.mark.integration
async def test_a_job_still_initializing_holds_sends_until_it_is_in_progress(
    aws: AwsClients, settings: Settings
) -> None:
    s = dispatch_settings(settings, dispatch__job_recheck_seconds=30)
    jobs = await create_jobs(aws, s)
    manager = JobManager(aws, s)
    await manager.registry.set_status("VOTVehicle", "Initializing")
    clock = FakeClock()
    dispatcher = make(aws, s, clock, Recorder())
    await dispatcher.on_frames_ready(frames_ready(bucket=s.names.bucket))
    assert await inputs(aws, jobs["VOTVehicle"]) == []  # nothing published: it would be lost
    (obj,) = await dispatcher.store.objects("clip-1.vehicles")
    assert obj.status is ObjectStatus.WAITING and obj.send_count == 0
    assert obj.held and "VOTVehicle" in obj.held and "Initializing" in obj.held
    snap = await snapshot(aws, s, now=clock.now().timestamp())
    assert list(snap.held) == [("VOTVehicle", obj.held)]  # what `lava status` shows
    # held seconds ago: in the held band, not "> 1 day" (its due time is the next job check)
    status = await pipeline_status(dispatcher.store, clock.now().timestamp(), 5 * 86400)
    assert status.waiting_by_age["held"] == 1 and status.waiting_by_age["> 1 day"] == 0

    await clock.advance(31)
    await dispatcher.sweep()  # still Initializing: held again, nothing sent
    assert await inputs(aws, jobs["VOTVehicle"]) == []

    await manager.registry.set_status("VOTVehicle", "InProgress")
    dispatcher.jobs.forget()
    await clock.advance(31)
    await dispatcher.sweep()
    (sent,) = await inputs(aws, jobs["VOTVehicle"])
    assert sent["lava-dedup-id"] == obj.key  # never sent before: the first key
    (after,) = await dispatcher.store.objects("clip-1.vehicles")
    assert after.held is None and after.send_count == 1 and after.generation == 1


@pytest.mark.integration
async def test_a_stopped_job_holds_its_objects_and_resumes_them_with_new_keys(
    aws: AwsClients, settings: Settings
) -> None:
    s = dispatch_settings(settings, dispatch__job_recheck_seconds=30)
    jobs = await create_jobs(aws, s)
    manager = JobManager(aws, s)
    clock = FakeClock()
    recorder = Recorder()
    dispatcher = make(aws, s, clock, recorder)
    watch = dispatcher.jobs
    await watch.refresh(clock.now().timestamp())
    await dispatcher.on_frames_ready(frames_ready(bucket=s.names.bucket))
    (first,) = await inputs(aws, jobs["VOTVehicle"])

    await manager.stop("VOTVehicle")  # or Ground Truth's 10-day idle stop
    assert await watch.refresh(clock.now().timestamp()) == ["VOTVehicle"]
    await dispatcher.sweep()
    (obj,) = await dispatcher.store.objects("clip-1.vehicles")
    assert obj.held and "Stopped" in obj.held
    # The level deadline passes while held: not the workforce's fault, nothing re-triggered.
    await clock.advance(8 * DAY)
    await dispatcher.sweep()
    task = await dispatcher.store.get_task("clip-1.vehicles")
    assert task is not None and task.level_retriggers == 0 and task.status.value == "active"

    recreated = (await manager.create("VOTVehicle", "vehicle")).job
    assert recreated.generation == 2 and recreated.status == "InProgress"
    await watch.refresh(clock.now().timestamp())
    await clock.advance(31)
    await dispatcher.sweep()
    (resumed,) = await inputs(aws, recreated)
    assert resumed["lava-dedup-id"] != first["lava-dedup-id"]  # a new job: a new key
    (obj,) = await dispatcher.store.objects("clip-1.vehicles")
    assert obj.keys == [first["lava-dedup-id"], resumed["lava-dedup-id"]]
    assert obj.held is None and obj.generation == 2 and obj.expirations == 0
    # its output completes the level as usual
    await dispatcher.on_level_completed(
        completed("clip-1.vehicles", recreated, resumed["lava-dedup-id"], s.names.bucket)
    )
    task = await dispatcher.store.get_task("clip-1.vehicles")
    assert task is not None and task.level == 2


@pytest.mark.integration
async def test_the_job_refresh_is_rare_while_every_job_takes_input(
    aws: AwsClients, settings: Settings
) -> None:
    s = dispatch_settings(settings)
    await create_jobs(aws, s)
    dispatcher = make(aws, s, FakeClock(), Recorder())
    assert dispatcher.jobs.next_refresh_in(60, 600) == 60  # nothing known yet: look soon
    await dispatcher.jobs.refresh(0)
    assert dispatcher.jobs.next_refresh_in(60, 600) == 600  # all InProgress: only a stop is news
    await JobManager(aws, s).stop("VOTVehicle")
    assert await dispatcher.jobs.refresh(0) == ["VOTVehicle"]
    assert dispatcher.jobs.next_refresh_in(60, 600) == 60  # its re-creation is awaited
