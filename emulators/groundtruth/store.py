"""The emulator's memory of tasks, in DynamoDB, so a restarted emulator resumes its work.

One item per (job, dedup key). Creating it is conditional: a key already present is a
duplicate, ignored whatever its content - Ground Truth's de-duplication. Open tasks carry the
time they are due (labeled or expired) in a (status, due_at) index.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from shared.dynamo import conditional, items, to_item, values
from shared.resources import GT_EMULATOR_TASKS

if TYPE_CHECKING:
    from emulators.settings import EmulatorSettings
    from shared.aws import AwsClients

Fate = Literal["label", "expire"]


@dataclass(frozen=True)
class EmulatedTask:
    gt_name: str
    dedup_id: str
    source_ref: str
    message: dict[str, Any]
    fate: Fate
    due_at: float
    created_at: float
    status: str = "open"

    @property
    def pk(self) -> str:
        return f"{self.gt_name}#{self.dedup_id}"

    def to_item(self) -> dict[str, Any]:
        return to_item(
            {
                "pk": self.pk,
                "gt_name": self.gt_name,
                "dedup_id": self.dedup_id,
                "source_ref": self.source_ref,
                "message": json.dumps(self.message),
                "fate": self.fate,
                "due_at": self.due_at,
                "created_at": self.created_at,
                "status": self.status,
            }
        )

    @staticmethod
    def from_record(data: dict[str, Any]) -> EmulatedTask:
        """From a deserialized item."""
        return EmulatedTask(
            gt_name=data["gt_name"],
            dedup_id=data["dedup_id"],
            source_ref=data["source_ref"],
            message=json.loads(data["message"]),
            fate=data["fate"],
            due_at=float(data["due_at"]),
            created_at=float(data["created_at"]),
            status=data["status"],
        )


class EmulatedTaskStore:
    def __init__(self, aws: AwsClients, settings: EmulatorSettings) -> None:
        self._aws = aws
        self._table = settings.names.table(GT_EMULATOR_TASKS.name)

    async def open(self, task: EmulatedTask) -> bool:
        """Record a new task; False if its key was seen before (a duplicate)."""
        db = await self._aws.dynamodb()
        return await conditional(
            db.put_item(
                TableName=self._table,
                Item=task.to_item(),
                ConditionExpression="attribute_not_exists(pk)",
            )
        )

    async def close(self, task: EmulatedTask, status: str) -> bool:
        """Mark an open task labeled/expired; False if it was not open any more."""
        db = await self._aws.dynamodb()
        return await conditional(
            db.update_item(
                TableName=self._table,
                Key={"pk": {"S": task.pk}},
                UpdateExpression="SET #s = :new REMOVE due_at",
                ConditionExpression="#s = :open",
                ExpressionAttributeNames={"#s": "status"},
                ExpressionAttributeValues=values(new=status, open="open"),
            )
        )

    async def open_tasks(self, gt_name: str) -> list[EmulatedTask]:
        db = await self._aws.dynamodb()
        found = items(
            db,
            "query",
            TableName=self._table,
            IndexName="by-status-due",
            KeyConditionExpression="#s = :open",
            FilterExpression="gt_name = :job",
            ExpressionAttributeNames={"#s": "status"},
            ExpressionAttributeValues=values(open="open", job=gt_name),
        )
        return [EmulatedTask.from_record(data) async for data in found]
