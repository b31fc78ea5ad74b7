"""Staging finalized job outputs in S3 the way Ground Truth and the dispatcher leave them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from shared.events import ClipFrames, JobOutput, LabelsFinalized, new_event
from shared.groundtruth.convert import class_map, to_seq_label
from shared.groundtruth.job_types import job_type
from shared.ids import task_id_of
from shared.layout import ClipLayout, FrameIndex, IndexedFrame, s3_uri
from shared.storage import S3Store
from shared.taxonomy.attributes import ClipAttributes
from shared.taxonomy.records import LavaObject
from tests.support.labels import CLIP, DRIVE

FRAMES = 3


async def stage_frames(store: S3Store, bucket: str, clip_id: str) -> ClipLayout:
    layout = ClipLayout(bucket, clip_id, 5)
    index = FrameIndex(
        clip_id=clip_id,
        fps=5,
        source_fps=30,
        width=1920,
        height=1080,
        video_uri=s3_uri(bucket, f"raw/{clip_id}.mp4"),
        sequence_uri=layout.uri(layout.sequence_key),
        manifest_uri=layout.uri(layout.manifest_key),
        frames=[
            IndexedFrame(frame_no=k, timestamp=k / 5, source_frame=6 * k, file=layout.frame_name(k))
            for k in range(FRAMES)
        ],
    )
    await store.put_json(bucket, layout.frame_index_key, index.model_dump_json())
    return layout


async def stage_output(
    store: S3Store,
    bucket: str,
    job: str,
    type_name: str,
    level: int,
    frames: Mapping[int, Sequence[LavaObject]],
    adjusts: str | None = None,
    adjustment_status: str | None = None,
) -> JobOutput:
    spec = job_type(type_name)
    seq = to_seq_label(spec, [(k, f"{k:06d}.jpg", frames.get(k, ())) for k in range(FRAMES)])
    key = f"gt-output/{job}/x/SeqLabel.json"
    await store.put_json(bucket, key, seq.to_json())
    metadata: dict[str, Any] = {"class-map": class_map(spec), "job-name": f"labeling-job/{job}"}
    if adjustment_status:
        metadata["adjustment-status"] = adjustment_status
    return JobOutput(
        job_name=job,
        job_type=type_name,
        level=level,
        label_attribute=f"{job}-ref",
        label_uri=s3_uri(bucket, key),
        adjusts=adjusts,
        metadata=metadata,
    )


def finalized(
    layout: ClipLayout,
    workflow: str,
    workflows: list[str],
    outputs: list[JobOutput],
    clip: ClipAttributes | None = None,
    drive: Any = None,
) -> Any:
    clip_attrs = clip or ClipAttributes(
        scene=CLIP.scene, traffic=CLIP.traffic, traffic_density=CLIP.traffic_density
    )
    payload = LabelsFinalized(
        task_id=task_id_of(layout.clip_id, workflow),
        clip_id=layout.clip_id,
        workflow=workflow,
        clip_workflows=workflows,
        drive=drive or DRIVE,
        clip=clip_attrs,
        frames=ClipFrames(
            sequence_uri=layout.uri(layout.sequence_key),
            manifest_uri=layout.uri(layout.manifest_key),
            frame_count=FRAMES,
            width=1920,
            height=1080,
            fps=5,
        ),
        outputs=outputs,
    )
    return new_event(payload, payload.task_id)
