"""What a Label Studio task shows and how its frames map to the pipeline's: read from the
clip's frame index (``frames.json``, written by ingest)."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from shared.groundtruth.job_types import JobType
from shared.labeling.labelstudio.client import KEY_FIELD
from shared.labeling.labelstudio.config import Surface, surface_of
from shared.labeling.labelstudio.tracks import FrameRef, VideoFrames
from shared.layout import ClipLayout, FrameIndex, parse_s3_uri
from shared.storage import S3Store

if TYPE_CHECKING:
    from shared.aws import AwsClients


def clip_frames(index: FrameIndex) -> VideoFrames:
    """The extracted frames as video frames (Label Studio counts from 1)."""
    step = max(1, math.ceil(index.source_fps / index.fps))
    last = max((f.source_frame for f in index.frames), default=0)
    return VideoFrames(
        width=index.width,
        height=index.height,
        fps=index.source_fps,
        frames_count=last + step,
        frames=tuple(FrameRef(f.frame_no, f.file, f.source_frame + 1) for f in index.frames),
    )


async def frame_index(aws: AwsClients, sequence_uri: str) -> FrameIndex:
    layout = ClipLayout.from_sequence_uri(sequence_uri)
    raw = await S3Store(aws).get_json(layout.bucket, layout.frame_index_key)
    return FrameIndex.model_validate(raw)


async def presigned(aws: AwsClients, uri: str, seconds: int) -> str:
    bucket, key = parse_s3_uri(uri)
    s3 = await aws.s3()
    url: str = await s3.generate_presigned_url(
        "get_object", Params={"Bucket": bucket, "Key": key}, ExpiresIn=seconds
    )
    return url


async def task_data(
    aws: AwsClients, job: JobType, key: str, source_ref: str, seconds: int
) -> dict[str, Any]:
    """The task's data: its dedup key (checked before every import), where it came from, and
    the media with presigned URLs - the clip for video jobs, the frames for polyline jobs."""
    index = await frame_index(aws, source_ref)
    data: dict[str, Any] = {
        KEY_FIELD: key,
        "source_ref": source_ref,
        "clip_id": index.clip_id,
        "fps": index.source_fps,
    }
    if surface_of(job) is Surface.VIDEO:
        data["video"] = await presigned(aws, index.video_uri, seconds)
    else:
        layout = ClipLayout.from_sequence_uri(source_ref)
        data["frames"] = [
            await presigned(aws, layout.uri(layout.frames_prefix + f.file), seconds)
            for f in index.frames
        ]
    return data
