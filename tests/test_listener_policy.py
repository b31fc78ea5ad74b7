"""The listener's policy, scenario by scenario, on both transports.

Each scenario publishes Ground Truth outputs on a job's SNS output topic (delivered by SNS to
the listener's SQS queue), lets the listener take one batch, and checks what reached the bus and
what stayed on, or left, the queue. It runs on AWS in this process with the in-memory bus
(milliseconds) and on the moto server with RabbitMQ (integration): same listener code, same
moto semantics, same acknowledgement code.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from devstack.testing.events import completed, frames_ready
from devstack.testing.memory_bus import InMemoryBus
from services.listener.listener import Listener, Metrics
from services.listener.trust import REASON_ATTRIBUTE
from shared.aws import AwsClients
from shared.bus import PIPELINE_TOPOLOGY, Bus
from shared.clock import FakeClock
from shared.events import Event, LevelCompleted, LevelFailed, TaskExpired, decode_event
from shared.labeling.streaming_job import StreamingJob
from shared.ports import Publish
from shared.settings import Settings
from tests.support.broker import get_messages
from tests.support.dispatch import Recorder, create_jobs, dispatch_settings, inputs, make
from tests.support.outputs import output

EXPIRED = "ClientError: Annotation tasks expired. No worker completed the task in time."


class Events:
    """What the listener published, read back from the bus it published on."""

    def __init__(self, settings: Settings, bus: InMemoryBus | Bus) -> None:
        self.settings = settings
        self.bus = bus

    async def taken(self, count: int) -> list[Event[Any]]:
        """The events on the dispatcher's queue: exactly ``count`` are expected."""
        queue = self.settings.names.queue("dispatcher")
        if isinstance(self.bus, InMemoryBus):
            found = self.bus.waiting("dispatcher")
        else:
            # the listener has already had the broker's confirm for each of them
            found = [decode_event(m.body) for m in await get_messages(self.settings, queue, count)]
            # and nothing more: a confirmed event is already on the queue, so half a second
            # only has to cover the broker answering a basic.get
            extra = await get_messages(self.settings, queue, 1, timeout=0.5)
            found += [decode_event(m.body) for m in extra]
        assert len(found) == count, [e.type for e in found]
        return found


@pytest.fixture
async def events(aws_backend: str, policy_settings: Settings) -> AsyncIterator[Events]:
    if aws_backend == "memory":
        yield Events(policy_settings, InMemoryBus(policy_settings))
        return
    bus = Bus(policy_settings, PIPELINE_TOPOLOGY, client_name="lava-test", declare=True)
    await bus.connect()
    try:
        yield Events(policy_settings, bus)
    finally:
        await bus.delete_topology()
        await bus.close()


@dataclass
class Counts:
    refused: int = 0
    unknown: int = 0
    unparseable: int = 0


@dataclass
class World:
    settings: Settings
    aws: AwsClients
    jobs: dict[str, StreamingJob]
    sent: dict[str, Any]
    listener: Listener
    counts: Counts
    received: list[dict[str, Any]] = field(default_factory=list)

    @property
    def job(self) -> StreamingJob:
        return self.jobs["VOTVehicle"]

    def output(
        self, job: StreamingJob | None = None, /, reason: str | None = None, **changes: Any
    ) -> dict[str, Any]:
        """A genuine output of ``job`` (level 1 by default) for the object that was sent."""
        key, source = self.sent["lava-dedup-id"], self.sent["source-ref"]
        body = output(job or self.job, key, source, reason=reason)
        body.update(changes)
        return body

    async def publish(self, body: dict[str, Any] | str, topic: str | None = None) -> None:
        sns = await self.aws.sns()
        message = body if isinstance(body, str) else json.dumps(body)
        await sns.publish(TopicArn=topic or self.job.output_topic_arn, Message=message)

    async def take(self) -> int:
        """One receive (no long poll) and the listener's handling; returns how many it deleted."""
        sqs = await self.aws.sqs()
        got = await sqs.receive_message(
            QueueUrl=self.listener.queue.url,
            MaxNumberOfMessages=10,
            WaitTimeSeconds=0,
            AttributeNames=["ApproximateReceiveCount"],
        )
        self.received = [dict(m) for m in got.get("Messages", [])]
        return await self.listener.handle_batch(self.received)

    async def offer_again(self) -> None:
        """What the visibility timeout does to undeleted messages (without waiting for it)."""
        sqs = await self.aws.sqs()
        for message in self.received:
            await sqs.change_message_visibility(
                QueueUrl=self.listener.queue.url,
                ReceiptHandle=message["ReceiptHandle"],
                VisibilityTimeout=0,
            )

    async def on_queue(self) -> int:
        """Messages still on the listener's queue, in flight or visible."""
        sqs = await self.aws.sqs()
        attributes = (
            await sqs.get_queue_attributes(
                QueueUrl=self.listener.queue.url,
                AttributeNames=[
                    "ApproximateNumberOfMessages",
                    "ApproximateNumberOfMessagesNotVisible",
                ],
            )
        )["Attributes"]
        return sum(int(v) for v in attributes.values())

    async def dead_letters(self) -> list[dict[str, Any]]:
        sqs = await self.aws.sqs()
        url = self.listener.queue.dead_url
        got = await sqs.receive_message(
            QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0, MessageAttributeNames=["All"]
        )
        return [dict(m) for m in got.get("Messages", [])]


def _world_settings(settings: Settings) -> Settings:
    return dispatch_settings(settings, listener__visibility_timeout_seconds=30)


