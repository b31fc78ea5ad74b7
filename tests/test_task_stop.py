"""Task stop: a real, final state. Nothing is sent any more; late outputs are only recorded."""

from __future__ import annotations

from typing import Any

import pytest

from devstack.testing.events import completed, expired, frames_ready
from services.dispatcher.policy import Output, decide
from shared.aws import AwsClients
from shared.clock import FakeClock
from shared.operations.errors import Conflict, NotFound
from shared.operations.tasks import stop_task
from shared.settings import Settings
from shared.tasks.model import ClipStatus, ClipStop, ObjectStatus, TaskStatus
from shared.tasks.plan import NEW, Changes, PutObject
from tests.support.dispatch import (
    DAY,
    Recorder,
    create_jobs,
    dispatch_settings,
    inputs,
    make,
    task_state,
)

pytestmark = pytest.mark.integration

TASK = "clip-1.vehicles"


@pytest.fixture
async def env(aws: AwsClients, settings: Settings) -> Any:
    s = dispatch_settings(settings)
    jobs = await create_jobs(aws, s)
    clock = FakeClock()
    recorder = Recorder()
    return s, jobs, clock, recorder, make(aws, s, clock, recorder)


def now(clock: FakeClock) -> float:
    return clock.now().timestamp()


async def test_a_stopped_task_sends_nothing_and_records_late_outputs(
    aws: AwsClients, env: Any
) -> None:
    settings, jobs, clock, recorder, dispatcher = env
    await dispatcher.on_frames_ready(frames_ready(bucket=settings.names.bucket))
    (sent,) = await inputs(aws, jobs["VOTVehicle"])
    key = sent["lava-dedup-id"]

    result = await stop_task(dispatcher.store, TASK, now(clock), by="test:op", reason="bad clip")
    assert result.changed and result.objects_stopped == 1
    task = await task_state(dispatcher, TASK)
    assert task.status is TaskStatus.STOPPED and task.stopped_by == "test:op"
    assert task.history[-1].event == "stopped" and "bad clip" in task.history[-1].detail

    # no re-send (5 days) and no level re-trigger (7 days)
    await clock.advance(8 * DAY)
    report = await dispatcher.sweep()
    assert (report.resent, report.first_sends, report.retriggered) == (0, 0, 0)
    # an expiry arriving now is not re-keyed; an output is not acted upon
    await dispatcher.on_task_expired(expired(TASK, jobs["VOTVehicle"], key))
    await dispatcher.on_level_completed(completed(TASK, jobs["VOTVehicle"], key))
    await dispatcher.on_level_completed(completed(TASK, jobs["VOTVehicle"], key))  # redelivered
    assert await inputs(aws, jobs["VOTVehicle"]) == []
    assert await inputs(aws, jobs["AdjVOTVehicle"]) == []
    assert recorder.of("LabelsFinalized") == []
    (obj,) = await dispatcher.store.objects(TASK)
    assert obj.status is ObjectStatus.STOPPED and obj.output is None and obj.keys == [key]
    _, _, late = await dispatcher.store.load(TASK)
    assert sorted(item.what for item in late) == ["expired", "output"]
    assert (await task_state(dispatcher, TASK)).status is TaskStatus.STOPPED
    clip = await dispatcher.store.clip("clip-1")
    assert clip is not None and clip.status is ClipStatus.STOPPED
    assert clip.outcome == ClipStop(task_id=TASK, by="test:op", reason="bad clip")


async def test_stop_is_idempotent(aws: AwsClients, env: Any) -> None:
    settings, _, clock, _, dispatcher = env
    await dispatcher.on_frames_ready(frames_ready(bucket=settings.names.bucket))
    first = await stop_task(dispatcher.store, TASK, now(clock), by="a")
    again = await stop_task(dispatcher.store, TASK, now(clock), by="b")
    assert first.changed and not again.changed and again.objects_stopped == 0
    task = await task_state(dispatcher, TASK)
    assert task.stopped_by == "a" and [h.event for h in task.history].count("stopped") == 1


