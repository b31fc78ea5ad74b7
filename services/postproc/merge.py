"""Reading the final annotation files of a clip's jobs and merging them into LAVA records.

Every workflow of a clip is one annotation task; each task's LabelsFinalized lists the outputs
of all its jobs. The final labels of a modality come from the last job of its chain (the one
no other job adjusts); the level-1 outputs it adjusted are read too, for the adjustment diff.
Objects of every modality are merged frame by frame into records that carry the inherited
drive and clip attributes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from services.postproc.summary import AdjustmentDiff, adjustment_diff
from shared.events import JobOutput
from shared.groundtruth.annotations import parse_seq_label
from shared.groundtruth.convert import from_seq_label
from shared.groundtruth.errors import GtFormatError
from shared.layout import FrameIndex, parse_s3_uri
from shared.storage import NotFound, S3Store
from shared.taxonomy.attributes import ClipAttributes, DriveAttributes
from shared.taxonomy.records import ClipInfo, ClipLabels, FrameRecord, LavaObject
from shared.taxonomy.validation import Problem


class OutputUnreadable(RuntimeError):
    """A job's annotation file cannot be read (missing): the clip cannot complete."""


@dataclass
class Merged:
    labels: ClipLabels
    problems: list[Problem] = field(default_factory=list)
    adjustments: list[AdjustmentDiff] = field(default_factory=list)


async def read_output(
    store: S3Store, output: JobOutput
) -> tuple[dict[int, list[LavaObject]], list[Problem]]:
    """One job's labels per frame number, and what could not be used."""
    try:
        raw = await store.get_bytes(*parse_s3_uri(output.label_uri))
    except NotFound:
        raise OutputUnreadable(f"{output.job_name}: {output.label_uri} does not exist") from None
    try:
        seq = parse_seq_label(raw)
    except GtFormatError as exc:
        return {}, [Problem("gt-format", f"{output.job_name}: {exc}", field=exc.field)]
    cmap = output.metadata.get("class-map") or {}
    frames, problems = from_seq_label(seq, {str(k): str(v) for k, v in cmap.items()})
    return {f.frame_no: list(f.objects) for f in frames}, problems


def final_outputs(outputs: Sequence[JobOutput]) -> list[JobOutput]:
    adjusted = {o.adjusts for o in outputs if o.adjusts}
    return [o for o in outputs if o.job_name not in adjusted]


async def merge(
    store: S3Store,
    clip_id: str,
    drive: DriveAttributes,
    clip: ClipAttributes,
    index: FrameIndex,
    outputs: Sequence[JobOutput],
    moved_iou: float,
) -> Merged:
    problems: list[Problem] = []
    by_frame: dict[int, list[LavaObject]] = {f.frame_no: [] for f in index.frames}
    finals = final_outputs(outputs)
    by_name = {o.job_name: o for o in outputs}
    adjustments: list[AdjustmentDiff] = []
    for output in sorted(finals, key=lambda o: o.job_name):
        frames, found = await read_output(store, output)
        problems.extend(found)
        for frame_no, objects in frames.items():
            if frame_no not in by_frame:
                problems.append(
                    Problem(
                        "gt-format",
                        f"{output.job_name}: frame {frame_no} is not in the sequence",
                        frame_no=frame_no,
                    )
                )
                continue
            by_frame[frame_no].extend(objects)
        if output.adjusts and output.adjusts in by_name:
            level1, _ = await read_output(store, by_name[output.adjusts])
            adjustments.append(
                adjustment_diff(
                    output.adjusts,
                    output.job_name,
                    level1,
                    frames,
                    moved_iou,
                    output.metadata.get("adjustment-status"),
                )
            )
    info = ClipInfo(clip_id=clip_id, **clip.model_dump())
    records = tuple(
        FrameRecord(
            frame_no=f.frame_no,
            timestamp=f.timestamp,
            drive=drive,
            clip=info,
            objects=tuple(by_frame[f.frame_no]),
        )
        for f in index.frames
    )
    labels = ClipLabels(
        clip_id=clip_id,
        width=index.width,
        height=index.height,
        fps=index.fps,
        drive=drive,
        clip=info,
        frames=records,
    )
    return Merged(labels, problems, adjustments)
