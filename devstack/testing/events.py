"""Valid example events (contract instances) for tests and benchmarks."""

from __future__ import annotations

from shared.events import (
    ClipFailed,
    ClipFrames,
    ClipIngested,
    Event,
    FramesReady,
    LevelCompleted,
    LevelFailed,
    TaskExpired,
    new_event,
)
from shared.ids import task_id_of
from shared.labeling.streaming_job import StreamingJob
from shared.taxonomy.attributes import ClipAttributes, DriveAttributes


def clip_failed(clip_id: str = "clip-1", reason: str = "test") -> Event[ClipFailed]:
    return new_event(ClipFailed(clip_id=clip_id, stage="ingest", reason=reason), clip_id)


def clip_ingested(clip_id: str = "clip-1", **overrides: object) -> ClipIngested:
    data: dict[str, object] = {
        "clip_id": clip_id,
        "drive": DriveAttributes(
            drive_id="drive-1", weather="clear", time_of_day="daytime", route="I-280 N"
        ),
        "clip": ClipAttributes(scene="highway", traffic="free-flowing", traffic_density="low"),
        "video_uri": f"s3://lava-data/raw/{clip_id}.mp4",
        "fps": 1.0,
        "workflows": ["vehicles"],
    }
    data.update(overrides)
    return ClipIngested.model_validate(data)


def frames_ready(
    clip_id: str = "clip-1", workflow: str = "vehicles", bucket: str = "lava-data"
) -> Event[FramesReady]:
    task_id = task_id_of(clip_id, workflow)
    payload = FramesReady(
        task_id=task_id,
        clip_id=clip_id,
        workflow=workflow,
        clip_workflows=[workflow],
        drive=DriveAttributes(drive_id="d1", weather="clear", time_of_day="night", route="A1"),
        clip=ClipAttributes(scene="tunnel", traffic="undefined", traffic_density="low"),
        frames=ClipFrames(
            sequence_uri=f"s3://{bucket}/clips/{clip_id}/fps-1/sequence.json",
            manifest_uri=f"s3://{bucket}/clips/{clip_id}/fps-1/manifest.jsonl",
            frame_count=10,
            width=320,
            height=180,
            fps=1,
        ),
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


def expired(task_id: str, job: StreamingJob, key: str) -> Event[TaskExpired]:
    return new_event(
        TaskExpired(
            task_id=task_id,
            job_name=job.name,
            data_object_id="0",
            dedup_key=key,
            failure_reason="ClientError: Annotation tasks expired.",
        ),
        task_id,
    )


def failed(
    task_id: str, job: StreamingJob, key: str, retryable: bool = False
) -> Event[LevelFailed]:
    return new_event(
        LevelFailed(
            task_id=task_id,
            job_name=job.name,
            data_object_id="0",
            dedup_key=key,
            failure_reason="ClientError: the sequence file is unreadable"
            if not retryable
            else "ServerError: try later",
            retryable=retryable,
        ),
        task_id,
    )
