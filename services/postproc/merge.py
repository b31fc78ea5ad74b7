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

from services.postproc.reads import ClipReads
from services.postproc.summary import AdjustmentDiff, adjustment_diff
from shared import bounded_json
from shared.events import JobOutput
from shared.groundtruth.annotations import parse_seq_label
from shared.groundtruth.convert import AttributeStats, class_map, from_seq_label
from shared.groundtruth.errors import GtFormatError
from shared.groundtruth.job_types import JOB_TYPES, job_type
from shared.layout import FrameIndex, parse_s3_uri
from shared.storage import ObjectMissing, TooLarge
from shared.taxonomy.attributes import ClipAttributes, DriveAttributes
from shared.taxonomy.records import ClipInfo, ClipLabels, FrameRecord, LavaObject
from shared.taxonomy.validation import LabelProblem

# A SeqLabel file of a 10 s clip is well under 10 MiB (a few hundred frames of boxes); the cap
# keeps a forged or runaway file from being held in memory whole.
MAX_LABEL_FILE_BYTES = 64 * 1024 * 1024
LABEL_FILE_DEPTH = 12


class OutputUnreadable(RuntimeError):
    """A job's annotation file cannot be read (missing): the clip cannot complete."""


@dataclass
class Merged:
    labels: ClipLabels
    problems: list[LabelProblem] = field(default_factory=list)
    adjustments: list[AdjustmentDiff] = field(default_factory=list)
    attributes: AttributeStats = field(default_factory=AttributeStats)


def output_class_map(output: JobOutput) -> dict[str, str]:
    """The output's ``class-map`` over the job type's own.

    Ground Truth lists only the classes present in the sequence, and a sequence without
    objects may have an empty or no class map (sms-data-output); class ids are the labels'
    positions in the job's label category file, which the job type knows.
    """
    cmap = dict(class_map(job_type(output.job_type))) if output.job_type in JOB_TYPES else {}
    given = output.metadata.get("class-map")
    if isinstance(given, dict):
        cmap.update({str(k): str(v) for k, v in given.items()})
    return cmap


async def read_output(
    reads: ClipReads,
    output: JobOutput,
    index: FrameIndex,
    stats: AttributeStats | None = None,
) -> tuple[dict[int, list[LavaObject]], list[LabelProblem]]:
    """One job's labels per frame number of ``index``, and what could not be used.

    Output frames are matched to the sequence by their ``frame`` file name (Ground Truth
    writes the worker's frames, not necessarily in the sequence's positions); an output frame
    without a known name falls back to its ``frame-no``.
    """
    try:
        raw = await reads.get_bytes(*parse_s3_uri(output.label_uri), max_bytes=MAX_LABEL_FILE_BYTES)
    except ObjectMissing:
        raise OutputUnreadable(f"{output.job_name}: {output.label_uri} does not exist") from None
    except TooLarge as exc:
        return {}, [LabelProblem("gt-format", f"{output.job_name}: {exc}")]
    try:
        # Bounded: a label file with NaN, 1e400 or absurd nesting is a format problem of the
        # clip (it fails with that reason), not an OverflowError retried into a dead letter.
        tree = bounded_json.loads(
            raw, max_bytes=MAX_LABEL_FILE_BYTES, what="label file", max_depth=LABEL_FILE_DEPTH
        )
        seq = parse_seq_label(tree)
        frames, problems = from_seq_label(seq, output_class_map(output), stats)
    except GtFormatError as exc:
        return {}, [LabelProblem("gt-format", f"{output.job_name}: {exc}", field=exc.field)]
    except (ValueError, OverflowError, TypeError, RecursionError) as exc:
        reason = f"{type(exc).__name__}: {exc}"[:500]
        return {}, [LabelProblem("gt-format", f"{output.job_name}: {reason}")]
    by_name = {f.file: f.frame_no for f in index.frames}
    known = {f.frame_no for f in index.frames}
    out: dict[int, list[LavaObject]] = {}
    for frame in frames:
        frame_no = by_name.get(frame.frame, frame.frame_no)
        if frame.frame not in by_name and frame_no not in known:
            problems.append(
                LabelProblem(
                    "gt-format",
                    f"{output.job_name}: frame {frame.frame or frame.frame_no} is not in "
                    "the sequence",
                    frame_no=frame.frame_no,
                )
            )
            continue
        out.setdefault(frame_no, []).extend(frame.objects)
    return out, problems


def final_outputs(outputs: Sequence[JobOutput]) -> list[JobOutput]:
    adjusted = {o.adjusts for o in outputs if o.adjusts}
    return [o for o in outputs if o.job_name not in adjusted]


async def _adjustment(
    reads: ClipReads,
    output: JobOutput,
    level1: JobOutput,
    final: dict[int, list[LavaObject]],
    index: FrameIndex,
    moved_iou: float,
) -> AdjustmentDiff:
    """What ``output`` changed in ``level1``'s labels (its own labels ``final`` read)."""
    # The quality record reads the same file: ``reads`` fetches it once per event.
    before, _ = await read_output(reads, level1, index)
    return adjustment_diff(
        output.adjusts or level1.job_name,
        output.job_name,
        before,
        final,
        moved_iou,
        output.metadata.get("adjustment-status"),
    )


async def task_adjustments(
    reads: ClipReads, index: FrameIndex, outputs: Sequence[JobOutput], moved_iou: float
) -> dict[str, AdjustmentDiff]:
    """One task's adjustment diffs, by the adjusting job: made by the task's own event (its
    files are in ``reads`` for its quality record) and held with it, so the clip's merge -
    maybe in another event - need not read the level-1 files again."""
    by_name = {o.job_name: o for o in outputs}
    found: dict[str, AdjustmentDiff] = {}
    for output in final_outputs(outputs):
        if output.adjusts and output.adjusts in by_name:
            final, _ = await read_output(reads, output, index)
            level1 = by_name[output.adjusts]
            found[output.job_name] = await _adjustment(
                reads, output, level1, final, index, moved_iou
            )
    return found


async def merge(
    reads: ClipReads,
    clip_id: str,
    drive: DriveAttributes,
    clip: ClipAttributes,
    index: FrameIndex,
    outputs: Sequence[JobOutput],
    moved_iou: float,
    known: dict[str, AdjustmentDiff] | None = None,
) -> Merged:
    """The clip's final outputs merged frame by frame; ``known``: adjustment diffs made
    before (``task_adjustments``), by adjusting job - their level-1 files are not read."""
    problems: list[LabelProblem] = []
    by_frame: dict[int, list[LavaObject]] = {f.frame_no: [] for f in index.frames}
    finals = final_outputs(outputs)
    by_name = {o.job_name: o for o in outputs}
    adjustments: list[AdjustmentDiff] = []
    stats = AttributeStats()
    for output in sorted(finals, key=lambda o: o.job_name):
        frames, found = await read_output(reads, output, index, stats)
        problems.extend(found)
        for frame_no, objects in frames.items():
            by_frame[frame_no].extend(objects)
        if output.adjusts and output.adjusts in by_name:
            diff = (known or {}).get(output.job_name)
            if diff is None:
                level1 = by_name[output.adjusts]
                diff = await _adjustment(reads, output, level1, frames, index, moved_iou)
            adjustments.append(diff)
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
    return Merged(labels, problems, adjustments, stats)
