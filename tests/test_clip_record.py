"""The clip record: read from what the tasks table stores (old items included), its policy of
changes, and each stage's state derived from it (pure: no store)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from devstack.testing.events import frames_ready
from shared.tasks.clip_policy import Change, ClipStage, StageState, clip_stages, next_status
from shared.tasks.model import (
    AnnotationTask,
    ClipCompletion,
    ClipFailure,
    ClipRecord,
    ClipStatus,
    ClipStop,
    TaskStatus,
)


def test_a_clip_being_labeled_has_its_tasks_and_no_outcome() -> None:
    record = ClipRecord.model_validate(
        {"clip_id": "c", "clip_status": "labeling", "tasks": ["c.vehicles"], "kind": "clip"}
    )
    assert record.status is ClipStatus.LABELING and record.outcome is None
    assert record.tasks == ["c.vehicles"]


def test_an_outcome_is_read_by_its_status_and_written_with_it() -> None:
    failure = ClipFailure(stage="ingest", reason="not a readable video")
    stored = {"clip_id": "c", "clip_status": "failed", "detail": failure.model_dump_json()}
    record = ClipRecord.model_validate(stored)
    assert record.outcome == failure and record.tasks == []


@pytest.mark.parametrize(
    ("status", "detail", "outcome"),
    [
        (
            "completed",
            '{"labels_uri": "s3://b/l.json", "summary_uri": "s3://b/s.json", "warnings": 2}',
            ClipCompletion(labels_uri="s3://b/l.json", summary_uri="s3://b/s.json", warnings=2),
        ),
        (
            "failed",
            '{"stage": "postproc", "reason": "bad", "task_id": "c.v"}',
            ClipFailure(stage="postproc", reason="bad", task_id="c.v"),
        ),
        (
            "stopped",
            '{"task_id": "c.v", "by": "op", "reason": ""}',
            ClipStop(task_id="c.v", by="op"),
        ),
    ],
)
def test_items_written_before_the_outcome_carried_its_status_still_read(
    status: str, detail: str, outcome: ClipCompletion | ClipFailure | ClipStop
) -> None:
    record = ClipRecord.model_validate({"clip_id": "c", "clip_status": status, "detail": detail})
    assert record.status == status and record.outcome == outcome


def test_an_outcome_that_does_not_match_its_status_is_refused() -> None:
    with pytest.raises(ValidationError):
        ClipRecord.model_validate(
            {"clip_id": "c", "clip_status": "failed", "detail": '{"labels_uri": "s3://b/l"}'}
        )


# --- the clip record's policy (shared.tasks.clip_policy): pure ---------------------------------
FAILED_AT_INGEST = ClipRecord(
    clip_id="c", status=ClipStatus.FAILED, outcome=ClipFailure(stage="ingest", reason="gone")
)
FAILED_LABELING = ClipRecord(
    clip_id="c",
    status=ClipStatus.FAILED,
    tasks=["c.v"],
    outcome=ClipFailure(stage="labeling", reason="expired", task_id="c.v"),
)
COMPLETED = ClipRecord(
    clip_id="c",
    status=ClipStatus.COMPLETED,
    tasks=["c.v"],
    outcome=ClipCompletion(labels_uri="s3://b/l.json", summary_uri="s3://b/s.json"),
)


def record(status: ClipStatus) -> ClipRecord:
    return ClipRecord(clip_id="c", status=status)


def test_a_record_without_a_status_is_a_clip_being_ingested() -> None:
    stored = {"clip_id": "c", "kind": "clip", "tasks": ["c.v"], "accepted_at": 5.0}
    found = ClipRecord.model_validate(stored)
    assert found.status is ClipStatus.INGESTING and found.accepted_at == 5.0


@pytest.mark.parametrize(
    ("before", "change", "after"),
    [
        (None, "accept", ClipStatus.INGESTING),
        (None, "task", ClipStatus.LABELING),
        (record(ClipStatus.INGESTING), "task", ClipStatus.LABELING),
        (record(ClipStatus.LABELING), "task", None),
        (COMPLETED, "task", None),  # a later task does not reopen a completed clip
        (FAILED_LABELING, "task", None),
        (record(ClipStatus.INGESTING), "fail", ClipStatus.FAILED),
        (record(ClipStatus.LABELING), "fail", ClipStatus.FAILED),
        (record(ClipStatus.STOPPED), "fail", ClipStatus.FAILED),
        (record(ClipStatus.LABELING), "stop", ClipStatus.STOPPED),
        (COMPLETED, "fail", None),  # a completed clip keeps its outcome and labels
        (COMPLETED, "stop", None),
        (COMPLETED, "complete", ClipStatus.COMPLETED),
        (FAILED_LABELING, "complete", ClipStatus.COMPLETED),  # a retried task completes it
        (record(ClipStatus.LABELING), "accept", None),
        (FAILED_AT_INGEST, "accept", ClipStatus.INGESTING),  # submitted again: nothing ran
        (FAILED_LABELING, "accept", None),  # retry the task instead
        (COMPLETED, "accept", None),
    ],
)
def test_which_change_moves_a_clip_from_which_state(
    before: ClipRecord | None, change: Change, after: ClipStatus | None
) -> None:
    assert next_status(before, change) is after


def _task(status: TaskStatus, level: int, levels: int = 2, **more: object) -> AnnotationTask:
    fields = frames_ready("c").payload.model_dump()
    return AnnotationTask.model_validate(
        {
            **fields,
            "levels": [[f"Job{i}"] for i in range(levels)],
            "level": level,
            "status": status,
            "created_at": 0,
            "updated_at": 0,
            "level_started_at": 0,
            **more,
        }
    )


def _states(stages: list[ClipStage]) -> list[tuple[str, str | None, str]]:
    return [(s.stage, s.task_id, s.state.value) for s in stages]


def test_stages_of_a_clip_being_ingested_then_failed_at_ingest() -> None:
    ingesting = ClipRecord(clip_id="c", tasks=["c.vehicles"])
    assert _states(clip_stages(ingesting, {"c.vehicles": None})) == [
        ("ingest", None, "running"),
        ("labeling", "c.vehicles", "pending"),
        ("post-processing", None, "pending"),
    ]
    failed = FAILED_AT_INGEST.model_copy(update={"tasks": ["c.vehicles"]})
    stages = clip_stages(failed, {"c.vehicles": None})
    assert _states(stages)[:2] == [("ingest", None, "failed"), ("labeling", "c.vehicles", "failed")]
    assert stages[0].reason == "gone"


def test_stages_of_each_level_follow_the_task() -> None:
    labeling = ClipRecord(clip_id="c", status=ClipStatus.LABELING, tasks=["c.vehicles"])
    at_two = {"c.vehicles": _task(TaskStatus.ACTIVE, 2)}
    assert _states(clip_stages(labeling, at_two)) == [
        ("ingest", None, "done"),
        ("level 1", "c.vehicles", "done"),
        ("level 2", "c.vehicles", "running"),
        ("post-processing", None, "pending"),
    ]
    failed = {"c.vehicles": _task(TaskStatus.FAILED, 1, failure_reason="expired twice")}
    stages = clip_stages(labeling, failed)
    assert _states(stages)[1:3] == [
        ("level 1", "c.vehicles", "failed"),
        ("level 2", "c.vehicles", "pending"),
    ]
    assert stages[1].reason == "expired twice"
    finalized = {"c.vehicles": _task(TaskStatus.FINALIZED, 2)}
    assert clip_stages(labeling, finalized)[-1].state is StageState.RUNNING


def test_a_completed_clip_shows_its_later_failed_task_and_stays_done() -> None:
    tasks = {
        "c.v": _task(TaskStatus.COMPLETED, 1, levels=1, task_id="c.v"),
        "c.w": _task(TaskStatus.FAILED, 1, levels=1, task_id="c.w", failure_reason="bad"),
    }
    later = COMPLETED.model_copy(update={"tasks": ["c.v", "c.w"]})
    assert _states(clip_stages(later, tasks)) == [
        ("ingest", None, "done"),
        ("level 1", "c.v", "done"),
        ("level 1", "c.w", "failed"),
        ("post-processing", None, "done"),
    ]