async def _world(settings: Settings, aws: AwsClients, publish: Publish) -> World:
    s = _world_settings(settings)
    jobs = await create_jobs(aws, s)
    dispatcher = make(aws, s, FakeClock(), Recorder())
    await dispatcher.on_frames_ready(frames_ready(bucket=s.names.bucket))
    (sent,) = await inputs(aws, jobs["VOTVehicle"])
    counts = Counts()
    metrics = Metrics(
        refused=lambda: setattr(counts, "refused", counts.refused + 1),
        unknown_key=lambda: setattr(counts, "unknown", counts.unknown + 1),
        unparseable=lambda: setattr(counts, "unparseable", counts.unparseable + 1),
    )
    listener = Listener(s, aws, publish, metrics)
    await listener.start()
    return World(s, aws, jobs, sent, listener, counts)


@pytest.fixture
async def world(policy_settings: Settings, policy_aws: AwsClients, events: Events) -> World:
    return await _world(policy_settings, policy_aws, events.bus.publish)


async def test_each_outcome_becomes_its_event_and_leaves_the_queue(
    world: World, events: Events
) -> None:
    await world.publish(world.output())
    await world.publish(world.output(reason=EXPIRED))
    await world.publish(world.output(reason="ClientError: bad input"))
    await world.publish(world.output(reason="ServerError: try later"))
    assert await world.take() == 4
    taken = [e.payload for e in await events.taken(4)]
    got = {type(p): p for p in taken if not isinstance(p, LevelFailed)}
    failed = [p for p in taken if isinstance(p, LevelFailed)]
    done = got[LevelCompleted]
    assert isinstance(done, LevelCompleted)
    assert (done.task_id, done.job_name) == ("clip-1.vehicles", "VOTVehicle")
    assert done.dedup_key == world.sent["lava-dedup-id"]
    assert isinstance(got[TaskExpired], TaskExpired)
    assert got[TaskExpired].failure_reason == EXPIRED
    retryable = {f.failure_reason: f.retryable for f in failed}
    assert retryable == {"ClientError: bad input": False, "ServerError: try later": True}
    assert await world.on_queue() == 0


async def test_a_repeated_output_becomes_the_same_event(world: World, events: Events) -> None:
    await world.publish(world.output())
    await world.publish(world.output())  # SNS delivers at least once
    assert await world.take() == 2
    first, second = await events.taken(2)
    assert first.event_id == second.event_id  # the dispatcher's idempotency sees one


async def test_the_adjustment_level_reports_what_the_reviewer_changed(
    world: World, events: Events
) -> None:
    level1, adjust = world.job, world.jobs["AdjVOTVehicle"]
    dispatcher = make(world.aws, world.settings, FakeClock(), Recorder())
    await dispatcher.on_level_completed(
        completed(
            "clip-1.vehicles", level1, world.sent["lava-dedup-id"], world.settings.names.bucket
        )
    )
    (level2,) = await inputs(world.aws, adjust)
    body = world.output(adjust, **{"lava-dedup-id": level2["lava-dedup-id"]})
    body[f"{adjust.label_attribute}-metadata"]["adjustment-status"] = "adjusted"
    await world.publish(body, adjust.output_topic_arn)
    assert await world.take() == 1
    (event,) = await events.taken(1)
    assert isinstance(event.payload, LevelCompleted)
    assert (event.payload.job_name, event.payload.adjustment_status) == (
        "AdjVOTVehicle",
        "adjusted",
    )


async def test_outputs_it_cannot_place_are_left_to_the_redrive_policy(
    world: World, events: Events
) -> None:
    await world.publish(world.output(**{"lava-dedup-id": "clip-9.vehicles/1-abcd/VOTVehicle/0"}))
    await world.publish({"source-ref": "s3://x/y", "no": "label attribute"})
    assert await world.take() == 0
    await events.taken(0)
    assert (world.counts.unknown, world.counts.unparseable) == (1, 1)
    # still on the queue: SQS offers them again and moves them to the DLQ after maxReceiveCount
    assert await world.on_queue() == 2


async def test_forged_outputs_go_to_the_dead_letter_queue_with_their_reason(
    world: World, events: Events
) -> None:
    other = next(j for name, j in world.jobs.items() if name != world.job.name)
    bucket, attr = world.settings.names.bucket, world.job.label_attribute
    await world.publish(world.output(other, marker="other-job"), other.output_topic_arn)
    await world.publish(
        world.output(marker="foreign-bucket", **{attr: "s3://someone-else/x/SeqLabel.json"})
    )
    await world.publish(world.output(marker="traversal", **{attr: f"s3://{bucket}/labels/v.json"}))
    await world.publish(world.output(marker="genuine"))
    assert await world.take() == 1
    (event,) = await events.taken(1)
    assert isinstance(event.payload, LevelCompleted)
    reasons = {
        json.loads(json.loads(m["Body"])["Message"])["marker"]: m["MessageAttributes"][
            REASON_ATTRIBUTE
        ]["StringValue"]
        for m in await world.dead_letters()
    }
    assert "came from the topic of" in reasons["other-job"]
    assert "is not under the job's output prefix" in reasons["foreign-bucket"]
    assert "is not under the job's output prefix" in reasons["traversal"]
    assert world.counts.refused == 3
    assert await world.on_queue() == 0


async def test_an_output_whose_event_was_not_confirmed_stays_for_the_next_receive(
    policy_settings: Settings, policy_aws: AwsClients, events: Events
) -> None:
    refusals = [RuntimeError("the broker did not confirm")]

    async def unreliable(event: Event[Any]) -> None:
        if refusals:
            raise refusals.pop()
        await events.bus.publish(event)

    world = await _world(policy_settings, policy_aws, unreliable)
    await world.publish(world.output())
    assert await world.take() == 0  # not deleted: SQS will offer it again
    await events.taken(0)
    await world.offer_again()
    assert await world.take() == 1
    assert [e.type for e in await events.taken(1)] == ["LevelCompleted"]
