"""Operations on label quality, for both front ends (`lava quality`, `GET /v1/quality`): the
report over a time window, and marking clips as gold for a workflow (docs/quality.md)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from shared.ids import task_id_of
from shared.layout import labels_key, s3_uri, sidecar_key
from shared.operations.errors import Invalid, NotFound
from shared.quality.gold_clips import GoldClip, GoldClips
from shared.quality.gold_ref import TruthKind
from shared.quality.records import QualityRecords
from shared.quality.report import QualityReport, report
from shared.storage import S3Store
from shared.tasks.store import TaskStore

if TYPE_CHECKING:
    from shared.aws import AwsClients
    from shared.settings import ControlSettings

# The longest window a report reads (records are listed day by day).
MAX_WINDOW = timedelta(days=366)


def window(
    since: datetime | None, until: datetime | None, now: datetime
) -> tuple[datetime, datetime]:
    """[since, until): by default the last 7 days; refused when backwards or over a year."""
    end = until or now
    start = since or end - timedelta(days=7)
    if start.tzinfo is None or end.tzinfo is None:
        raise Invalid("since and until need a time zone (e.g. 2026-12-01T00:00:00Z)")
    if start >= end:
        raise Invalid(f"since ({start.isoformat()}) is not before until ({end.isoformat()})")
    if end - start > MAX_WINDOW:
        raise Invalid(f"a window is at most {MAX_WINDOW.days} days")
    return start, end


async def quality_report(
    aws: AwsClients,
    settings: ControlSettings,
    since: datetime | None = None,
    until: datetime | None = None,
    *,
    reveal: bool = False,
) -> QualityReport:
    """The report of the tasks finalized in the window; worker ids only with ``reveal``."""
    start, end = window(since, until, datetime.now(UTC))
    records = QualityRecords(aws, settings.names.bucket)
    found = [r async for r in records.between(start, end)]
    key = settings.quality.pseudonym_key.get_secret_value()
    return report(found, key, reveal=reveal)


async def add_gold(
    aws: AwsClients, settings: ControlSettings, clip_id: str, workflow: str, truth: TruthKind
) -> GoldClip:
    """Mark a clip gold for a workflow: it was labeled through it (its frames are known), and
    its truth exists - its approved final labels, or its sidecar."""
    task = await TaskStore(aws, settings).get_task(task_id_of(clip_id, workflow))
    if task is None:
        raise NotFound(f"clip {clip_id} has no task in workflow {workflow}")
    bucket = settings.names.bucket
    key = labels_key(clip_id) if truth == "labels" else sidecar_key(clip_id)
    if await S3Store(aws).head(bucket, key) is None:
        raise Invalid(f"clip {clip_id} has no {truth} truth (s3://{bucket}/{key} is missing)")
    gold = GoldClip(
        clip_id=clip_id,
        workflow=workflow,
        truth_uri=s3_uri(bucket, key),
        truth_kind=truth,
        frames=task.frames,
        drive=task.drive,
        clip=task.clip,
        added_at=datetime.now(UTC),
    )
    await GoldClips(aws, bucket).put(gold)
    return gold


async def remove_gold(
    aws: AwsClients, settings: ControlSettings, clip_id: str, workflow: str
) -> None:
    if not await GoldClips(aws, settings.names.bucket).remove(workflow, clip_id):
        raise NotFound(f"clip {clip_id} is not gold for workflow {workflow}")


async def list_gold(aws: AwsClients, settings: ControlSettings, workflow: str) -> list[GoldClip]:
    return await GoldClips(aws, settings.names.bucket).of(workflow)
