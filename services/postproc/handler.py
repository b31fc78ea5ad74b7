"""LabelsFinalized -> validated LAVA records, summary, dataset index -> ClipCompleted.

A clip's workflows finish as separate tasks; their outputs are held until every workflow of
the clip is finalized, then merged. Validation problems never vanish: they are listed in the
summary with frame, object and field, and ``LAVA_POSTPROC__FAIL_ON`` decides whether they fail
the clip or complete it with warnings. Redelivery rewrites the same objects.
"""

from __future__ import annotations

import time
from typing import Any

import structlog

from services.postproc.held import hold, missing
from services.postproc.merge import Merged, OutputUnreadable, merge, task_adjustments
from services.postproc.quality import QualityRecorder
from services.postproc.reads import ClipReads, KeptBytes
from services.postproc.summary import AdjustmentDiff, ClipSummary, summarize
from shared.dataset.index import DatasetIndex, IndexEntry
from shared.events import (
    ClipCompleted,
    ClipFailed,
    Event,
    JobOutput,
    LabelsFinalized,
    bounded_reason,
    derived_event_id,
    new_event,
)
from shared.idempotency import IdempotencyGuard
from shared.layout import (
    ClipLayout,
    FrameIndex,
    labels_key,
    rejected_summary_key,
    s3_uri,
    summary_key,
)
from shared.ports import Publish
from shared.settings import PostprocSettings
from shared.storage import ObjectMissing, ObjectStore
from shared.tasks.model import ClipCompletion, ClipRecord, ClipStatus, TaskStatus
from shared.tasks.moves import TaskMove
from shared.taxonomy.validation import LabelProblem, validate_clip

log = structlog.get_logger(__name__)

_RANK = {"warning": 1, "error": 2}


def failing(problems: list[LabelProblem], fail_on: str) -> list[LabelProblem]:
    """The problems that fail the clip under the configured severity."""
    if fail_on == "never":
        return []
    threshold = _RANK[fail_on]
    return [p for p in problems if _RANK[p.severity] >= threshold]


