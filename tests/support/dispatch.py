"""A dispatcher wired to the real moto server (and optionally the real bus), on a fake clock."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, TypeVar

from services.dispatcher.dispatcher import Dispatcher
from services.dispatcher.sender import InputSender
from services.dispatcher.service import wire_dispatcher
from shared.aws import AwsClients
from shared.clock import Clock
from shared.events import (
    Event,
)
from shared.labeling.jobs import JobManager
from shared.labeling.streaming_job import StreamingJob
from shared.settings import DispatcherSettings, Settings
from shared.tasks.model import AnnotationTask
from shared.workflows import load_catalog

DAY = 24 * 3600
D = TypeVar("D", bound=DispatcherSettings)


def dispatch_settings(settings: D, **changes: Any) -> D:
    base: dict[str, Any] = {
        "dispatch__retry_base_seconds": 0.0,
        "dispatch__resend_interval_seconds": 5 * DAY,
        "dispatch__level_timeout_seconds": 7 * DAY,
        "dispatch__send_lease_seconds": 60,
    }
    base.update(changes)
    return settings.replace(**base)


@dataclass
class Recorder:
    events: list[Event[Any]] = field(default_factory=list)

    async def __call__(self, event: Event[Any]) -> None:
        self.events.append(event)

    def of(self, event_type: str) -> list[Event[Any]]:
        return [e for e in self.events if e.type == event_type]


async def create_jobs(aws: AwsClients, settings: Settings) -> dict[str, StreamingJob]:
    results = await JobManager(aws, settings).create_from_catalog(load_catalog())
    return {r.job.name: r.job for r in results}


async def task_state(dispatcher: Dispatcher, task_id: str) -> AnnotationTask:
    task = await dispatcher.store.get_task(task_id)
    assert task is not None, f"no task {task_id}"
    return task


def make(
    aws: AwsClients,
    settings: Settings,
    clock: Clock,
    publish: Any,
    sender: InputSender | None = None,
) -> Dispatcher:
    return wire_dispatcher(settings, aws, publish, clock, sender=sender)


async def inputs(aws: AwsClients, job: StreamingJob) -> list[dict[str, Any]]:
    """Every input message waiting in the job's Ground Truth queue (taken off the queue)."""
    sqs = await aws.sqs()
    url = (await sqs.get_queue_url(QueueName=job.gt_queue_name))["QueueUrl"]
    found: list[dict[str, Any]] = []
    while True:
        got = await sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0)
        messages = got.get("Messages", [])
        if not messages:
            return found
        for message in messages:
            found.append(json.loads(message["Body"]))
            await sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
