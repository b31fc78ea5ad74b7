"""Each crash point of the plan applier (commit, sends, events): the redelivery converges.

A crash is an exception injected right after a step (``PlanApplier.after_step``), so the
handler fails as a dying process would (its event is not acked and comes again); then the
event is redelivered and the sweep runs when the claims run out, and each test checks the end
state: the same key, nothing sent twice that was confirmed, every event published.
"""

from __future__ import annotations

from typing import Any

import pytest

from devstack.testing.events import completed, failed, frames_ready
from shared.aws import AwsClients
from shared.clock import FakeClock
from shared.labeling.jobs import JobManager
from shared.labeling.streaming_job import StreamingJob
from shared.settings import Settings
from shared.tasks.model import TaskStatus
from shared.workflows import load_catalog
from tests.support.dispatch import (
    Recorder,
    dispatch_settings,
    inputs,
    make,
    task_state,
)

TASK = "clip-1.vehicles"


class Crash(Exception):
    """The process died here."""


def crash_after(step: str) -> Any:
    async def hook(name: str) -> None:
        if name == step:
            raise Crash(step)

    return hook


@pytest.fixture
def aws_backend() -> str:
    """AWS in this process only (moto's own code, no server): what is tested here is the
    applier's order, which the transport does not change; keeps the suite's time down."""
    return "memory"


@pytest.fixture
def settings(policy_settings: Settings) -> Settings:
    return policy_settings


@pytest.fixture
def aws(policy_aws: AwsClients) -> AwsClients:
    return policy_aws


@pytest.fixture
async def env(aws: AwsClients, settings: Settings) -> Any:
    s = dispatch_settings(settings)
    jobs = await vehicle_jobs(aws, s)
    clock = FakeClock()
    recorder = Recorder()
    return s, jobs, clock, recorder, make(aws, s, clock, recorder)


async def vehicle_jobs(aws: AwsClients, settings: Settings) -> dict[str, StreamingJob]:
    """Only the two jobs of the ``vehicles`` workflow (a fifth of the catalog's set-up)."""
    catalog = load_catalog()
    wanted = ("VOTVehicle", "AdjVOTVehicle")
    subset = catalog.model_copy(
        update={
            "jobs": {name: catalog.jobs[name] for name in wanted},
            "workflows": {"vehicles": catalog.workflows["vehicles"]},
        }
    )
    results = await JobManager(aws, settings).create_from_catalog(subset)
    return {r.job.name: r.job for r in results}


def key_of(message: dict[str, Any]) -> str:
    return str(message["lava-dedup-id"])


async def test_a_crash_after_the_commit_of_a_start_sends_once_after_the_lease(
    aws: AwsClients, env: Any
) -> None:
    settings, jobs, clock, _, dispatcher = env
    event = frames_ready(bucket=settings.names.bucket)
    dispatcher.applier.after_step = crash_after("commit")
    with pytest.raises(Crash):
        await dispatcher.on_frames_ready(event)
    dispatcher.applier.after_step = None
    assert await inputs(aws, jobs["VOTVehicle"]) == []  # claimed, not sent
    await dispatcher.on_frames_ready(event)  # redelivered: the claim still runs
    assert await inputs(aws, jobs["VOTVehicle"]) == []
    await clock.advance(settings.dispatch.send_lease_seconds + 1)
    assert (await dispatcher.sweep()).resent == 1
    (sent,) = await inputs(aws, jobs["VOTVehicle"])
    (obj,) = await dispatcher.store.objects(TASK)
    assert key_of(sent) == obj.key and obj.attempt == 1
    assert obj.due_at == clock.now().timestamp() + settings.dispatch.resend_interval_seconds


