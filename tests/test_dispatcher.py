"""The dispatcher's policy, driven by the clock, against a real moto server."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from devstack.testing.events import completed, expired, failed, frames_ready
from services.dispatcher.policy import Abort, Output, decide
from services.dispatcher.sender import InputSender
from shared.acking import Reject
from shared.aws import AwsClients
from shared.clock import FakeClock
from shared.settings import Settings
from shared.tasks.model import ObjectStatus, TaskStatus
from tests.support.dispatch import (
    DAY,
    Recorder,
    create_jobs,
    dispatch_settings,
    inputs,
    make,
    task_state,
)

# Every scenario runs on AWS in this process and on the moto server (tests/conftest.py).


@pytest.fixture
def settings(policy_settings: Settings) -> Settings:
    return policy_settings


@pytest.fixture
def aws(policy_aws: AwsClients) -> AwsClients:
    return policy_aws


@pytest.fixture
async def env(aws: AwsClients, settings: Settings) -> Any:
    s = dispatch_settings(settings)
    jobs = await create_jobs(aws, s)
    clock = FakeClock()
    recorder = Recorder()
    return s, jobs, clock, recorder, make(aws, s, clock, recorder)


def key_of(message: dict[str, Any]) -> str:
    assert message["dataset-objectid-attribute-name"] == "lava-dedup-id"
    return str(message["lava-dedup-id"])


async def test_frames_ready_sends_every_level_one_job_under_one_key(
    aws: AwsClients, env: Any
) -> None:
    settings, jobs, _, _, dispatcher = env
    event = frames_ready(workflow="signs_lights", bucket=settings.names.bucket)
    await dispatcher.on_frames_ready(event)
    await dispatcher.on_frames_ready(event)  # duplicate delivery: the same keys again
    lights = await inputs(aws, jobs["VODTrafficLight"])
    signs = await inputs(aws, jobs["VODTrafficSign"])
    # Ground Truth labels a key once: a duplicate delivery is one task per job, not two
    assert len(lights) == len(signs) == 2
    assert len({key_of(m) for m in lights}) == len({key_of(m) for m in signs}) == 1
    key = key_of(lights[0])
    task, tag, job, obj = key.split("/")
    assert (task, job, obj) == ("clip-1.signs_lights", "VODTrafficLight", "0")
    assert tag.startswith("1-") and len(tag) == 6
    assert lights[0]["source-ref"] == event.payload.frames.sequence_uri
    assert await inputs(aws, jobs["AdjVODTrafficLight"]) == []  # level 2 waits
    state = await task_state(dispatcher, "clip-1.signs_lights")
    assert state.level == 1 and state.status is TaskStatus.ACTIVE


async def test_periodic_resend_reuses_the_key(aws: AwsClients, env: Any) -> None:
    settings, jobs, clock, _, dispatcher = env
    await dispatcher.on_frames_ready(frames_ready(bucket=settings.names.bucket))
    (first,) = await inputs(aws, jobs["VOTVehicle"])
    await clock.advance(4 * DAY)
    assert (await dispatcher.sweep()).resent == 0
    assert await inputs(aws, jobs["VOTVehicle"]) == []
    for round_ in range(1, 3):
        await clock.advance(1 * DAY + 1 if round_ == 1 else 5 * DAY)
        report = await dispatcher.sweep()
        assert report.resent == 1
        (again,) = await inputs(aws, jobs["VOTVehicle"])
        assert key_of(again) == key_of(first)  # same key: a no-op or a rescue
    (obj,) = await dispatcher.store.objects("clip-1.vehicles")
    assert obj.send_count == 3 and obj.attempt == 1 and obj.keys == [key_of(first)]


async def test_an_expiry_rekeys_exactly_once(aws: AwsClients, env: Any) -> None:
    settings, jobs, clock, _, dispatcher = env
    job = jobs["VOTVehicle"]
    await dispatcher.on_frames_ready(frames_ready(bucket=settings.names.bucket))
    (first,) = await inputs(aws, job)
    k1 = key_of(first)
    await dispatcher.on_task_expired(expired("clip-1.vehicles", job, k1))
    await dispatcher.on_task_expired(expired("clip-1.vehicles", job, k1))  # the same expiry again
    second, repeated = await inputs(aws, job)  # its new key, sent again: one new key only
    k2 = key_of(second)
    assert key_of(repeated) == k2
    assert k2 != k1 and k2.split("/")[1].startswith("2-")
    await dispatcher.on_task_expired(expired("clip-1.vehicles", job, k2))
    (third,) = await inputs(aws, job)
    k3 = key_of(third)
    assert len({k1, k2, k3}) == 3
    (obj,) = await dispatcher.store.objects("clip-1.vehicles")
    assert obj.expirations == 2 and obj.keys == [k1, k2, k3] and obj.expired_keys == [k1, k2]
    # the periodic re-send keeps the *current* key
    await clock.advance(5 * DAY + 1)
    await dispatcher.sweep()
    (resent,) = await inputs(aws, job)
    assert key_of(resent) == k3


async def test_too_many_expiries_fail_the_task_visibly(aws: AwsClients, settings: Settings) -> None:
    s = dispatch_settings(settings, dispatch__max_expirations=1)
    jobs = await create_jobs(aws, s)
    recorder = Recorder()
    dispatcher = make(aws, s, FakeClock(), recorder)
    job = jobs["VOTVehicle"]
    await dispatcher.on_frames_ready(frames_ready(bucket=s.names.bucket))
    k1 = key_of((await inputs(aws, job))[0])
    await dispatcher.on_task_expired(expired("clip-1.vehicles", job, k1))
    k2 = key_of((await inputs(aws, job))[0])
    await dispatcher.on_task_expired(expired("clip-1.vehicles", job, k2))
    task = await task_state(dispatcher, "clip-1.vehicles")
    assert task.status is TaskStatus.FAILED
    assert "expired 2 times" in (task.failure_reason or "")
    (failed,) = recorder.of("ClipFailed")
    assert failed.payload.stage == "labeling" and "expired 2 times" in failed.payload.reason
    assert await inputs(aws, job) == []


async def test_a_failure_that_resending_cannot_fix_fails_the_task(
    aws: AwsClients, env: Any
) -> None:
    settings, jobs, _, recorder, dispatcher = env
    job = jobs["VOTVehicle"]
    await dispatcher.on_frames_ready(frames_ready(bucket=settings.names.bucket))
    k1 = key_of((await inputs(aws, job))[0])
    await dispatcher.on_level_failed(failed("clip-1.vehicles", job, k1))
    task = await task_state(dispatcher, "clip-1.vehicles")
    assert task.status is TaskStatus.FAILED
    assert recorder.of("ClipFailed")[0].payload.task_id == "clip-1.vehicles"


async def test_an_overdue_level_is_retriggered_with_the_same_keys(
    aws: AwsClients, settings: Settings
) -> None:
    s = dispatch_settings(
        settings,
        dispatch__level_timeout_seconds=2 * DAY,
        dispatch__resend_interval_seconds=10 * DAY,
        dispatch__level_max_retriggers=2,
    )
    jobs = await create_jobs(aws, s)
    clock, recorder = FakeClock(), Recorder()
    dispatcher = make(aws, s, clock, recorder)
    job = jobs["VOTVehicle"]
    await dispatcher.on_frames_ready(frames_ready(bucket=s.names.bucket))
    k1 = key_of((await inputs(aws, job))[0])
    await clock.advance(2 * DAY + 1)
    report = await dispatcher.sweep()
    assert report.retriggered == 1 and report.resent == 0
    (again,) = await inputs(aws, job)
    assert key_of(again) == k1
    task = await task_state(dispatcher, "clip-1.vehicles")
    assert task.level_retriggers == 1 and any(h.event == "level-retriggered" for h in task.history)
    await clock.advance(2 * DAY + 1)
    assert (await dispatcher.sweep()).retriggered == 1
    await inputs(aws, job)
    await clock.advance(2 * DAY + 1)
    assert (await dispatcher.sweep()).failed == 1
    task = await task_state(dispatcher, "clip-1.vehicles")
    assert task.status is TaskStatus.FAILED and "not complete after 2 re-triggers" in (
        task.failure_reason or ""
    )


async def test_levels_chain_and_the_last_one_finalizes(aws: AwsClients, env: Any) -> None:
    settings, jobs, _, recorder, dispatcher = env
    await dispatcher.on_frames_ready(
        frames_ready(workflow="signs_lights", bucket=settings.names.bucket)
    )
    keys = {
        n: key_of((await inputs(aws, jobs[n]))[0]) for n in ("VODTrafficLight", "VODTrafficSign")
    }
    done_light = completed(
        "clip-1.signs_lights",
        jobs["VODTrafficLight"],
        keys["VODTrafficLight"],
        settings.names.bucket,
    )
    await dispatcher.on_level_completed(done_light)
    assert await inputs(aws, jobs["AdjVODTrafficLight"]) == []  # the level is not complete yet
    await dispatcher.on_level_completed(
        completed(
            "clip-1.signs_lights",
            jobs["VODTrafficSign"],
            keys["VODTrafficSign"],
            settings.names.bucket,
        )
    )
    (adj_light,) = await inputs(aws, jobs["AdjVODTrafficLight"])
    (adj_sign,) = await inputs(aws, jobs["AdjVODTrafficSign"])
    # adjustment jobs carry the previous level's label attribute and its metadata
    assert adj_light["VODTrafficLight-ref"] == done_light.payload.label_uri
    assert adj_light["VODTrafficLight-ref-metadata"]["job-name"].endswith("VODTrafficLight")
    assert "VODTrafficLight-ref" not in adj_sign and "VODTrafficSign-ref" in adj_sign
    task = await task_state(dispatcher, "clip-1.signs_lights")
    assert task.level == 2
    for name, message in (("AdjVODTrafficLight", adj_light), ("AdjVODTrafficSign", adj_sign)):
        await dispatcher.on_level_completed(
            completed("clip-1.signs_lights", jobs[name], key_of(message), settings.names.bucket)
        )
    (final,) = recorder.of("LabelsFinalized")
    outputs = {o.job_name: o for o in final.payload.outputs}
    assert set(outputs) == {
        "VODTrafficLight",
        "VODTrafficSign",
        "AdjVODTrafficLight",
        "AdjVODTrafficSign",
    }
    assert outputs["AdjVODTrafficSign"].level == 2
    assert outputs["AdjVODTrafficSign"].adjusts == "VODTrafficSign"
    assert (await task_state(dispatcher, "clip-1.signs_lights")).status is TaskStatus.FINALIZED


async def test_duplicate_and_reordered_completions(aws: AwsClients, env: Any) -> None:
    settings, jobs, _, recorder, dispatcher = env
    bucket = settings.names.bucket
    await dispatcher.on_frames_ready(frames_ready(workflow="signs_lights", bucket=bucket))
    light = key_of((await inputs(aws, jobs["VODTrafficLight"]))[0])
    sign = key_of((await inputs(aws, jobs["VODTrafficSign"]))[0])
    sign_done = completed("clip-1.signs_lights", jobs["VODTrafficSign"], sign, bucket)
    light_done = completed("clip-1.signs_lights", jobs["VODTrafficLight"], light, bucket)
    for event in (sign_done, sign_done, light_done, sign_done, light_done):
        await dispatcher.on_level_completed(event)
    # level 2 made once; the repeats after it send its keys again (Ground Truth: one task each)
    for adjuster in ("AdjVODTrafficLight", "AdjVODTrafficSign"):
        assert len({key_of(m) for m in await inputs(aws, jobs[adjuster])}) == 1
    assert dispatcher.counters.counts["sends"] == 4
    task = await task_state(dispatcher, "clip-1.signs_lights")
    assert task.level == 2  # not moved twice
    # a late expiry of a key that already completed changes nothing
    await dispatcher.on_task_expired(expired("clip-1.signs_lights", jobs["VODTrafficSign"], sign))
    assert await inputs(aws, jobs["VODTrafficSign"]) == []
    with pytest.raises(Reject, match="never sent"):
        await dispatcher.on_level_completed(
            completed("clip-1.signs_lights", jobs["VODTrafficSign"], "forged/1-abcd/x/0", bucket)
        )
    with pytest.raises(Reject, match="no data object"):
        await dispatcher.on_level_completed(
            completed("ghost.vehicles", jobs["VOTVehicle"], "ghost/1-abcd/VOTVehicle/0", bucket)
        )
    assert recorder.of("ClipFailed") == []


class FlakySender(InputSender):
    """Fails the first ``failures`` sends with ``code``."""

    def __init__(self, aws: AwsClients, key_name: str, code: str, failures: int) -> None:
        super().__init__(aws, key_name)
        self.code, self.failures, self.calls = code, failures, 0

    async def send(self, items: Any) -> None:
        self.calls += 1
        if self.calls <= self.failures:
            response: Any = {
                "Error": {"Code": self.code, "Message": "injected"},
                "ResponseMetadata": {"HTTPStatusCode": 400},
            }
            raise ClientError(response, "PublishBatch")
        await super().send(items)


async def test_transient_errors_are_retried_until_they_pass(
    aws: AwsClients, settings: Settings
) -> None:
    s = dispatch_settings(settings, dispatch__retry_attempts=8)
    jobs = await create_jobs(aws, s)
    clock, recorder = FakeClock(), Recorder()
    flaky = FlakySender(aws, s.dispatch.dedup_key_name, "Throttling", failures=5)
    dispatcher = make(aws, s, clock, recorder, flaky)
    await dispatcher.on_frames_ready(frames_ready(bucket=s.names.bucket))
    assert flaky.calls == 6
    assert len(await inputs(aws, jobs["VOTVehicle"])) == 1
    assert (await task_state(dispatcher, "clip-1.vehicles")).status is TaskStatus.ACTIVE
    assert recorder.of("ClipFailed") == []


async def test_transient_errors_that_persist_fail_the_task(
    aws: AwsClients, settings: Settings
) -> None:
    s = dispatch_settings(settings, dispatch__retry_attempts=3)
    await create_jobs(aws, s)
    recorder = Recorder()
    flaky = FlakySender(aws, s.dispatch.dedup_key_name, "Throttling", failures=99)
    dispatcher = make(aws, s, FakeClock(), recorder, flaky)
    await dispatcher.on_frames_ready(frames_ready(bucket=s.names.bucket))
    assert flaky.calls == 3
    task = await task_state(dispatcher, "clip-1.vehicles")
    assert task.status is TaskStatus.FAILED
    assert "transient error persisted" in (task.failure_reason or "")


async def test_a_permanent_error_fails_the_task_at_once(
    aws: AwsClients, settings: Settings
) -> None:
    s = dispatch_settings(settings)
    await create_jobs(aws, s)
    recorder = Recorder()
    flaky = FlakySender(aws, s.dispatch.dedup_key_name, "AuthorizationError", failures=99)
    dispatcher = make(aws, s, FakeClock(), recorder, flaky)
    await dispatcher.on_frames_ready(frames_ready(bucket=s.names.bucket))
    assert flaky.calls == 1
    task = await task_state(dispatcher, "clip-1.vehicles")
    assert task.status is TaskStatus.FAILED
    assert "SNS PublishBatch failed (AuthorizationError: injected)" in (task.failure_reason or "")
    (failed,) = recorder.of("ClipFailed")
    assert failed.payload.reason == task.failure_reason
    (obj,) = await dispatcher.store.objects("clip-1.vehicles")
    assert obj.status is ObjectStatus.FAILED  # nothing is due any more


async def test_unknown_workflow_fails_the_task(aws: AwsClients, env: Any) -> None:
    settings, _, _, recorder, dispatcher = env
    await dispatcher.on_frames_ready(
        frames_ready(workflow="bicycles", bucket=settings.names.bucket)
    )
    task = await task_state(dispatcher, "clip-1.bicycles")
    assert task.status is TaskStatus.FAILED
    assert "unknown workflow 'bicycles'" in (task.failure_reason or "")
    assert recorder.of("ClipFailed")[0].payload.stage == "dispatch"


async def test_the_sweep_reads_only_what_is_due(aws: AwsClients, env: Any) -> None:
    settings, _, clock, _, dispatcher = env
    for i in range(5):
        await dispatcher.on_frames_ready(frames_ready(f"clip-{i}", bucket=settings.names.bucket))
    await clock.advance(DAY)
    assert await dispatcher.store.due("object", clock.now().timestamp()) == []
    await clock.advance(4 * DAY + 1)
    assert len(await dispatcher.store.due("object", clock.now().timestamp())) == 5


async def test_failing_a_task_leaves_an_object_that_completed_meanwhile(
    aws: AwsClients, env: Any
) -> None:
    """A failure decided on a read from before the output loses its commit (the object's
    revision moved), and is decided again on the new state."""
    settings, jobs, clock, _, dispatcher = env
    job = jobs["VOTVehicle"]
    await dispatcher.on_frames_ready(frames_ready(bucket=settings.names.bucket))
    key = key_of((await inputs(aws, job))[0])
    stale = await dispatcher._aggregate("clip-1.vehicles")  # read while the object still waits
    await dispatcher.on_level_completed(completed("clip-1.vehicles", job, key))
    abort = Abort("clip-1", "clip-1.vehicles", "injected")
    assert not await dispatcher.applier.apply(
        decide(stale, abort, clock.now().timestamp()), "clip-1.vehicles"
    )
    await dispatcher.handle("clip-1.vehicles", abort)
    (obj,) = await dispatcher.store.objects("clip-1.vehicles", level=1)
    assert obj.status is ObjectStatus.DONE
    assert (await task_state(dispatcher, "clip-1.vehicles")).status is TaskStatus.FAILED


async def test_two_outputs_of_one_level_decided_at_once_move_it_once(
    aws: AwsClients, env: Any
) -> None:
    """Both replicas read the level with the other job still waiting: the second commit loses
    (the task's revision moved), is decided again on a fresh read, and starts level 2."""
    settings, jobs, clock, _, dispatcher = env
    bucket = settings.names.bucket
    await dispatcher.on_frames_ready(frames_ready(workflow="signs_lights", bucket=bucket))
    light = key_of((await inputs(aws, jobs["VODTrafficLight"]))[0])
    sign = key_of((await inputs(aws, jobs["VODTrafficSign"]))[0])
    task_id = "clip-1.signs_lights"
    read = await dispatcher._aggregate(task_id)  # both decide on this read
    now = clock.now().timestamp()
    light_done = Output(completed(task_id, jobs["VODTrafficLight"], light, bucket).payload)
    sign_done = Output(completed(task_id, jobs["VODTrafficSign"], sign, bucket).payload)
    assert await dispatcher.applier.apply(decide(read, light_done, now), task_id)
    assert not await dispatcher.applier.apply(decide(read, sign_done, now), task_id)
    await dispatcher.handle(task_id, sign_done)  # what the handler does next: read, decide
    assert (await task_state(dispatcher, task_id)).level == 2
    assert len(await inputs(aws, jobs["AdjVODTrafficLight"])) == 1


async def test_a_completed_level_reaches_its_next_publish_in_two_round_trips(
    aws: AwsClients, env: Any
) -> None:
    """LevelCompleted -> the next level's first publish: the task's Query and the commit, no
    other AWS request before the PublishBatch (docs/policy.md; the jobs come from memory)."""
    settings, jobs, _, _, dispatcher = env
    await dispatcher.on_frames_ready(
        frames_ready(workflow="vehicles", bucket=settings.names.bucket)
    )
    (sent,) = await inputs(aws, jobs["VOTVehicle"])
    calls: list[str] = []

    def record(model: Any, **_: Any) -> None:
        calls.append(model.name)

    for client in (await aws.dynamodb(), await aws.sns()):
        client.meta.events.register("before-call", record)
    try:
        done = completed("clip-1.vehicles", jobs["VOTVehicle"], key_of(sent), settings.names.bucket)
        await dispatcher.on_level_completed(done)
    finally:
        for client in (await aws.dynamodb(), await aws.sns()):
            client.meta.events.unregister("before-call", record)
    assert calls[: calls.index("PublishBatch")] == ["Query", "TransactWriteItems"], calls
    assert len(await inputs(aws, jobs["AdjVOTVehicle"])) == 1
