"""Where things live in the namespace's bucket - one scheme every component follows.

```
raw/<drive_id>/<clip_id>.<ext>                 the clip as uploaded by the capture rig
sidecars/<clip_id>.lava.json                   ground truth of a sample clip (optional)
clips/<clip_id>/fps-<fps>/frames/000000.jpg    extracted frames
clips/<clip_id>/fps-<fps>/sequence.json        Ground Truth sequence file
clips/<clip_id>/fps-<fps>/manifest.jsonl       Ground Truth input manifest
clips/<clip_id>/fps-<fps>/frames.json          frame index (written last: extraction done)
label-config/<job>.json                        label category file of a streaming job
gt-output/<job>/<object>/SeqLabel.json         per-frame annotations (emulator; real GT: its own)
labels/<clip_id>.json                          the clip's final LAVA records
summary/<clip_id>.json                         its summary metadata
exports/<export_id>/attempt-<n>/...            a dataset export's files (the record names the
                                               attempt that completed it)
```
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field

_S3_URI = re.compile(r"^s3://([^/]+)/(.+)$")


def parse_s3_uri(uri: str) -> tuple[str, str]:
    match = _S3_URI.match(uri)
    if not match:
        raise ValueError(f"not an s3://bucket/key URI: {uri!r}")
    return match.group(1), match.group(2)


def s3_uri(bucket: str, key: str) -> str:
    return f"s3://{bucket}/{key}"


def fps_label(fps: float) -> str:
    return f"fps-{fps:g}"


@dataclass(frozen=True)
class ClipLayout:
    bucket: str
    clip_id: str
    fps: float

    @property
    def prefix(self) -> str:
        return f"clips/{self.clip_id}/{fps_label(self.fps)}/"

    @property
    def frames_prefix(self) -> str:
        return f"{self.prefix}frames/"

    def frame_key(self, index: int) -> str:
        return f"{self.frames_prefix}{self.frame_name(index)}"

    @staticmethod
    def frame_name(index: int) -> str:
        return f"{index:06d}.jpg"

    @property
    def sequence_key(self) -> str:
        return f"{self.prefix}sequence.json"

    @property
    def manifest_key(self) -> str:
        return f"{self.prefix}manifest.jsonl"

    @property
    def frame_index_key(self) -> str:
        return f"{self.prefix}frames.json"

    def uri(self, key: str) -> str:
        return s3_uri(self.bucket, key)

    @staticmethod
    def from_sequence_uri(uri: str) -> ClipLayout:
        bucket, key = parse_s3_uri(uri)
        parts = key.split("/")
        if len(parts) < 4 or parts[0] != "clips" or not parts[2].startswith("fps-"):
            raise ValueError(f"not a LAVA sequence file URI: {uri!r}")
        return ClipLayout(bucket, parts[1], float(parts[2][len("fps-") :]))


# Where clips are uploaded (the capture rig) and the only prefix ingest may read them from.
RAW_PREFIX = "raw/"


def raw_key(drive_id: str, clip_id: str, suffix: str) -> str:
    return f"{RAW_PREFIX}{drive_id}/{clip_id}{suffix}"


def sidecar_key(clip_id: str) -> str:
    return f"sidecars/{clip_id}.lava.json"


def label_config_key(job_name: str) -> str:
    return f"label-config/{job_name}.json"


def labels_key(clip_id: str) -> str:
    return f"labels/{clip_id}.json"


def summary_key(clip_id: str) -> str:
    return f"summary/{clip_id}.json"


def rejected_summary_key(task_id: str) -> str:
    """The summary of a failed merge of a clip that completed before (it keeps its own)."""
    return f"summary/rejected/{task_id}.json"


def export_prefix(export_id: str, attempt: int) -> str:
    """Where one attempt of a dataset export writes: a stale attempt (its replica lost the
    lease) never overwrites the files of the attempt that completed."""
    return f"exports/{export_id}/attempt-{attempt}/"


class IndexedFrame(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    frame_no: int = Field(ge=0, description="Position in the sequence (sample index).")
    timestamp: float = Field(ge=0, description="Seconds from the clip's first frame.")
    source_frame: int = Field(ge=0, description="Position of the frame in the source video.")
    file: str


class FrameIndex(BaseModel):
    """``frames.json``: what extraction produced, for post-processing and the emulator."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    clip_id: str
    fps: float
    source_fps: float
    width: int
    height: int
    video_uri: str
    sequence_uri: str
    manifest_uri: str
    frames: list[IndexedFrame]
