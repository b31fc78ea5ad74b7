"""Dataset exports as records in DynamoDB (``<ns>-dataset-exports``), moved by conditional writes.

An export is ``queued`` when requested, ``running`` while a control replica holds its lease,
then ``completed`` (files and counts) or ``failed`` (the reason). Every change is conditional:

- **create** only if no export has the id (a repeated request gets the first record back);
- **claim** only while unfinished and no lease is held (``lease_until`` passed): it takes the
  lease for one replica and numbers the attempt, so two replicas never run it at once;
- **renew**, **complete**, **fail** and **release** only by the holder of that attempt: a
  replica that lost its lease (paused, partitioned) cannot overwrite the outcome of the attempt
  that took over. Completing is the commit point: the files are written before it.

Unfinished records carry ``claimable`` + ``lease_until`` (the sparse ``by-lease`` index), so a
replica finds what needs a runner without reading finished exports.
"""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError
from pydantic import BaseModel, Field

from shared.dataset.exports import ExportFormat
from shared.dynamo import conditional, from_item, is_condition_failure, to_item, values
from shared.resources import DATASET_EXPORTS

if TYPE_CHECKING:
    from shared.aws import AwsClients
    from shared.settings import ServiceSettings

CLAIMABLE = "export"
# Attribute names DynamoDB reserves (status, owner...) are always written as #names.
NAMES = {f"#{n}": n for n in ("status", "owner", "attempt", "claimable", "lease_until")}


def names(*expressions: str) -> dict[str, str]:
    """The #names these expressions use (DynamoDB refuses a request naming unused ones)."""
    text = " ".join(expressions)
    return {k: v for k, v in NAMES.items() if k in text}


class ExportStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"


class DatasetExport(BaseModel):
    export_id: str
    format: ExportFormat
    where: dict[str, str] = Field(description="The attribute filter, as validated.")
    status: ExportStatus
    requested_by: str
    requested_at: float
    attempt: int = Field(0, description="Runs started so far (a restart starts another).")
    owner: str | None = Field(None, description="The control replica running it now.")
    lease_until: float | None = None
    started_at: float | None = None
    finished_at: float | None = None
    clips: int | None = None
    frames: int | None = None
    annotations: int | None = Field(None, description="BDD100K labels, COCO annotations, MOT rows.")
    files: list[str] = Field(default_factory=list, description="S3 URIs of the files written.")
    failure_reason: str | None = None


