"""The emulator's key-ordered Query answers exactly what moto's own table walk answers.

A differential test: random writes through every write path moto has (PutItem, UpdateItem,
DeleteItem, BatchWriteItem, TransactWriteItems - some rolled back - and an index added by
UpdateTable), with items entering and leaving sparse indexes, keys changing and equal sort
values; after every few writes each query form (every range condition, both directions, Limit,
paging to the end, FilterExpression, projections, Select COUNT) is asked once through the
windows and once through moto's walk, and every page must be identical.

More seeds: ``MOTO_INDEX_SEEDS=11,12,13 pytest tests/test_moto_indexes.py``.
"""

from __future__ import annotations

import os
import random
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws
from moto.dynamodb.models.table import Table

from devstack.moto_indexes import install, moto_walks, uninstall

SEEDS = [int(s) for s in os.environ.get("MOTO_INDEX_SEEDS", "1,2,3").split(",")]
STEPS = 200
CHECK_EVERY = 50

# Equal numbers spelled differently (2.5, 2.50) sort as ties, as DynamoDB's do.
DUE = ["-3", "0", "1", "2.5", "2.50", "4", "7", "7", "10"]
KINDS = ["object", "task"]
STATUSES = ["task#active", "task#failed", "task#completed"]
SORTS = ["task", "obj#01#a#0", "obj#01#a#1", "obj#01#b#0", "obj#02#a#0", "clip", "hour#2024"]
PKS = [f"task#{i}" for i in range(12)] + ["counters"]


def _attrs(names: dict[str, str]) -> list[dict[str, str]]:
    return [{"AttributeName": name, "AttributeType": kind} for name, kind in names.items()]


def _index(name: str, hash_key: str, range_key: str | None, projection: Any) -> dict[str, Any]:
    schema = [{"AttributeName": hash_key, "KeyType": "HASH"}]
    if range_key:
        schema.append({"AttributeName": range_key, "KeyType": "RANGE"})
    return {"IndexName": name, "KeySchema": schema, "Projection": projection}


ALL = {"ProjectionType": "ALL"}
KEYS_ONLY = {"ProjectionType": "KEYS_ONLY"}
INCLUDE = {"ProjectionType": "INCLUDE", "NonKeyAttributes": ["note"]}


@pytest.fixture
def db() -> Iterator[Any]:
    installed = install()  # False: this process's moto has them already (memory_aws)
    try:
        with mock_aws():
            client = boto3.client("dynamodb", region_name="us-east-1")
            client.create_table(
                TableName="tasks",
                KeySchema=[
                    {"AttributeName": "pk", "KeyType": "HASH"},
                    {"AttributeName": "sk", "KeyType": "RANGE"},
                ],
                AttributeDefinitions=_attrs(
                    {
                        "pk": "S",
                        "sk": "S",
                        "due_kind": "S",
                        "due_at": "N",
                        "status_key": "S",
                        "updated_at": "N",
                        "kind": "S",
                        "ordinal": "N",
                    }
                ),
                GlobalSecondaryIndexes=[
                    _index("by-due", "due_kind", "due_at", ALL),
                    _index("by-status", "status_key", "updated_at", KEYS_ONLY),
                    _index("by-kind", "kind", "sk", INCLUDE),  # a string range: begins_with
                    _index("kind-only", "kind", None, ALL),  # no range key
                ],
                LocalSecondaryIndexes=[_index("by-ordinal", "pk", "ordinal", ALL)],
                BillingMode="PAY_PER_REQUEST",
            )
            client.create_table(
                TableName="flat",  # hash key only (the Ground Truth emulator's table)
                KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                AttributeDefinitions=_attrs({"pk": "S", "status_key": "S", "due_at": "N"}),
                GlobalSecondaryIndexes=[
                    _index("by-status-due", "status_key", "due_at", ALL),
                    _index("status-only", "status_key", None, KEYS_ONLY),
                ],
                BillingMode="PAY_PER_REQUEST",
            )
            yield client
    finally:
        if installed:
            uninstall()


