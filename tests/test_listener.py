"""The listener: Ground Truth outputs from real SNS -> SQS delivery to events on the bus."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

from devstack.testing.events import completed, frames_ready
from services.dispatcher.service import make_dispatcher
from services.listener.listener import Listener
from services.listener.service import build
from shared.aws import AwsClients
from shared.bus import Bus
from shared.clock import FakeClock
from shared.events import LevelCompleted, LevelFailed, TaskExpired, decode_event
from shared.labeling.jobs import JobManager
from shared.labeling.streaming_job import StreamingJob
from shared.runtime import ServiceRuntime
from shared.seal import LEVEL_FIELD, SEAL_FIELD, TRACE_FIELD
from shared.settings import Settings
from tests.support.broker import get_messages, queue_depth, wait_until
from tests.support.dispatch import Recorder, create_jobs, dispatch_settings, inputs, make
from tests.support.outputs import output
from tests.support.requests import counting
from tests.support.services import running

pytestmark = pytest.mark.integration

EXPIRED = "ClientError: Annotation tasks expired. No worker completed the task in time."


def listener_settings(settings: Settings) -> Settings:
    return dispatch_settings(
        settings,
        listener__wait_seconds=1,
        listener__visibility_timeout_seconds=1,
        listener__max_receive_count=2,
        listener__refresh_seconds=0.3,
        listener__concurrency=2,
        # Deleted at once, as before deletes shared requests: with a 1 s visibility timeout a
        # wait would let SQS offer a handled output again (its own test batches them).
        listener__delete_batch_seconds=0,
    )


async def publish_output(aws: AwsClients, job: StreamingJob, body: dict[str, Any] | str) -> None:
    sns = await aws.sns()
    message = body if isinstance(body, str) else json.dumps(body)
    await sns.publish(TopicArn=job.output_topic_arn, Message=message)


@pytest.fixture
async def world(aws: AwsClients, settings: Settings, bus: Bus) -> AsyncIterator[Any]:
    s = listener_settings(settings)
    jobs = await create_jobs(aws, s)
    dispatcher = make(aws, s, FakeClock(), Recorder())
    await dispatcher.on_frames_ready(frames_ready(bucket=s.names.bucket))
    (sent,) = await inputs(aws, jobs["VOTVehicle"])
    yield s, jobs, dispatcher, sent


async def dispatcher_events(settings: Settings, count: int, timeout: float = 20) -> list[Any]:
    found = await get_messages(settings, settings.names.queue("dispatcher"), count, timeout)
    return [decode_event(m.body) for m in found]


async def test_outputs_become_events(aws: AwsClients, world: Any) -> None:
    s, jobs, _, sent = world
    job, key, source = jobs["VOTVehicle"], sent["lava-dedup-id"], sent["source-ref"]
    async with running(build, s, "listener", None):
        await publish_output(aws, job, output(job, key, source))
        await publish_output(aws, job, output(job, key, source, reason=EXPIRED))
        await publish_output(aws, job, output(job, key, source, reason="ClientError: bad input"))
        await publish_output(aws, job, output(job, key, source, reason="ServerError: try later"))
        events = await dispatcher_events(s, 4)
    done = [e.payload for e in events if isinstance(e.payload, LevelCompleted)]
    returned = {
        e.payload.failure_reason: e.payload
        for e in events
        if isinstance(e.payload, TaskExpired | LevelFailed)
    }
    assert len(done) == 1
    assert done[0].task_id == "clip-1.vehicles" and done[0].job_name == "VOTVehicle"
    assert done[0].dedup_key == key and done[0].label_attribute == "VOTVehicle-ref"
    assert done[0].metadata["class-map"] == {"0": "vehicle"}
    assert isinstance(returned[EXPIRED], TaskExpired)
    bad_input = returned["ClientError: bad input"]
    assert isinstance(bad_input, LevelFailed) and bad_input.retryable is False
    assert isinstance(returned["ServerError: try later"], LevelFailed)
    assert returned["ServerError: try later"].retryable is True
    sqs = await aws.sqs()
    url = (await sqs.get_queue_url(QueueName=f"{s.namespace}-gt-output"))["QueueUrl"]
    attrs = await sqs.get_queue_attributes(
        QueueUrl=url,
        AttributeNames=[
            "ApproximateNumberOfMessages",
            "ApproximateNumberOfMessagesNotVisible",
            "Policy",
        ],
    )
    assert attrs["Attributes"]["ApproximateNumberOfMessages"] == "0"  # all deleted
    # exactly the registered jobs' output topics, from our account, may send (real SNS checks)
    _deny_others, allowed = json.loads(attrs["Attributes"]["Policy"])["Statement"]
    assert allowed["Condition"]["ArnEquals"]["aws:SourceArn"] == sorted(
        j.output_topic_arn for j in jobs.values()
    )
    assert allowed["Condition"]["StringEquals"]["aws:SourceAccount"] == s.aws.account


async def test_adjusted_output(aws: AwsClients, world: Any) -> None:
    s, jobs, dispatcher, sent = world
    job = jobs["VOTVehicle"]
    adjust = jobs["AdjVOTVehicle"]
    await dispatcher.on_level_completed(
        completed("clip-1.vehicles", job, sent["lava-dedup-id"], s.names.bucket)
    )
    (level2,) = await inputs(aws, adjust)
    carry = {k: v for k, v in level2.items() if k.startswith("VOTVehicle-ref")}
    async with running(build, s, "listener", None):
        await publish_output(
            aws,
            adjust,
            output(
                adjust, level2["lava-dedup-id"], level2["source-ref"], adjusted=True, carry=carry
            ),
        )
        (event,) = await dispatcher_events(s, 1)
    assert isinstance(event.payload, LevelCompleted)
    assert event.payload.job_name == "AdjVOTVehicle"
    assert event.payload.label_attribute == "AdjVOTVehicle-ref"
    assert event.payload.adjustment_status == "adjusted"


async def test_garbage_and_unknown_keys_go_to_the_dead_letter_queue(
    aws: AwsClients, world: Any
) -> None:
    s, jobs, _, sent = world
    job = jobs["VOTVehicle"]
    async with running(build, s, "listener", None) as runtime:
        await publish_output(aws, job, "this is not JSON at all")
        await publish_output(
            aws, job, output(job, "clip-9.vehicles/1-abcd/VOTVehicle/0", sent["source-ref"])
        )
        # the loop keeps going: a good output behind the bad ones is translated
        await publish_output(aws, job, output(job, sent["lava-dedup-id"], sent["source-ref"]))
        (event,) = await dispatcher_events(s, 1)
        assert isinstance(event.payload, LevelCompleted)
        sqs = await aws.sqs()
        dead = (await sqs.get_queue_url(QueueName=f"{s.namespace}-gt-output-dead"))["QueueUrl"]

        async def both_dead() -> bool:
            attrs = await sqs.get_queue_attributes(
                QueueUrl=dead, AttributeNames=["ApproximateNumberOfMessages"]
            )
            return int(attrs["Attributes"]["ApproximateNumberOfMessages"]) >= 2

        await wait_until(both_dead, timeout=20)
        metrics = runtime.metrics.registry.get_sample_value
        assert (metrics("lava_listener_refused_total", {"service": "listener"}) or 0) >= 1
        assert (metrics("lava_listener_unknown_key_total", {"service": "listener"}) or 0) >= 1
    got = await sqs.receive_message(QueueUrl=dead, MaxNumberOfMessages=10)
    bodies = [m["Body"] for m in got.get("Messages", [])]
    assert any("this is not JSON at all" in b for b in bodies)
    assert any("clip-9.vehicles" in b for b in bodies)


async def test_a_job_registered_after_start_up_is_heard(aws: AwsClients, world: Any) -> None:
    s, _, _, sent = world
    async with running(build, s, "listener", None) as runtime:
        late = (await JobManager(aws, s).create("VOTLate", "vehicle")).job
        await asyncio.sleep(1.0)  # the refresh loop subscribes it
        # the late job's output for a known object (keys name their job)
        key = sent["lava-dedup-id"].replace("VOTVehicle", "VOTLate")
        await publish_output(aws, late, output(late, key, sent["source-ref"]))
        await publish_output(aws, late, output(late, sent["lava-dedup-id"], sent["source-ref"]))
        # the first key names no data object; the second names VOTVehicle's object but came
        # through VOTLate's topic: heard (the late topic is subscribed), and refused
        metrics = runtime.metrics.registry.get_sample_value
        await wait_until(
            lambda: (metrics("lava_listener_refused_total", {"service": "listener"}) or 0) >= 1,
            timeout=20,
        )
    assert await queue_depth(s, s.names.queue("dispatcher")) == 0


async def test_a_crash_between_publish_and_delete_is_one_completion_downstream(
    aws: AwsClients, world: Any, bus: Bus, monkeypatch: pytest.MonkeyPatch
) -> None:
    s, jobs, _, sent = world
    job = jobs["VOTVehicle"]
    original = Listener.delete
    calls = 0

    async def crashing_delete(self: Listener, entries: list[dict[str, str]]) -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise ConnectionResetError("listener died before deleting")
        await original(self, entries)

    monkeypatch.setattr(Listener, "delete", crashing_delete)
    dispatch_runtime = ServiceRuntime("dispatcher", s, consumer="dispatcher")
    dispatcher = make_dispatcher(dispatch_runtime, FakeClock())
    dispatch_runtime.handle(LevelCompleted, dispatcher.on_level_completed)
    task = asyncio.create_task(dispatch_runtime.run(install_signals=False))
    try:
        async with running(build, s, "listener", None):
            await publish_output(aws, job, output(job, sent["lava-dedup-id"], sent["source-ref"]))
            await wait_until(lambda: calls >= 2, timeout=20)  # offered again, published again
            await wait_until(
                lambda: (
                    dispatch_runtime.metrics.registry.get_sample_value(
                        "lava_messages_total",
                        {
                            "service": "dispatcher",
                            "event_type": "LevelCompleted",
                            "outcome": "handled",
                        },
                    )
                    == 2.0
                ),
                timeout=20,
            )
    finally:
        dispatch_runtime.request_stop()
        await task
    assert dispatcher.counters.counts.get("outputs") == 1  # one completion recorded
    assert dispatcher.counters.counts.get("levels_advanced") == 1
    # the repeat sends level 2's key again (the redelivery rule): one key, one task for GT
    sent_again = await inputs(aws, jobs["AdjVOTVehicle"])
    assert len(sent_again) == 2 and len({m["lava-dedup-id"] for m in sent_again}) == 1
    assert await queue_depth(s, s.names.queue("dispatcher")) == 0


async def test_a_sealed_output_is_trusted_without_a_lookup_and_a_bad_seal_is_looked_up(
    aws: AwsClients, settings: Settings, bus: Bus
) -> None:
    # Not offered twice within the test: each check below counts exactly one output.
    s = listener_settings(settings).replace(
        labeling__seal_keys="s" * 32, listener__visibility_timeout_seconds=60
    )
    jobs = await create_jobs(aws, s)
    job = jobs["VOTVehicle"]
    await make(aws, s, FakeClock(), Recorder()).on_frames_ready(frames_ready(bucket=s.names.bucket))
    (sent,) = await inputs(aws, job)  # the dispatcher's own input message, sealed
    key, source = sent["lava-dedup-id"], sent["source-ref"]
    assert sent[SEAL_FIELD].startswith("v1.") and sent[LEVEL_FIELD] == "1"
    sealed = {f: sent[f] for f in (SEAL_FIELD, LEVEL_FIELD, TRACE_FIELD) if f in sent}
    forged = {**sealed, SEAL_FIELD: "v1." + "0" * 64}
    async with running(build, s, "listener", None) as runtime:
        await publish_output(aws, job, output(job, key, source, carry=sealed))
        (first,) = await dispatcher_events(s, 1)
        registry = runtime.metrics.registry

        def checks(how: str) -> float:
            labels = {"service": "listener", "how": how}
            return registry.get_sample_value("lava_listener_key_checks_total", labels) or 0

        assert (checks("seal"), checks("lookup")) == (1, 0)
        # a seal that does not open costs the lookup, and the key is still found by it
        await publish_output(aws, job, output(job, key, source, carry=forged, reason=EXPIRED))
        (second,) = await dispatcher_events(s, 1)
        assert (checks("seal"), checks("lookup")) == (1, 1)
    assert isinstance(first.payload, LevelCompleted) and isinstance(second.payload, TaskExpired)
    assert (first.payload.task_id, first.payload.data_object_id) == (
        second.payload.task_id,
        second.payload.data_object_id,
    )


async def test_deletes_wait_to_share_a_request_and_all_go_when_the_listener_stops(
    aws: AwsClients, world: Any
) -> None:
    """Outputs received one at a time share one DeleteMessageBatch (services/listener/
    deletes.py): here the wait outlasts the test, so the stop's flush deletes all three."""
    s, jobs, _, sent = world
    s = s.replace(listener__visibility_timeout_seconds=600, listener__delete_batch_seconds=150)
    job, key, source = jobs["VOTVehicle"], sent["lava-dedup-id"], sent["source-ref"]
    published = Recorder()
    listener = Listener(s, aws, published)
    await listener.start()
    sqs = await aws.sqs()
    stop = asyncio.Event()
    loop = asyncio.create_task(listener.deletes.run(stop))
    await wait_until(lambda: listener.deletes.running)
    async with counting(aws, "sqs") as made:
        for reason in (None, EXPIRED, "ClientError: bad input"):
            await publish_output(aws, job, output(job, key, source, reason=reason))
            got = await sqs.receive_message(QueueUrl=listener.queue.url, WaitTimeSeconds=10)
            assert await listener.handle_batch(got["Messages"]) == 1  # one receive each
        assert listener.deletes.waiting == 3  # all three wait
        assert made.operations()["DeleteMessageBatch"] == 0
        stop.set()
        await loop
        assert made.operations()["DeleteMessageBatch"] == 1  # the stop flushed them in one
    assert len(published.events) == 3
    attrs = await sqs.get_queue_attributes(
        QueueUrl=listener.queue.url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )
    assert {int(v) for v in attrs["Attributes"].values()} == {0}
