"""The DynamoDB helpers against moto: conditional writes and paginated reads."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any

import pytest
from botocore.exceptions import ClientError

from shared.aws import AwsClients
from shared.dynamo import conditional, items, to_item
from shared.settings import Settings

pytestmark = pytest.mark.integration


async def test_conditional_is_false_on_a_failed_condition_and_raises_otherwise(
    aws: AwsClients, settings: Settings
) -> None:
    db = await aws.dynamodb()
    table = settings.names.table("processed-events")

    def put_new(pk: str) -> Awaitable[Any]:
        return db.put_item(
            TableName=table,
            Item=to_item({"pk": pk, "n": 1.5}),
            ConditionExpression="attribute_not_exists(pk)",
        )

    assert await conditional(put_new("a")) is True
    assert await conditional(put_new("a")) is False
    with pytest.raises(ClientError):
        await conditional(db.put_item(TableName=f"{table}-missing", Item=to_item({"pk": "a"})))


async def test_items_reads_every_page_deserialized(aws: AwsClients, settings: Settings) -> None:
    db = await aws.dynamodb()
    table = settings.names.table("processed-events")
    for i in range(7):
        await db.put_item(TableName=table, Item=to_item({"pk": f"k{i}", "n": i, "x": 0.5}))
    found = [item async for item in items(db, "scan", TableName=table, Limit=2)]
    assert sorted(item["pk"] for item in found) == [f"k{i}" for i in range(7)]
    assert {type(item["n"]) for item in found} == {int}
    assert {item["x"] for item in found} == {0.5}
