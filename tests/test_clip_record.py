"""The dispatcher's clip record: read from what the tasks table stores, old items included."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from shared.tasks.model import ClipCompletion, ClipFailure, ClipRecord, ClipStatus, ClipStop


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
