"""What post-processing records per finalized task, and where (S3, one JSON per task).

``quality/records/<YYYY-MM-DD>/<task id>.json``: the day of the task's finalization first, so a
time window lists only its days. One record per task; a redelivered LabelsFinalized writes the
same record again. Records are small (counts, not labels): a report sums them.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from shared.quality.agreement import ClipAgreement
from shared.quality.gold import GoldCounts
from shared.quality.workers import WorkerIdentity
from shared.storage import S3Store

if TYPE_CHECKING:
    from shared.aws import AwsClients

RECORDS_PREFIX = "quality/records/"


class LevelWork(BaseModel):
    """One job's output of the task and who made it."""

    model_config = ConfigDict(extra="forbid")

    job: str
    level: int
    adjusts: str | None = None
    worker: WorkerIdentity | None = None


class GoldResult(BaseModel):
    """One job's labels of a gold copy against the gold clip's truth."""

    model_config = ConfigDict(extra="forbid")

    job: str
    gold_clip_id: str
    per_class: dict[str, GoldCounts] = Field(default_factory=dict)


class QualityRecord(BaseModel):
    model_config = ConfigDict(extra="forbid")

    task_id: str
    clip_id: str
    workflow: str
    finalized_at: AwareDatetime
    gold: bool = False
    levels: list[LevelWork] = Field(default_factory=list)
    agreement: list[ClipAgreement] = Field(default_factory=list)
    gold_results: list[GoldResult] = Field(default_factory=list)

    def worker_of(self, job: str) -> WorkerIdentity | None:
        return next((w.worker for w in self.levels if w.job == job), None)


def record_key(record: QualityRecord) -> str:
    day = record.finalized_at.astimezone(UTC).date().isoformat()
    return f"{RECORDS_PREFIX}{day}/{record.task_id}.json"


class QualityRecords:
    """The records in the namespace's bucket."""

    def __init__(self, aws: AwsClients, bucket: str) -> None:
        self.aws = aws
        self.bucket = bucket
        self.store = S3Store(aws)

    async def put(self, record: QualityRecord) -> None:
        await self.store.put_bytes(
            self.bucket, record_key(record), record.model_dump_json().encode()
        )

    async def between(self, since: datetime, until: datetime) -> AsyncIterator[QualityRecord]:
        """Records finalized in [since, until), read day by day."""
        s3 = await self.aws.s3()
        day: date = since.astimezone(UTC).date()
        while day <= until.astimezone(UTC).date():
            paginator = s3.get_paginator("list_objects_v2")
            async for page in paginator.paginate(
                Bucket=self.bucket, Prefix=f"{RECORDS_PREFIX}{day}/"
            ):
                for item in page.get("Contents", []):
                    raw = await self.store.get_bytes(self.bucket, str(item["Key"]))
                    record = QualityRecord.model_validate(json.loads(raw))
                    if since <= record.finalized_at < until:
                        yield record
            day += timedelta(days=1)
