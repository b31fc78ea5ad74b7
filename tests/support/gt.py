"""Driving streaming jobs from outside: input on the input topic, output from a test queue."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from emulators.groundtruth.service import build
from emulators.settings import LocalSettings
from shared.aws import AwsClients
from shared.groundtruth.messages import DedupKey, input_message
from shared.labeling.jobs import JobRegistry
from shared.labeling.streaming_job import StreamingJob
from shared.layout import ClipLayout, FrameIndex, IndexedFrame, sidecar_key
from shared.runtime import ServiceRuntime
from shared.settings import ServiceSettings
from shared.sns_sqs import queue_arn
from shared.storage import S3Store
from tests.support.clips import small_clip
from tests.support.services import running


async def output_queue(aws: AwsClients, job: StreamingJob, name: str) -> str:
    """A queue receiving the job's output topic (raw messages), like the listener's."""
    sqs, sns = await aws.sqs(), await aws.sns()
    url = (await sqs.create_queue(QueueName=name))["QueueUrl"]
    arn = await queue_arn(sqs, url)
    await sns.subscribe(
        TopicArn=job.output_topic_arn,
        Protocol="sqs",
        Endpoint=arn,
        Attributes={"RawMessageDelivery": "true"},
    )
    return url


async def receive(
    aws: AwsClients, url: str, count: int, timeout: float = 30
) -> list[dict[str, Any]]:
    sqs = await aws.sqs()
    found: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    while len(found) < count and time.monotonic() < deadline:
        got = await sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1)
        for message in got.get("Messages", []):
            found.append(json.loads(message["Body"]))
            await sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    return found


async def send(
    aws: AwsClients,
    job: StreamingJob,
    source_ref: str,
    key_id: str,
    carry: dict[str, Any] | None = None,
) -> None:
    sns = await aws.sns()
    body = input_message(source_ref, DedupKey("lava-dedup-id", key_id), carry)
    await sns.publish(TopicArn=job.input_topic_arn, Message=json.dumps(body))


async def staged_clip(
    aws: AwsClients,
    settings: ServiceSettings,
    tmp_path: Path,
    clip_id: str,
    fps: float = 1,
    seconds: float = 3,
) -> tuple[str, Any]:
    """A clip's frames.json and sidecar in S3, as ingest and the rig leave them."""
    clip = small_clip(tmp_path, seconds=seconds, gop=10, name=clip_id)
    layout = ClipLayout(settings.names.bucket, clip_id, fps)
    step = round(30 / fps)
    frames = [
        IndexedFrame(frame_no=k, timestamp=k / fps, source_frame=k * step, file=f"{k:06d}.jpg")
        for k in range(int(seconds * fps))
    ]
    index = FrameIndex(
        clip_id=clip_id,
        fps=fps,
        source_fps=30,
        width=320,
        height=180,
        video_uri=f"s3://{layout.bucket}/raw/{clip_id}.mp4",
        sequence_uri=layout.uri(layout.sequence_key),
        manifest_uri=layout.uri(layout.manifest_key),
        frames=frames,
    )
    store = S3Store(aws)
    await store.put_json(layout.bucket, layout.frame_index_key, index.model_dump_json())
    await store.put_bytes(layout.bucket, sidecar_key(clip_id), clip.sidecar.read_bytes())
    return layout.uri(layout.sequence_key), clip.labels


def emulator_settings(settings: LocalSettings, **changes: Any) -> LocalSettings:
    """A quick simulated workforce: polled every 50 ms, labels in 50-100 ms, real-time clock."""
    base: dict[str, Any] = {
        "emulator__poll_seconds": 0.05,
        "emulator__latency_min_seconds": 0.05,
        "emulator__latency_max_seconds": 0.1,
        "emulator__worker_rate": 100.0,
        "emulator__time_scale": 1.0,
    }
    base.update(changes)
    return settings.replace(**base)


@dataclass
class RunningEmulator:
    runtime: ServiceRuntime[LocalSettings]
    aws: AwsClients
    settings: LocalSettings

    def simulating(self, job: str) -> bool:
        """Whether the emulator has picked the job up (its open-tasks gauge exists)."""
        sample = self.runtime.metrics.registry.get_sample_value(
            "lava_gt_emulator_open_tasks", {"service": self.runtime.name, "job": job}
        )
        return sample is not None

    async def counters(self, job: str) -> dict[str, int]:
        found = await JobRegistry(self.aws, self.settings).get(job)
        return dict(found.counters) if found else {}


@asynccontextmanager
async def emulator(settings: LocalSettings, aws: AwsClients) -> AsyncIterator[RunningEmulator]:
    """The Ground Truth emulator service, running in the test process."""
    async with running(build, settings, "gt-emulator", None, uses_bus=False) as runtime:
        yield RunningEmulator(runtime, aws, settings)