async def test_stop_refuses_what_is_not_running(aws: AwsClients, env: Any) -> None:
    settings, jobs, clock, _, dispatcher = env
    await dispatcher.on_frames_ready(frames_ready(bucket=settings.names.bucket))
    (sent,) = await inputs(aws, jobs["VOTVehicle"])
    await dispatcher.on_level_completed(completed(TASK, jobs["VOTVehicle"], sent["lava-dedup-id"]))
    (sent,) = await inputs(aws, jobs["AdjVOTVehicle"])
    await dispatcher.on_level_completed(
        completed(TASK, jobs["AdjVOTVehicle"], sent["lava-dedup-id"])
    )
    assert (await task_state(dispatcher, TASK)).status is TaskStatus.FINALIZED
    with pytest.raises(Conflict, match="is finalized; only active or failed tasks stop"):
        await stop_task(dispatcher.store, TASK, now(clock), by="op")
    with pytest.raises(NotFound):
        await stop_task(dispatcher.store, "clip-9.vehicles", now(clock), by="op")


async def test_a_failed_task_can_be_stopped(aws: AwsClients, settings: Settings) -> None:
    s = dispatch_settings(settings, dispatch__max_expirations=0)
    jobs = await create_jobs(aws, s)
    clock = FakeClock()
    dispatcher = make(aws, s, clock, Recorder())
    await dispatcher.on_frames_ready(frames_ready(bucket=s.names.bucket))
    (sent,) = await inputs(aws, jobs["VOTVehicle"])
    await dispatcher.on_task_expired(expired(TASK, jobs["VOTVehicle"], sent["lava-dedup-id"]))
    assert (await task_state(dispatcher, TASK)).status is TaskStatus.FAILED
    result = await stop_task(dispatcher.store, TASK, now(clock), by="op")
    assert result.changed
    assert (await task_state(dispatcher, TASK)).status is TaskStatus.STOPPED


async def test_a_decision_read_before_the_stop_loses_its_commit(aws: AwsClients, env: Any) -> None:
    """A replica that read the task just before the stop decides to start level 2: its commit
    names the revision it read, the stop bumped it, so nothing of level 2 is written or sent."""
    settings, jobs, clock, _, dispatcher = env
    await dispatcher.on_frames_ready(frames_ready(bucket=settings.names.bucket))
    (sent,) = await inputs(aws, jobs["VOTVehicle"])
    stale = await dispatcher._aggregate(TASK)
    await stop_task(dispatcher.store, TASK, now(clock), by="op")
    plan = decide(
        stale,
        Output(completed(TASK, jobs["VOTVehicle"], sent["lava-dedup-id"]).payload),
        now(clock),
    )
    assert plan.sends  # it would start level 2
    assert not await dispatcher.applier.apply(plan, TASK)
    assert await dispatcher.store.objects(TASK, level=2) == []
    assert await inputs(aws, jobs["AdjVOTVehicle"]) == []


async def test_the_sweep_stops_an_object_written_after_the_stop(aws: AwsClients, env: Any) -> None:
    """An object written after the stop (by an older dispatcher without revisions) is stopped
    by the sweep instead of sent."""
    settings, jobs, clock, _, dispatcher = env
    await dispatcher.on_frames_ready(frames_ready(bucket=settings.names.bucket))
    await inputs(aws, jobs["VOTVehicle"])
    await stop_task(dispatcher.store, TASK, now(clock), by="op")
    (obj,) = await dispatcher.store.objects(TASK)
    late_object = obj.model_copy(
        update={
            "job": "AdjVOTVehicle",
            "level": 2,
            "status": ObjectStatus.WAITING,
            "due_at": now(clock),
        }
    )
    assert await dispatcher.store.commit(Changes(writes=(PutObject(late_object, NEW),)))
    await clock.advance(1)
    report = await dispatcher.sweep()
    assert report.first_sends == 0
    assert await inputs(aws, jobs["AdjVOTVehicle"]) == []
    (obj,) = await dispatcher.store.objects(TASK, level=2)
    assert obj.status is ObjectStatus.STOPPED and obj.due_at is None