class ExportStore:
    def __init__(self, aws: AwsClients, settings: ServiceSettings) -> None:
        self._aws = aws
        self.table = settings.names.table(DATASET_EXPORTS.name)

    async def create(self, export: DatasetExport) -> tuple[DatasetExport, bool]:
        """Record a queued export; if the id exists, that record and False."""
        db = await self._aws.dynamodb()
        item = {
            **export.model_dump(mode="json"),
            "claimable": CLAIMABLE,
            "lease_until": export.requested_at,  # claimable at once
        }
        created = await conditional(
            db.put_item(
                TableName=self.table,
                Item=to_item(item),
                ConditionExpression="attribute_not_exists(export_id)",
            )
        )
        if created:
            return export, True
        existing = await self.get(export.export_id)
        assert existing is not None  # records are never deleted
        return existing, False

    async def get(self, export_id: str) -> DatasetExport | None:
        db = await self._aws.dynamodb()
        found = await db.get_item(
            TableName=self.table, Key={"export_id": {"S": export_id}}, ConsistentRead=True
        )
        item = found.get("Item")
        return DatasetExport.model_validate(from_item(item)) if item else None

    async def claimable(self, now: float, limit: int = 25) -> list[DatasetExport]:
        """Unfinished exports whose lease has run out (or was never taken)."""
        db = await self._aws.dynamodb()
        condition = "#claimable = :c AND #lease_until <= :now"
        found = await db.query(
            TableName=self.table,
            IndexName="by-lease",
            KeyConditionExpression=condition,
            ExpressionAttributeNames=names(condition),
            ExpressionAttributeValues=values(c=CLAIMABLE, now=now),
            Limit=limit,
        )
        return [DatasetExport.model_validate(from_item(i)) for i in found.get("Items", [])]

    async def claim(
        self, export_id: str, owner: str, now: float, lease_seconds: float, max_attempts: int
    ) -> DatasetExport | None:
        """Take the lease for a new attempt; None when someone holds it, it is finished, or
        its attempts are used up (``give_up`` ends those)."""
        found = await self._update(
            export_id,
            "SET #status = :running, #owner = :owner, #lease_until = :until, started_at = :now "
            "ADD #attempt :one",
            "#claimable = :c AND #lease_until <= :now AND #attempt < :max",
            running=ExportStatus.RUNNING.value,
            owner=owner,
            until=now + lease_seconds,
            now=now,
            one=1,
            c=CLAIMABLE,
            max=max_attempts,
        )
        return None if found is None else DatasetExport.model_validate(found)

    async def give_up(self, export_id: str, now: float, max_attempts: int) -> bool:
        """End as failed an export whose every attempt was interrupted (its runners stopped
        without finishing: killed, evicted, out of memory) and whose last lease ran out."""
        found = await self._update(
            export_id,
            "SET #status = :failed, finished_at = :now, failure_reason = :reason "
            "REMOVE #claimable, #lease_until, #owner",
            "#claimable = :c AND #lease_until <= :now AND #attempt >= :max",
            failed=ExportStatus.FAILED.value,
            now=now,
            reason=f"interrupted {max_attempts} times (its control replica stopped before it "
            "finished each time); request it again to retry",
            c=CLAIMABLE,
            max=max_attempts,
        )
        return found is not None

    async def renew(
        self, export_id: str, owner: str, attempt: int, now: float, lease_seconds: float
    ) -> bool:
        """Extend the lease; False: this attempt no longer holds it."""
        return await self._by_holder(
            export_id, owner, attempt, "SET #lease_until = :until", until=now + lease_seconds
        )

    async def complete(
        self,
        export_id: str,
        owner: str,
        attempt: int,
        now: float,
        files: list[str],
        clips: int,
        frames: int,
        annotations: int,
    ) -> bool:
        return await self._by_holder(
            export_id,
            owner,
            attempt,
            "SET #status = :done, finished_at = :now, files = :files, clips = :clips, "
            "frames = :frames, annotations = :annotations REMOVE #claimable, #lease_until",
            done=ExportStatus.COMPLETED.value,
            now=now,
            files=files,
            clips=clips,
            frames=frames,
            annotations=annotations,
        )

    async def fail(self, export_id: str, owner: str, attempt: int, now: float, reason: str) -> bool:
        return await self._by_holder(
            export_id,
            owner,
            attempt,
            "SET #status = :failed, finished_at = :now, failure_reason = :reason "
            "REMOVE #claimable, #lease_until",
            failed=ExportStatus.FAILED.value,
            now=now,
            reason=reason,
        )

    async def release(self, export_id: str, owner: str, attempt: int) -> bool:
        """Hand the export back (its replica is stopping): queued, claimable at once, and the
        attempt not counted - the export did not fail."""
        return await self._by_holder(
            export_id,
            owner,
            attempt,
            "SET #status = :queued, #lease_until = :zero REMOVE #owner ADD #attempt :minus",
            queued=ExportStatus.QUEUED.value,
            zero=0,
            minus=-1,
        )

    async def _by_holder(
        self, export_id: str, owner: str, attempt: int, update: str, **named: Any
    ) -> bool:
        found = await self._update(
            export_id,
            update,
            "#status = :running AND #owner = :holder AND #attempt = :held",
            running=ExportStatus.RUNNING.value,
            holder=owner,
            held=attempt,
            **named,
        )
        return found is not None

    async def _update(
        self, export_id: str, update: str, condition: str, **named: Any
    ) -> dict[str, Any] | None:
        """A conditional update; the record after it, or None when the condition failed."""
        db = await self._aws.dynamodb()
        try:
            answer = await db.update_item(
                TableName=self.table,
                Key={"export_id": {"S": export_id}},
                UpdateExpression=update,
                ConditionExpression=condition,
                ExpressionAttributeNames=names(update, condition),
                ExpressionAttributeValues=values(**named),
                ReturnValues="ALL_NEW",
            )
        except ClientError as exc:
            if is_condition_failure(exc):
                return None
            raise
        return from_item(answer["Attributes"])
