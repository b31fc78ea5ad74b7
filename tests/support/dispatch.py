"""A dispatcher wired to the real moto server (and optionally the real bus), on a fake clock."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from services.dispatcher.dispatcher import Dispatcher
from services.dispatcher.jobs import JobDirectory
from services.dispatcher.model import AnnotationTask
from services.dispatcher.sender import InputSender
from services.dispatcher.store import TaskStore
from services.dispatcher.workflows import WorkflowResolver
from shared.aws import AwsClients
from shared.clock import Clock
from shared.events import (
    Event,
    FramesReady,
    LevelCompleted,
    TaskExpired,
    new_event,
)
from shared.labeling.jobs import JobManager
from shared.labeling.registry import JobRegistry, StreamingJob
from shared.settings import Settings
from shared.taxonomy.attributes import ClipAttributes, DriveAttributes
from shared.workflows import load_catalog

DAY = 24 * 3600


def dispatch_settings(settings: Settings, **changes: Any) -> Settings:
    base: dict[str, Any] = {
        "dispatch_retry_base_seconds": 0.0,
        "dispatch_resend_interval_seconds": 5 * DAY,
        "dispatch_level_timeout_seconds": 7 * DAY,
        "dispatch_send_lease_seconds": 60,
    }
    base.update(changes)
    return settings.model_copy(update=base)


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
    store = TaskStore(aws, settings)
    return Dispatcher(
        settings,
        store,
        sender or InputSender(aws, settings.dedup_key_name),
        JobDirectory(JobRegistry(aws, settings)),
        WorkflowResolver(load_catalog(), aws, store.table),
        publish,
        clock,
    )


def frames_ready(
    clip_id: str = "clip-1", workflow: str = "vehicles", bucket: str = "lava-data"
) -> Event[FramesReady]:
    task_id = f"{clip_id}.{workflow}"
    payload = FramesReady(
        task_id=task_id,
        clip_id=clip_id,
        workflow=workflow,
        clip_workflows=[workflow],
        drive=DriveAttributes(drive_id="d1", weather="clear", time_of_day="night", route="A1"),
        clip=ClipAttributes(scene="tunnel", traffic="undefined", traffic_density="low"),
        sequence_uri=f"s3://{bucket}/clips/{clip_id}/fps-1/sequence.json",
        manifest_uri=f"s3://{bucket}/clips/{clip_id}/fps-1/manifest.jsonl",
        frame_count=10,
        width=320,
        height=180,
        fps=1,
    )
    return new_event(payload, task_id)


def completed(
    task_id: str, job: StreamingJob, key: str, bucket: str = "lava-data"
) -> Event[LevelCompleted]:
    return new_event(
        LevelCompleted(
            task_id=task_id,
            job_name=job.name,
            data_object_id="0",
            dedup_key=key,
            label_attribute=job.label_attribute,
            label_uri=f"s3://{bucket}/gt-output/{job.name}/{abs(hash(key)) % 10**8}/SeqLabel.json",
            metadata={"class-map": {"0": "vehicle"}, "job-name": f"labeling-job/{job.gt_name}"},
        ),
        task_id,
    )


def expired(
    task_id: str, job: StreamingJob, key: str, retryable: bool = True
) -> Event[TaskExpired]:
    return new_event(
        TaskExpired(
            task_id=task_id,
            job_name=job.name,
            data_object_id="0",
            dedup_key=key,
            failure_reason="ClientError: Annotation tasks expired.",
            retryable=retryable,
        ),
        task_id,
    )


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