async def test_a_crash_after_the_sends_of_a_level_resends_the_same_key_once(
    aws: AwsClients, env: Any
) -> None:
    settings, jobs, clock, _, dispatcher = env
    await dispatcher.on_frames_ready(frames_ready(bucket=settings.names.bucket))
    done = completed(TASK, jobs["VOTVehicle"], key_of((await inputs(aws, jobs["VOTVehicle"]))[0]))
    dispatcher.applier.after_step = crash_after("sends")
    with pytest.raises(Crash):
        await dispatcher.on_level_completed(done)
    dispatcher.applier.after_step = None
    await dispatcher.on_level_completed(done)  # redelivered: a duplicate, nothing sent
    (first,) = await inputs(aws, jobs["AdjVOTVehicle"])
    await clock.advance(settings.dispatch.send_lease_seconds + 1)
    await dispatcher.sweep()  # the unconfirmed send: once more, same key (a no-op for GT)
    (again,) = await inputs(aws, jobs["AdjVOTVehicle"])
    assert key_of(again) == key_of(first)
    await clock.advance(settings.dispatch.send_lease_seconds + 1)
    assert (await dispatcher.sweep()).resent == 0  # confirmed now
    assert (await task_state(dispatcher, TASK)).level == 2


async def test_a_crash_after_labels_finalized_publishes_it_again_and_confirms(
    aws: AwsClients, env: Any
) -> None:
    settings, jobs, _, recorder, dispatcher = env
    await dispatcher.on_frames_ready(frames_ready(bucket=settings.names.bucket))
    k1 = key_of((await inputs(aws, jobs["VOTVehicle"]))[0])
    await dispatcher.on_level_completed(completed(TASK, jobs["VOTVehicle"], k1))
    k2 = key_of((await inputs(aws, jobs["AdjVOTVehicle"]))[0])
    last = completed(TASK, jobs["AdjVOTVehicle"], k2)
    dispatcher.applier.after_step = crash_after("events")
    with pytest.raises(Crash):
        await dispatcher.on_level_completed(last)
    dispatcher.applier.after_step = None
    assert (await task_state(dispatcher, TASK)).status is TaskStatus.FINALIZING
    await dispatcher.on_level_completed(last)  # redelivered
    first, again = recorder.of("LabelsFinalized")
    assert first.event_id == again.event_id  # a duplicate for post-processing
    assert (await task_state(dispatcher, TASK)).status is TaskStatus.FINALIZED


async def test_a_crash_before_clip_failed_is_published_leaves_it_to_the_sweep(
    aws: AwsClients, env: Any
) -> None:
    settings, jobs, clock, recorder, dispatcher = env
    await dispatcher.on_frames_ready(frames_ready(bucket=settings.names.bucket))
    k1 = key_of((await inputs(aws, jobs["VOTVehicle"]))[0])
    dispatcher.applier.after_step = crash_after("commit")
    with pytest.raises(Crash):
        await dispatcher.on_level_failed(failed(TASK, jobs["VOTVehicle"], k1))
    dispatcher.applier.after_step = None
    assert (await task_state(dispatcher, TASK)).status is TaskStatus.FAILED
    assert recorder.of("ClipFailed") == []
    await dispatcher.on_level_failed(failed(TASK, jobs["VOTVehicle"], k1))  # redelivered
    await clock.advance(settings.dispatch.send_lease_seconds + 1)
    await dispatcher.sweep()
    (announced,) = recorder.of("ClipFailed")
    assert announced.payload.task_id == TASK
    await clock.advance(settings.dispatch.send_lease_seconds + 1)
    await dispatcher.sweep()
    assert len(recorder.of("ClipFailed")) == 1  # confirmed: not again


async def test_a_crash_inside_the_commit_writes_nothing_and_the_redelivery_decides_again(
    aws: AwsClients, env: Any
) -> None:
    settings, jobs, _, _, dispatcher = env
    event = frames_ready(bucket=settings.names.bucket)
    commit = dispatcher.store.commit

    async def dying(changes: Any) -> bool:
        raise Crash("commit")

    dispatcher.store.commit = dying
    with pytest.raises(Crash):
        await dispatcher.on_frames_ready(event)
    dispatcher.store.commit = commit
    assert await dispatcher.store.get_task(TASK) is None
    await dispatcher.on_frames_ready(event)
    assert len(await inputs(aws, jobs["VOTVehicle"])) == 1