def _random_item(rng: random.Random, table: str) -> dict[str, Any]:
    item: dict[str, Any] = {"pk": {"S": rng.choice(PKS)}, "note": {"S": rng.choice("xyz")}}
    if table == "tasks":
        item["sk"] = {"S": rng.choice(SORTS)}
        if rng.random() < 0.6:
            item["due_kind"] = {"S": rng.choice(KINDS)}
        if rng.random() < 0.7:  # sometimes due_at without due_kind: still not in by-due
            item["due_at"] = {"N": rng.choice(DUE)}
        if rng.random() < 0.6:
            item["status_key"] = {"S": rng.choice(STATUSES)}
            item["updated_at"] = {"N": rng.choice(DUE)}
        if rng.random() < 0.5:
            item["kind"] = {"S": rng.choice(["task", "obj", "clip"])}
        if rng.random() < 0.5:
            item["ordinal"] = {"N": rng.choice(DUE)}
    else:
        if rng.random() < 0.7:
            item["status_key"] = {"S": rng.choice(STATUSES)}
        if rng.random() < 0.7:
            item["due_at"] = {"N": rng.choice(DUE)}
    return item


def _key(item: dict[str, Any], table: str) -> dict[str, Any]:
    return {name: item[name] for name in (("pk", "sk") if table == "tasks" else ("pk",))}


def _random_update(rng: random.Random, table: str) -> dict[str, Any]:
    """An UpdateItem that moves the item into, out of or within the indexes."""
    key = _key(_random_item(rng, table), table)
    sets = {"note": rng.choice("xyz")}
    removes: list[str] = []
    for name, choices in (
        ("due_kind", KINDS),
        ("due_at", DUE),
        ("status_key", STATUSES),
        ("updated_at", DUE),
        ("kind", ["task", "obj"]),
        ("ordinal", DUE),
    ):
        if table == "flat" and name not in ("status_key", "due_at"):
            continue
        roll = rng.random()
        if roll < 0.3:
            sets[name] = rng.choice(choices)
        elif roll < 0.45:
            removes.append(name)
    names = {f"#{n}": n for n in [*sets, *removes]}
    expression = "SET " + ", ".join(f"#{n} = :{n}" for n in sets)
    if removes:
        expression += " REMOVE " + ", ".join(f"#{n}" for n in removes)
    values = {
        f":{n}": ({"N": v} if n in ("due_at", "updated_at", "ordinal") else {"S": v})
        for n, v in sets.items()
    }
    request: dict[str, Any] = {
        "TableName": table,
        "Key": key,
        "UpdateExpression": expression,
        "ExpressionAttributeNames": names,
        "ExpressionAttributeValues": values,
    }
    if rng.random() < 0.3:  # sometimes only if it exists: a failed condition changes nothing
        request["ConditionExpression"] = "attribute_exists(pk)"
    return request


def _write(db: Any, rng: random.Random) -> None:
    table = rng.choice(["tasks", "tasks", "flat"])
    roll = rng.random()
    try:
        if roll < 0.35:
            db.put_item(TableName=table, Item=_random_item(rng, table))
        elif roll < 0.65:
            db.update_item(**_random_update(rng, table))
        elif roll < 0.8:
            db.delete_item(TableName=table, Key=_key(_random_item(rng, table), table))
        elif roll < 0.9:
            _batch(db, rng, table)
        else:
            _transaction(db, rng, table)
    except db.exceptions.ConditionalCheckFailedException:
        pass
    except db.exceptions.TransactionCanceledException:
        pass


def _batch(db: Any, rng: random.Random, table: str) -> None:
    seen: set[str] = set()
    requests: list[dict[str, Any]] = []
    for _ in range(rng.randint(1, 6)):
        item = _random_item(rng, table)
        key = _key(item, table)
        if str(key) in seen:
            continue  # a batch names each key once
        seen.add(str(key))
        if rng.random() < 0.7:
            requests.append({"PutRequest": {"Item": item}})
        else:
            requests.append({"DeleteRequest": {"Key": key}})
    db.batch_write_item(RequestItems={table: requests})


