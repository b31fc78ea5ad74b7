"""Each crash point of the plan applier (commit, sends, events): the redelivery converges.

A crash is an exception injected right after a step (``PlanApplier.after_step``), so the
handler fails as a dying process would (its event is not acked and comes again); then the
event is redelivered (the sweep: runs again when its claims run out), and each test checks the
end state: the same key, one new key per expiry, every send and event made.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any

import pytest

from devstack.testing.events import completed, expired, failed, frames_ready
from shared.aws import AwsClients
from shared.clock import FakeClock
from shared.events import derived_event_id
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


async def crashed(dispatcher: Any, step: str, handling: Awaitable[Any]) -> None:
    """``handling`` dies right after ``step`` (its event is not acked); the hook is gone after."""
    dispatcher.applier.after_step = crash_after(step)
    try:
        with pytest.raises(Crash):
            await handling
    finally:
        dispatcher.applier.after_step = None


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


async def test_a_crash_after_the_commit_of_a_start_is_sent_by_the_redelivery(
    aws: AwsClients, env: Any
) -> None:
    settings, jobs, clock, _, dispatcher = env
    event = frames_ready(bucket=settings.names.bucket)
    await crashed(dispatcher, "commit", dispatcher.on_frames_ready(event))
    assert await inputs(aws, jobs["VOTVehicle"]) == []  # committed, not sent
    (obj,) = await dispatcher.store.objects(TASK)
    await dispatcher.on_frames_ready(event)  # redelivered: sends what its commit wrote
    (sent,) = await inputs(aws, jobs["VOTVehicle"])
    assert key_of(sent) == obj.key and obj.attempt == 1
    assert await dispatcher.store.objects(TASK) == [obj]  # the redelivery wrote nothing
    assert obj.due_at == clock.now().timestamp() + settings.dispatch.resend_interval_seconds
    await clock.advance(settings.dispatch.send_lease_seconds + 1)
    assert (await dispatcher.sweep()).resent == 0  # nothing to confirm, nothing due


async def test_a_crash_after_the_sends_of_a_level_resends_the_same_key_once(
    aws: AwsClients, env: Any
) -> None:
    settings, jobs, clock, _, dispatcher = env
    await dispatcher.on_frames_ready(frames_ready(bucket=settings.names.bucket))
    done = completed(TASK, jobs["VOTVehicle"], key_of((await inputs(aws, jobs["VOTVehicle"]))[0]))
    await crashed(dispatcher, "sends", dispatcher.on_level_completed(done))
    (first,) = await inputs(aws, jobs["AdjVOTVehicle"])
    await dispatcher.on_level_completed(done)  # redelivered: once more, same key (a no-op)
    (again,) = await inputs(aws, jobs["AdjVOTVehicle"])
    assert key_of(again) == key_of(first)
    await clock.advance(settings.dispatch.send_lease_seconds + 1)
    assert (await dispatcher.sweep()).resent == 0
    assert (await task_state(dispatcher, TASK)).level == 2


async def test_a_crash_after_the_commit_of_an_expiry_sends_its_new_key_on_redelivery(
    aws: AwsClients, env: Any
) -> None:
    settings, jobs, _, _, dispatcher = env
    await dispatcher.on_frames_ready(frames_ready(bucket=settings.names.bucket))
    old = key_of((await inputs(aws, jobs["VOTVehicle"]))[0])
    await crashed(
        dispatcher, "commit", dispatcher.on_task_expired(expired(TASK, jobs["VOTVehicle"], old))
    )
    assert await inputs(aws, jobs["VOTVehicle"]) == []
    await dispatcher.on_task_expired(expired(TASK, jobs["VOTVehicle"], old))  # redelivered
    (sent,) = await inputs(aws, jobs["VOTVehicle"])
    (obj,) = await dispatcher.store.objects(TASK)
    assert key_of(sent) == obj.key != old and obj.keys == [old, obj.key]  # one new key, once


@pytest.mark.parametrize("step", ["commit", "events"])
async def test_a_crash_before_or_after_labels_finalized_publishes_it_on_redelivery(
    aws: AwsClients, env: Any, step: str
) -> None:
    settings, jobs, _, recorder, dispatcher = env
    await dispatcher.on_frames_ready(frames_ready(bucket=settings.names.bucket))
    k1 = key_of((await inputs(aws, jobs["VOTVehicle"]))[0])
    await dispatcher.on_level_completed(completed(TASK, jobs["VOTVehicle"], k1))
    k2 = key_of((await inputs(aws, jobs["AdjVOTVehicle"]))[0])
    last = completed(TASK, jobs["AdjVOTVehicle"], k2)
    await crashed(dispatcher, step, dispatcher.on_level_completed(last))
    assert (await task_state(dispatcher, TASK)).status is TaskStatus.FINALIZED
    published = len(recorder.of("LabelsFinalized"))
    assert published == (1 if step == "events" else 0)
    await dispatcher.on_level_completed(last)  # redelivered
    *_, again = recorder.of("LabelsFinalized")
    assert len(recorder.of("LabelsFinalized")) == published + 1
    assert again.event_id == derived_event_id(TASK, "LabelsFinalized")  # a duplicate by id


async def test_labels_finalized_lost_with_its_event_is_published_by_the_sweep(
    aws: AwsClients, env: Any
) -> None:
    """Every delivery of the last output failed to publish (the broker refused; the event
    dead-lettered): the finalized task stays due, and the sweep publishes it at the re-send
    interval - until its clip completes."""
    settings, jobs, clock, recorder, dispatcher = env
    await dispatcher.on_frames_ready(frames_ready(bucket=settings.names.bucket))
    k1 = key_of((await inputs(aws, jobs["VOTVehicle"]))[0])
    await dispatcher.on_level_completed(completed(TASK, jobs["VOTVehicle"], k1))
    k2 = key_of((await inputs(aws, jobs["AdjVOTVehicle"]))[0])
    await crashed(
        dispatcher,
        "commit",
        dispatcher.on_level_completed(completed(TASK, jobs["AdjVOTVehicle"], k2)),
    )  # never redelivered
    await clock.advance(settings.dispatch.resend_interval_seconds - 1)
    await dispatcher.sweep()
    assert recorder.of("LabelsFinalized") == []
    await clock.advance(2)
    await dispatcher.sweep()
    (again,) = recorder.of("LabelsFinalized")
    assert again.event_id == derived_event_id(TASK, "LabelsFinalized")
    task = await task_state(dispatcher, TASK)
    assert task.status is TaskStatus.FINALIZED
    assert task.due_at == clock.now().timestamp() + settings.dispatch.resend_interval_seconds


async def test_a_crash_after_the_commit_of_a_sweep_resends_after_the_lease(
    aws: AwsClients, env: Any
) -> None:
    settings, jobs, clock, _, dispatcher = env
    await dispatcher.on_frames_ready(frames_ready(bucket=settings.names.bucket))
    (first,) = await inputs(aws, jobs["VOTVehicle"])
    await clock.advance(settings.dispatch.resend_interval_seconds + 1)
    await crashed(
        dispatcher, "commit", dispatcher.sweep()
    )  # no event comes back for it: claimed for the lease
    assert (await dispatcher.sweep()).resent == 0 and await inputs(aws, jobs["VOTVehicle"]) == []
    await clock.advance(settings.dispatch.send_lease_seconds + 1)
    assert (await dispatcher.sweep()).resent == 1
    (again,) = await inputs(aws, jobs["VOTVehicle"])
    assert key_of(again) == key_of(first)
    await clock.advance(settings.dispatch.send_lease_seconds + 1)
    assert (await dispatcher.sweep()).resent == 0  # confirmed


async def test_a_crash_before_clip_failed_is_published_leaves_it_to_the_sweep(
    aws: AwsClients, env: Any
) -> None:
    settings, jobs, clock, recorder, dispatcher = env
    await dispatcher.on_frames_ready(frames_ready(bucket=settings.names.bucket))
    k1 = key_of((await inputs(aws, jobs["VOTVehicle"]))[0])
    await crashed(
        dispatcher, "commit", dispatcher.on_level_failed(failed(TASK, jobs["VOTVehicle"], k1))
    )
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