class PostprocHandler:
    def __init__(
        self,
        settings: PostprocSettings,
        store: ObjectStore,
        index: DatasetIndex,
        publish: Publish,
        guard: IdempotencyGuard | None = None,
        quality: QualityRecorder | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.index = index
        self.publish = publish
        self.guard = guard
        self.quality = quality
        self.kept = KeptBytes()

    async def handle(self, event: Event[LabelsFinalized]) -> None:
        # The quality record and the merge read the same objects: one fetch each per event,
        # kept only while this event is handled, within the process's budget.
        reads = ClipReads(self.store, self.kept)
        try:
            await self._handle(event.payload, reads, event.event_id)
        finally:
            reads.release()

    async def _handle(self, p: LabelsFinalized, reads: ClipReads, event_id: str) -> None:
        # Holding is idempotent (the same item again) and cheap: no guard for it.
        if self.quality is not None:
            await self.quality.record(p, reads)
        if p.gold is not None:
            if self.quality is None:
                log.warning(
                    "gold copy not scored: quality records are off "
                    "(LAVA_POSTPROC__QUALITY_RECORDS); set LAVA_QUALITY__GOLD_RATE=0",
                    task_id=p.task_id,
                )
                return
            log.info("gold copy scored; never indexed", task_id=p.task_id, gold=p.gold.clip_id)
            return
        held = await hold(self.index, p, await self._own_adjustments(p, reads))
        waiting = missing(p, held)
        if waiting:
            log.info("clip waits for its other workflows", clip_id=p.clip_id, waiting=waiting)
            return
        merged = sorted(held)
        tasks = [held[task_id].event for task_id in merged]
        outputs = [o for t in tasks for o in t.outputs]
        known = {job: diff for h in held.values() for job, diff in h.adjustments.items()}
        # Each task as the dispatcher left it: finalized at its last level (the completion
        # moves it to completed in the same transaction as the clip record).
        finals = {t.task_id: max(o.level for o in t.outputs) for t in tasks}
        if self.guard is None:
            await self.complete(p, outputs, reads, finals, known)
            return
        # A merge is the expensive part: done once per set of held tasks, whichever of their
        # events (or duplicates: the dispatcher re-publishes after a crash, brokers redeliver)
        # gets here, and never by two replicas at once. Two guard writes per clip, not per
        # task (docs/policy.md). The event that claimed it holds it: the clip's other events
        # leave it to that event's delivery instead of waiting (shared/idempotency.py).
        once = f"merge:{p.clip_id}:{','.join(merged)}"
        await self.guard.run_once(
            once, lambda: self.complete(p, outputs, reads, finals, known), holder=event_id
        )

    async def complete(
        self,
        p: LabelsFinalized,
        outputs: list[JobOutput],
        reads: ClipReads,
        finals: dict[str, int],
        known: dict[str, AdjustmentDiff],
    ) -> None:
        """Merge the clip's outputs, validate, write labels and summary, then either fail the
        clip (problems at or above ``LAVA_POSTPROC__FAIL_ON``) or index it and complete it.

        A clip that completed before (a later, separate task of it) keeps its labels and
        summary when the new merge fails: that merge's summary goes beside them instead."""
        merged = await self._merge(p, outputs, reads, known)
        if merged is None:
            return
        problems = merged.problems + validate_clip(merged.labels)
        summary = summarize(
            merged.labels,
            problems,
            merged.adjustments,
            workflows=p.clip_workflows,
            sources=_sources(outputs),
            carried_attributes=merged.attributes.carried,
        )
        bucket = self.settings.names.bucket
        fatal = failing(problems, self.settings.postproc.fail_on)
        # Only a failing merge asks whether the clip completed before (then it keeps its
        # labels); a passing one completes the record on a guess of its status instead.
        record = await self.index.clips.get(p.clip_id) if fatal else None
        kept = record is not None and record.status is ClipStatus.COMPLETED
        labels_uri = s3_uri(bucket, labels_key(p.clip_id))
        summary_at = rejected_summary_key(p.task_id) if kept else summary_key(p.clip_id)
        if not kept:
            await self.store.put_json(
                bucket, labels_key(p.clip_id), merged.labels.model_dump_json()
            )
        await self.store.put_json(bucket, summary_at, summary.model_dump_json())
        summary_uri = s3_uri(bucket, summary_at)
        if fatal:
            first = "; ".join(str(x) for x in fatal[:3])
            await self._fail(
                p.clip_id,
                p.task_id,
                f"{len(fatal)} validation problem(s) at or above "
                f"'{self.settings.postproc.fail_on}' (LAVA_POSTPROC__FAIL_ON): {first}; "
                f"all listed in {summary_uri}"
                + ("; the clip keeps the labels it completed with" if kept else ""),
            )
            return
        await self._index_and_announce(p, summary, labels_uri, summary_uri, record, finals)

    async def _index_and_announce(
        self,
        p: LabelsFinalized,
        summary: ClipSummary,
        labels_uri: str,
        summary_uri: str,
        record: ClipRecord | None,
        finals: dict[str, int],
    ) -> None:
        """The dataset entry, the clip record's completion and its merged tasks' in one
        transaction, then ClipCompleted (naming the tasks and whether they completed with it:
        when one was not as expected, the dispatcher moves them instead)."""
        now = time.time()
        completion = ClipCompletion(
            labels_uri=labels_uri, summary_uri=summary_uri, warnings=len(summary.problems)
        )
        entry = index_entry(p, summary, labels_uri, summary_uri, now)
        moved = await self.index.clips.complete_with(
            p.clip_id,
            completion,
            now,
            [self.index.put_action(entry)],
            seen=record,
            guess=ClipStatus.LABELING,  # its tasks exist and it has no outcome yet
            tasks=[TaskMove(t, TaskStatus.FINALIZED, level) for t, level in finals.items()],
        )
        await self.publish(
            new_event(
                ClipCompleted(
                    clip_id=p.clip_id,
                    labels_uri=labels_uri,
                    summary_uri=summary_uri,
                    warnings=completion.warnings,
                    task_ids=list(finals),
                    tasks_completed=moved,
                ),
                p.task_id,
                event_id=derived_event_id(p.clip_id, "ClipCompleted"),
            )
        )
        log.info(
            "clip completed",
            clip_id=p.clip_id,
            frames=summary.frames,
            objects=sum(summary.objects_per_class.values()),
            problems=completion.warnings,
        )

    async def _merge(
        self,
        p: LabelsFinalized,
        outputs: list[JobOutput],
        reads: ClipReads,
        known: dict[str, AdjustmentDiff],
    ) -> Merged | None:
        """The clip's outputs merged over its frame index; None (the clip failed) when any
        of them cannot be read."""
        layout = ClipLayout.from_sequence_uri(p.frames.sequence_uri)
        try:
            index = FrameIndex.model_validate(
                await reads.get_json(layout.bucket, layout.frame_index_key)
            )
            return await merge(
                reads,
                p.clip_id,
                p.drive,
                p.clip,
                index,
                outputs,
                self.settings.postproc.moved_iou,
                known,
            )
        except (OutputUnreadable, ObjectMissing) as exc:
            await self._fail(p.clip_id, p.task_id, f"labels cannot be read: {exc}")
            return None

    async def _own_adjustments(
        self, p: LabelsFinalized, reads: ClipReads
    ) -> dict[str, AdjustmentDiff]:
        """This task's adjustment diffs, held with it for the clip's merge - made only when
        the quality record has just read its files (``reads``): no request of their own. A
        file that cannot be used leaves its diff to the merge (which fails the clip then)."""
        if self.quality is None or p.gold is not None:
            return {}
        layout = ClipLayout.from_sequence_uri(p.frames.sequence_uri)
        try:
            index = FrameIndex.model_validate(
                await reads.get_json(layout.bucket, layout.frame_index_key)
            )
            moved_iou = self.settings.postproc.moved_iou
            return await task_adjustments(reads, index, p.outputs, moved_iou)
        except (OutputUnreadable, ObjectMissing, ValueError):  # pydantic errors too
            return {}

    async def _fail(self, clip_id: str, task_id: str, reason: str) -> None:
        log.error("clip failed in post-processing", clip_id=clip_id, reason=reason)
        await self.publish(
            new_event(
                ClipFailed(
                    clip_id=clip_id,
                    task_id=task_id,
                    stage="postproc",
                    reason=bounded_reason(reason),
                ),
                task_id,
                event_id=derived_event_id(clip_id, "ClipFailed", "postproc"),
            )
        )


def _sources(outputs: list[JobOutput]) -> list[dict[str, Any]]:
    """Where the summary says the labels came from, by level then job."""
    return [
        {"job": o.job_name, "level": o.level, "label_uri": o.label_uri, "adjusts": o.adjusts}
        for o in sorted(outputs, key=lambda o: (o.level, o.job_name))
    ]


def index_entry(
    p: LabelsFinalized, summary: ClipSummary, labels_uri: str, summary_uri: str, at: float
) -> IndexEntry:
    """The clip's line in the dataset index: its attributes and the summary's counts."""
    adjustment = summary.adjustment
    return IndexEntry(
        clip_id=p.clip_id,
        drive_id=p.drive.drive_id,
        weather=p.drive.weather.value,
        time_of_day=p.drive.time_of_day.value,
        route=p.drive.route,
        scene=p.clip.scene.value,
        traffic=p.clip.traffic.value,
        traffic_density=p.clip.traffic_density.value,
        workflows=p.clip_workflows,
        frames=summary.frames,
        objects_per_class=summary.objects_per_class,
        tracks_per_class=summary.tracks_per_class,
        errors=summary.problem_counts["error"],
        warnings=summary.problem_counts["warning"],
        adjustment={
            "added": sum(a.added for a in adjustment),
            "removed": sum(a.removed for a in adjustment),
            "moved": sum(a.moved for a in adjustment),
            "attributes_changed": sum(a.attributes_changed for a in adjustment),
        },
        labels_uri=labels_uri,
        summary_uri=summary_uri,
        completed_at=at,
    )