def _transaction(db: Any, rng: random.Random, table: str) -> None:
    seen: set[str] = set()
    actions: list[dict[str, Any]] = []
    for _ in range(rng.randint(1, 4)):
        item = _random_item(rng, table)
        key = _key(item, table)
        if str(key) in seen:
            continue
        seen.add(str(key))
        roll = rng.random()
        if roll < 0.4:
            actions.append({"Put": {"TableName": table, "Item": item}})
        elif roll < 0.7:
            update = _random_update(rng, table)
            update["Key"] = key
            actions.append({"Update": update})
        elif roll < 0.85:
            actions.append({"Delete": {"TableName": table, "Key": key}})
        else:  # fails sometimes: the whole transaction rolls back
            actions.append(
                {
                    "ConditionCheck": {
                        "TableName": table,
                        "Key": key,
                        "ConditionExpression": "attribute_exists(pk)",
                    }
                }
            )
    db.transact_write_items(TransactItems=actions)


# --- the queries --------------------------------------------------------------------------------
def _order(value: dict[str, str]) -> tuple[float, str]:
    return (float(value["N"]), "") if "N" in value else (0.0, value["S"])


def _range_conditions(name: str, values: list[dict[str, str]]) -> list[tuple[str, dict[str, Any]]]:
    """(key condition on ``name``, its values) for every range operator DynamoDB allows."""
    low, high = sorted(values[:2], key=_order)
    out = [(f"{name} {op} :a", {":a": low}) for op in ("=", "<", "<=", ">", ">=")]
    out.append((f"{name} BETWEEN :a AND :b", {":a": low, ":b": high}))
    if "S" in low:
        out.append((f"begins_with({name}, :a)", {":a": {"S": low["S"][:5]}}))
    return out


def _forms(rng: random.Random) -> Iterator[dict[str, Any]]:
    """Query requests: each key space x hash value x range condition, directions, limits."""
    spaces: list[tuple[str, str | None, str, list[str], str | None, list[dict[str, str]]]] = [
        ("tasks", None, "pk", PKS, "sk", [{"S": s} for s in SORTS]),
        ("tasks", "by-due", "due_kind", KINDS, "due_at", [{"N": n} for n in DUE]),
        ("tasks", "by-status", "status_key", STATUSES, "updated_at", [{"N": n} for n in DUE]),
        ("tasks", "by-kind", "kind", ["task", "obj", "clip"], "sk", [{"S": s} for s in SORTS]),
        ("tasks", "kind-only", "kind", ["task", "obj"], None, []),
        ("tasks", "by-ordinal", "pk", PKS[:4], "ordinal", [{"N": n} for n in DUE]),
        ("flat", None, "pk", PKS[:3], None, []),
        ("flat", "by-status-due", "status_key", STATUSES, "due_at", [{"N": n} for n in DUE]),
        ("flat", "status-only", "status_key", STATUSES, None, []),
    ]
    for table, index, hash_name, hashes, range_name, range_values in spaces:
        for hash_value in rng.sample(hashes, min(2, len(hashes))):
            conditions: list[tuple[str, dict[str, Any]]] = [("", {})]
            if range_name:
                conditions += _range_conditions(range_name, rng.sample(range_values, 2))
            for extra, extra_values in conditions:
                expression = "#h = :h" + (f" AND {extra}" if extra else "")
                request: dict[str, Any] = {
                    "TableName": table,
                    "KeyConditionExpression": expression,
                    "ExpressionAttributeNames": {"#h": hash_name},
                    "ExpressionAttributeValues": {":h": {"S": hash_value}, **extra_values},
                    "ScanIndexForward": rng.random() < 0.5,
                }
                if index:
                    request["IndexName"] = index
                limit = rng.choice([None, 1, 2, 3, 7])
                if limit:
                    request["Limit"] = limit
                yield request
                yield _varied(request, rng, index)


