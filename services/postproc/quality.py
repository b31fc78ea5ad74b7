"""Post-processing's quality record of each finalized task (docs/quality.md).

Every task: who made each job's output, and what each adjustment job changed in the job it
adjusted (:mod:`shared.quality.agreement`). A gold copy (``LabelsFinalized.gold``): each job's
output scored against the gold clip's truth (:mod:`shared.quality.gold`) - and nothing else:
a gold copy is never held, merged, indexed or exported, so a gold clip is in the dataset once.
A record that cannot be made is logged and skipped: quality never holds a clip back.
"""

from __future__ import annotations

from datetime import UTC, datetime

import structlog
from pydantic import ValidationError

from services.postproc.merge import OutputUnreadable, read_output
from services.postproc.reads import ClipReads, KeptBytes
from shared.events import JobOutput, LabelsFinalized
from shared.groundtruth.job_types import JOB_TYPES, TaskType
from shared.layout import ClipLayout, FrameIndex, parse_s3_uri
from shared.quality.agreement import agreement
from shared.quality.gold import Frames, score
from shared.quality.gold_ref import GoldRef
from shared.quality.records import GoldResult, LevelWork, QualityRecord, QualityRecords
from shared.storage import ObjectMissing, ObjectStore
from shared.taxonomy.records import ClipLabels

log = structlog.get_logger(__name__)


def tracked_classes(outputs: list[JobOutput]) -> set[str]:
    """Classes of the outputs' video object tracking jobs (MOTA and IDF1 apply to them)."""
    return {
        cls
        for o in outputs
        if (spec := JOB_TYPES.get(o.job_type)) is not None
        and spec.task_type is TaskType.VIDEO_OBJECT_TRACKING
        for cls in spec.lava_classes
    }


def truth_frames(truth: ClipLabels, kind: str, index: FrameIndex) -> Frames:
    """The truth per sequence frame: final labels are numbered so already; a sidecar by the
    source video's frames, which the frame index maps."""
    by_no = {f.frame_no: list(f.objects) for f in truth.frames}
    if kind == "labels":
        return by_no
    return {f.frame_no: by_no.get(f.source_frame, []) for f in index.frames}


class QualityRecorder:
    def __init__(self, store: ObjectStore, records: QualityRecords, moved_iou: float) -> None:
        self.store = store
        self.records = records
        self.moved_iou = moved_iou

    async def record(self, p: LabelsFinalized, reads: ClipReads | None = None) -> None:
        """Record ``p``'s quality; ``reads``: the event's reads, shared with its merge."""
        try:
            record = await self._record(p, reads or ClipReads(self.store, KeptBytes(0)))
        except (OutputUnreadable, ObjectMissing, ValidationError, ValueError) as exc:
            log.warning("no quality record for a task", task_id=p.task_id, error=str(exc)[:300])
            return
        await self.records.put(record)
        log.info("quality recorded", task_id=p.task_id, gold=record.gold)

    async def _record(self, p: LabelsFinalized, reads: ClipReads) -> QualityRecord:
        layout = ClipLayout.from_sequence_uri(p.frames.sequence_uri)
        index = FrameIndex.model_validate(
            await reads.get_json(layout.bucket, layout.frame_index_key)
        )
        frames: dict[str, Frames] = {}
        for output in p.outputs:
            frames[output.job_name], _ = await read_output(reads, output, index)
        by_name = {o.job_name: o for o in p.outputs}
        record = QualityRecord(
            task_id=p.task_id,
            clip_id=p.clip_id,
            workflow=p.workflow,
            finalized_at=datetime.now(UTC),
            gold=p.gold is not None,
            levels=[
                LevelWork(job=o.job_name, level=o.level, adjusts=o.adjusts, worker=o.worker)
                for o in p.outputs
            ],
            agreement=[
                agreement(
                    o.adjusts, o.job_name, frames[o.adjusts], frames[o.job_name], self.moved_iou
                )
                for o in p.outputs
                if o.adjusts in by_name
            ],
        )
        if p.gold is not None:
            record.gold_results = await self._scores(p.gold, p.outputs, frames, index)
        return record

    async def _scores(
        self, gold: GoldRef, outputs: list[JobOutput], frames: dict[str, Frames], index: FrameIndex
    ) -> list[GoldResult]:
        raw = await self.store.get_bytes(*parse_s3_uri(gold.truth_uri))
        truth = truth_frames(ClipLabels.model_validate_json(raw), gold.truth_kind, index)
        results = []
        for output in outputs:
            spec = JOB_TYPES.get(output.job_type)
            classes = set(spec.lava_classes) if spec else set()
            mine = {n: [o for o in objs if o.category in classes] for n, objs in truth.items()}
            results.append(
                GoldResult(
                    job=output.job_name,
                    gold_clip_id=gold.clip_id,
                    per_class=score(frames[output.job_name], mine, tracked_classes([output])),
                )
            )
        return results
