"""The reads the pages need beyond the API's: filtered task pages and clips by outcome.

Both go through the ``by-status`` index (``status_key``, ``updated_at``): a page costs what it
reads, whatever the table holds. Filters (a workflow, an id fragment) are DynamoDB filter
expressions, applied after the read: a filtered page reads at most ``ROUNDS`` index pages to
fill itself, and says where to go on (a cursor) when it stops short.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from services.control.cursors import decode_cursor, encode_cursor
from shared.dynamo import from_item, to_item, values
from shared.tasks.model import AnnotationTask, ClipRecord, ClipStatus, TaskStatus

if TYPE_CHECKING:
    from shared.aws import AwsClients

ROUNDS = 5
# Clips get a status_key once they have tasks: an ingesting clip is found by its id only.
LISTED_CLIP_STATUSES = tuple(s for s in ClipStatus if s is not ClipStatus.INGESTING)


@dataclass(frozen=True)
class Filters:
    status: TaskStatus = TaskStatus.ACTIVE
    workflow: str = ""
    contains: str = ""  # a fragment of the task id (the clip id is its first part)


async def _page(
    aws: AwsClients,
    table: str,
    status_key: str,
    limit: int,
    cursor: str | None,
    equals: dict[str, str] | None = None,
    contains: dict[str, str] | None = None,
) -> tuple[list[dict[str, Any]], str | None]:
    """Up to ``limit`` items of one ``status_key``, newest first, whose attributes equal
    ``equals`` and contain ``contains`` (empty values: no condition); and the cursor of the
    next page."""
    db = await aws.dynamodb()
    request: dict[str, Any] = {
        "TableName": table,
        "IndexName": "by-status",
        "KeyConditionExpression": "status_key = :s",
        "ExpressionAttributeValues": values(s=status_key),
        "ScanIndexForward": False,
    }
    conditions = [(f"#{k} = :{k}", k, v) for k, v in (equals or {}).items() if v]
    conditions += [(f"contains(#{k}, :{k})", k, v) for k, v in (contains or {}).items() if v]
    if conditions:
        request["FilterExpression"] = " AND ".join(c for c, _, _ in conditions)
        request["ExpressionAttributeNames"] = {f"#{k}": k for _, k, _ in conditions}
        request["ExpressionAttributeValues"].update(values(**{k: v for _, k, v in conditions}))
    if cursor:
        request["ExclusiveStartKey"] = to_item(decode_cursor(cursor, status_key))
    found: list[dict[str, Any]] = []
    last: dict[str, Any] | None = None
    for _ in range(ROUNDS):
        # asking for what is still missing never over-reads: the next page starts right here
        answer = await db.query(**request, Limit=limit - len(found))
        found += [from_item(i) for i in answer.get("Items", [])]
        last = answer.get("LastEvaluatedKey")
        if not last or len(found) >= limit:
            break
        request["ExclusiveStartKey"] = last
    return found, (encode_cursor(from_item(last)) if last else None)


async def tasks_page(
    aws: AwsClients, table: str, filters: Filters, limit: int, cursor: str | None
) -> tuple[list[AnnotationTask], str | None]:
    found, after = await _page(
        aws,
        table,
        f"task#{filters.status.value}",
        limit,
        cursor,
        equals={"workflow": filters.workflow},
        contains={"task_id": filters.contains},
    )
    return [AnnotationTask.model_validate(i) for i in found], after


async def clips_page(
    aws: AwsClients, table: str, status: ClipStatus, limit: int, cursor: str | None
) -> tuple[list[ClipRecord], str | None]:
    found, after = await _page(aws, table, f"clip#{status.value}", limit, cursor)
    return [ClipRecord.model_validate(i) for i in found], after