def _varied(request: dict[str, Any], rng: random.Random, index: str | None) -> dict[str, Any]:
    """The same request with a filter, a projection or Select COUNT."""
    varied = {**request, "ExpressionAttributeNames": dict(request["ExpressionAttributeNames"])}
    varied["ExpressionAttributeValues"] = dict(request["ExpressionAttributeValues"])
    roll = rng.random()
    if roll < 0.4:
        varied["FilterExpression"] = "#n = :n"
        varied["ExpressionAttributeNames"]["#n"] = "note"
        varied["ExpressionAttributeValues"][":n"] = {"S": rng.choice("xyz")}
    elif roll < 0.7 and index not in ("by-status", "status-only"):
        varied["ProjectionExpression"] = "pk, #n"
        varied["ExpressionAttributeNames"]["#n"] = "note"
    else:
        varied["Select"] = "COUNT"
    return varied


def _pages(db: Any, request: dict[str, Any]) -> list[dict[str, Any]]:
    """Every page of a query, to the end (LastEvaluatedKey by LastEvaluatedKey)."""
    pages: list[dict[str, Any]] = []
    request = dict(request)
    while len(pages) < 200:
        answer = db.query(**request)
        answer.pop("ResponseMetadata", None)
        pages.append(answer)
        if "LastEvaluatedKey" not in answer:
            return pages
        request["ExclusiveStartKey"] = answer["LastEvaluatedKey"]
    raise AssertionError(f"paging did not end: {request}")


def _same_answers(db: Any, rng: random.Random) -> int:
    asked = 0
    for request in _forms(rng):
        with moto_walks():
            expected = _pages(db, request)
        assert _pages(db, request) == expected, request
        asked += 1
    return asked


@pytest.mark.parametrize("seed", SEEDS)
def test_every_query_form_answers_as_moto_walking_the_table(db: Any, seed: int) -> None:
    rng = random.Random(seed)
    asked = 0
    for step in range(1, STEPS + 1):
        _write(db, rng)
        if step % CHECK_EVERY == 0:
            asked += _same_answers(db, rng)
        if step == STEPS // 2:  # a new index on a table with items: rebuilt, then kept in step
            db.update_table(
                TableName="tasks",
                AttributeDefinitions=_attrs({"note": "S", "due_at": "N"}),
                GlobalSecondaryIndexUpdates=[
                    {"Create": _index("by-note", "note", "due_at", ALL)},
                ],
            )
    for note in "xyz":
        request = {
            "TableName": "tasks",
            "IndexName": "by-note",
            "KeyConditionExpression": "note = :n AND due_at >= :d",
            "ExpressionAttributeValues": {":n": {"S": note}, ":d": {"N": "1"}},
            "Limit": 2,
        }
        with moto_walks():
            expected = _pages(db, request)
        assert _pages(db, request) == expected
    assert asked > 500


def test_a_query_reads_its_partition_not_the_table(
    db: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    for i in range(50):
        db.put_item(
            TableName="tasks",
            Item={
                "pk": {"S": f"task#{i}"},
                "sk": {"S": "task"},
                "due_kind": {"S": "object"},
                "due_at": {"N": str(i)},
            },
        )
    db.query(
        TableName="tasks",
        KeyConditionExpression="pk = :p",
        ExpressionAttributeValues={":p": {"S": "task#1"}},
    )  # builds the partitions

    def walk(self: Table) -> None:
        raise AssertionError("the whole table was walked")

    monkeypatch.setattr(Table, "all_items", walk)
    found = db.query(
        TableName="tasks",
        IndexName="by-due",
        KeyConditionExpression="due_kind = :k AND due_at <= :n",
        ExpressionAttributeValues={":k": {"S": "object"}, ":n": {"N": "30"}},
        Limit=5,
        ScanIndexForward=False,
    )
    assert [i["due_at"]["N"] for i in found["Items"]] == ["30", "29", "28", "27", "26"]
    assert found["LastEvaluatedKey"]["due_at"] == {"N": "26"}
    got = db.query(
        TableName="tasks",
        KeyConditionExpression="pk = :p AND begins_with(sk, :s)",
        ExpressionAttributeValues={":p": {"S": "task#7"}, ":s": {"S": "ta"}},
    )
    assert got["Count"] == 1
