"""DynamoDB item (de)serialization (shared/dynamo_values.py: boto3's conversions, without boto3).

Floats go in as Decimal (DynamoDB has no float type) and come out as int when integral,
float otherwise, so items read back as plain JSON-friendly Python values.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable
from decimal import Decimal
from typing import Any

from botocore.exceptions import ClientError

from shared import dynamo_values
from shared.aws import error_code


def _to_dynamo(value: Any) -> Any:
    if isinstance(value, float):
        return Decimal(repr(value))
    if isinstance(value, dict):
        return {k: _to_dynamo(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_to_dynamo(v) for v in value]
    return value


def _from_dynamo(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: _from_dynamo(v) for k, v in value.items()}
    if isinstance(value, (list, set)):
        return [_from_dynamo(v) for v in value]
    return value


def serialize(value: Any) -> Any:
    """One Python value as a DynamoDB AttributeValue."""
    return dynamo_values.serialize(_to_dynamo(value))


def to_item(data: dict[str, Any]) -> dict[str, Any]:
    """A dict as a DynamoDB item; ``None`` values are left out (DynamoDB has no null keys)."""
    return {k: serialize(v) for k, v in data.items() if v is not None}


def from_item(item: dict[str, Any]) -> dict[str, Any]:
    return {k: _from_dynamo(dynamo_values.deserialize(v)) for k, v in item.items()}


def values(**named: Any) -> dict[str, Any]:
    """ExpressionAttributeValues from keyword arguments: ``values(now=3)`` -> ``{":now": ...}``."""
    return {f":{k}": serialize(v) for k, v in named.items()}


def is_condition_failure(exc: BaseException) -> bool:
    return error_code(exc) == "ConditionalCheckFailedException"


async def conditional(write: Awaitable[Any]) -> bool:
    """Await a conditional write; False when its condition did not hold (other errors raise).

    The project's state moves by conditional writes, and a failed condition means "someone
    got there first", which callers treat as already done - not as an error.
    """
    try:
        await write
    except ClientError as exc:
        if is_condition_failure(exc):
            return False
        raise
    return True


async def items(db: Any, operation: str, **request: Any) -> AsyncIterator[dict[str, Any]]:
    """Every item a Query or Scan returns, page after page, deserialized."""
    paginator = db.get_paginator(operation)
    async for page in paginator.paginate(**request):
        for item in page.get("Items", []):
            yield from_item(item)
