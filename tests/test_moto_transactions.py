"""The server's item-level transaction rollback answers exactly what moto's table copies do.

A differential test: one random sequence of TransactWriteItems (Put, Update, Delete,
ConditionCheck; conditions that hold and fail, the same item twice, an ADD to a string that
fails while applying) runs once with moto's own rollback (a deep copy of each table named) and
once with :mod:`devstack.moto_transactions`; after every transaction the outcome (committed, or
the error and its cancellation reasons), every item, and each partition's Query and the sparse
index's Query (kept by :mod:`devstack.moto_indexes`) must be identical.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from devstack import moto_indexes, moto_transactions

SEEDS = [1, 2]
STEPS = 80
CHECK_EVERY = 4
PKS = ["task#1", "task#2", "task#3", "counters"]
SKS = ["task", "obj#1", "obj#2"]


@pytest.fixture(autouse=True)
def patched() -> Iterator[None]:
    indexes = moto_indexes.install()
    transactions = moto_transactions.install()
    try:
        yield
    finally:
        if transactions:
            moto_transactions.uninstall()
        if indexes:
            moto_indexes.uninstall()


def _client() -> Any:
    client = boto3.client("dynamodb", region_name="us-east-1")
    client.create_table(
        TableName="tasks",
        KeySchema=[
            {"AttributeName": "pk", "KeyType": "HASH"},
            {"AttributeName": "sk", "KeyType": "RANGE"},
        ],
        AttributeDefinitions=[
            {"AttributeName": n, "AttributeType": t}
            for n, t in (("pk", "S"), ("sk", "S"), ("due_kind", "S"), ("due_at", "N"))
        ],
        GlobalSecondaryIndexes=[
            {
                "IndexName": "by-due",
                "KeySchema": [
                    {"AttributeName": "due_kind", "KeyType": "HASH"},
                    {"AttributeName": "due_at", "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "ALL"},
            }
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    return client


def _op(rng: random.Random, key: dict[str, Any]) -> dict[str, Any]:
    kind = rng.choice(["Put", "Put", "Update", "Update", "Delete", "ConditionCheck"])
    condition: dict[str, Any] = {}
    rev = str(rng.randint(0, 3))
    if rng.random() < 0.4:
        condition = rng.choice(
            [
                {"ConditionExpression": "attribute_not_exists(pk)"},
                {"ConditionExpression": "attribute_exists(pk)"},
                {
                    "ConditionExpression": "rev = :r",
                    "ExpressionAttributeValues": {":r": {"N": rev}},
                },
            ]
        )
    if kind == "ConditionCheck" and not condition:
        condition = {"ConditionExpression": "attribute_exists(pk)"}
    base = {"TableName": "tasks", **condition}
    if kind == "Put":
        item = {**key, "rev": {"N": str(rng.randint(0, 3))}, "note": {"S": "p"}}
        if rng.random() < 0.5:  # enters the sparse index
            item |= {"due_kind": {"S": "object"}, "due_at": {"N": str(rng.randint(0, 9))}}
        return {"Put": {**base, "Item": item}}
    if kind == "Update":
        values = dict(base.get("ExpressionAttributeValues", {})) | {":one": {"N": "1"}}
        if rng.random() < 0.1:  # fails while applying: ADD to a string
            expression = "ADD note :one"
        else:
            values |= {":due": {"N": str(rng.randint(0, 9))}, ":k": {"S": "object"}}
            expression = "SET due_kind = :k, due_at = :due ADD rev :one"
        update = {"Key": key, "UpdateExpression": expression, "ExpressionAttributeValues": values}
        return {"Update": {**base, **update}}
    return {kind: {**base, "Key": key}}


def _transaction(rng: random.Random) -> tuple[list[dict[str, Any]], set[str]]:
    """The items, and what in them should fail (``same item``, ``applying``)."""
    keys = [
        {"pk": {"S": rng.choice(PKS)}, "sk": {"S": rng.choice(SKS)}}
        for _ in range(rng.randint(1, 4))
    ]
    unique = {(k["pk"]["S"], k["sk"]["S"]): k for k in keys}
    keys = list(unique.values())
    if rng.random() < 0.08:  # now and then the same item twice
        keys.append(dict(keys[0]))
    items = [_op(rng, key) for key in keys]
    tags = {"same item"} if len(unique) < len(keys) else set()
    if any("ADD note" in str(i.get("Update", {}).get("UpdateExpression")) for i in items):
        tags.add("applying")
    return items, tags


def _outcome(client: Any, items: list[dict[str, Any]]) -> tuple[str, ...]:
    try:
        client.transact_write_items(TransactItems=items)
    except ClientError as exc:
        reasons = exc.response.get("CancellationReasons") or []
        return (exc.response["Error"]["Code"], *(str(r.get("Code")) for r in reasons))
    return ("committed",)


def _state(client: Any) -> list[Any]:
    items = client.scan(TableName="tasks")["Items"]
    seen: list[Any] = [sorted(repr(sorted(i.items())) for i in items)]
    for pk in PKS:
        page = client.query(
            TableName="tasks",
            KeyConditionExpression="pk = :p",
            ExpressionAttributeValues={":p": {"S": pk}},
        )
        seen.append([repr(sorted(i.items())) for i in page["Items"]])
    due = client.query(
        TableName="tasks",
        IndexName="by-due",
        KeyConditionExpression="due_kind = :k",
        ExpressionAttributeValues={":k": {"S": "object"}},
    )
    seen.append([repr(sorted(i.items())) for i in due["Items"]])
    return seen


def _run(seed: int) -> tuple[list[Any], set[str]]:
    """Every outcome and state; what failed the refused transactions."""
    rng = random.Random(seed)
    trace: list[Any] = []
    refused: set[str] = set()
    with mock_aws():
        client = _client()
        for _ in range(STEPS):
            items, tags = _transaction(rng)
            trace.append(_outcome(client, items))
            if trace[-1] == ("ValidationException",):
                refused |= tags
            if len(trace) % CHECK_EVERY == 0:  # a wrong restore stays wrong: seen later
                trace.append(_state(client))
        trace.append(_state(client))
    return trace, refused


@pytest.mark.parametrize("seed", SEEDS)
def test_item_rollback_matches_moto_table_copies(seed: int) -> None:
    with moto_transactions.moto_copies():
        expected, refused = _run(seed)
    actual, _ = _run(seed)
    # the sequence committed, was cancelled by conditions, and was refused both ways
    outcomes = {o[0] for o in expected if isinstance(o, tuple)}
    assert {"committed", "TransactionCanceledException"} <= outcomes
    assert refused == {"same item", "applying"}
    for step, (want, got) in enumerate(zip(expected, actual, strict=True)):
        assert got == want, f"seed {seed}, entry {step}"
