"""Dedup keys and where their data objects live: the contract between the dispatcher (which
makes keys and stores data objects) and the listener (which maps outputs back to them).

Key id: ``{task}/{attempt}-{4-char hash}/{job}/{object}``. A data object is the item
``task#<task>`` / ``obj#<level>#<job>#<object>`` of the ``<ns>-tasks`` table, listing every key
it was sent under in ``keys``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

from shared.dynamo import from_item, values
from shared.resources import TASKS

if TYPE_CHECKING:
    from shared.aws import AwsClients
    from shared.settings import ServiceSettings

# Ground Truth allows dedup key ids of up to 1024 characters.
MAX_KEY_ID = 1024


def task_pk(task_id: str) -> str:
    return f"task#{task_id}"


def object_sk(level: int, job: str, object_id: str) -> str:
    return f"obj#{level:02d}#{job}#{object_id}"


def try_tag(task_id: str, job: str, object_id: str, attempt: int) -> str:
    """The try part of a key: the attempt number (so attempts never collide) and, as in the
    original, a 4-character hash - stable for an attempt, new for the next one."""
    digest = hashlib.sha256(f"{task_id}|{job}|{object_id}|{attempt}".encode()).hexdigest()
    return f"{attempt}-{digest[:4]}"


def dedup_key_id(task_id: str, job: str, object_id: str, attempt: int) -> str:
    """Unique per attempt, identical when an attempt is re-sent (so Ground Truth
    de-duplicates the re-send)."""
    key = f"{task_id}/{try_tag(task_id, job, object_id, attempt)}/{job}/{object_id}"
    if len(key) > MAX_KEY_ID:
        raise ValueError(f"dedup key id longer than Ground Truth's {MAX_KEY_ID} characters")
    return key


@dataclass(frozen=True)
class KeyParts:
    task_id: str
    attempt_tag: str
    job: str
    object_id: str


def parse_dedup_key(key: str) -> KeyParts | None:
    parts = key.split("/")
    if len(parts) != 4 or not all(parts):
        return None
    return KeyParts(*parts)


@dataclass(frozen=True)
class KnownObject:
    task_id: str
    job: str
    object_id: str
    level: int
    # The trace the data object was sent in (W3C headers), for the output's events to continue.
    trace_context: dict[str, str] | None = None


class KeyDirectory:
    """Finds the data object a dedup key was sent for (read-only)."""

    def __init__(self, aws: AwsClients, settings: ServiceSettings) -> None:
        self._aws = aws
        self._table = settings.names.table(TASKS.name)

    async def lookup(self, key: str) -> KnownObject | None:
        parts = parse_dedup_key(key)
        if parts is None:
            return None
        db = await self._aws.dynamodb()
        found = await db.query(
            TableName=self._table,
            KeyConditionExpression="pk = :pk AND begins_with(sk, :prefix)",
            FilterExpression="job = :job AND object_id = :object AND contains(#keys, :key)",
            ExpressionAttributeNames={"#keys": "keys"},
            ExpressionAttributeValues=values(
                pk=task_pk(parts.task_id),
                prefix="obj#",
                job=parts.job,
                object=parts.object_id,
                key=key,
            ),
            ConsistentRead=True,
        )
        for item in found.get("Items", []):
            data = from_item(item)
            return KnownObject(
                parts.task_id,
                parts.job,
                parts.object_id,
                int(data["level"]),
                trace_headers(data.get("trace_context")),
            )
        return None


def trace_headers(value: object) -> dict[str, str] | None:
    """A trace context as stored or carried, if it is one (text headers only; anything else
    is ignored)."""
    if not isinstance(value, dict):
        return None
    found = {k: v for k, v in value.items() if isinstance(k, str) and isinstance(v, str)}
    return found or None
