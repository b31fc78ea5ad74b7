"""The moto server keeps what it stores, not a copy of a table per transaction (docs/soak.md).

moto tracks every model object it ever creates; TransactWriteItems deep-copies each table it
names, so each transaction left a full copy of the table alive and the soak's moto grew
quadratically. With :mod:`devstack.moto_instances` the tracked objects are the live ones. The
figures here are object counts (no RSS, no time): K transactions on a table of M items.
"""

from __future__ import annotations

import contextlib
import gc
import json
import urllib.request
from collections.abc import Iterable, Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws
from moto.dynamodb.models.dynamo_type import Item
from moto.dynamodb.models.table import Table

from devstack import moto_instances, moto_transactions
from devstack.local_stack import MotoServer

ITEMS = 30  # M
TRANSACTIONS = 40  # K


@pytest.fixture
def weak_tracking() -> Iterator[None]:
    """Weak tracking for the test, left as it was found (the in-process AWS installs it)."""
    installed = moto_instances.install()
    try:
        yield
    finally:
        if installed:
            moto_instances.uninstall()


@pytest.fixture
def moto_tracking() -> Iterator[None]:
    """moto's own tracking for the test, weak again afterwards if it was."""
    was_weak = moto_instances.uninstall()
    try:
        yield
    finally:
        if was_weak:
            moto_instances.install()


def _client(endpoint: str | None = None) -> Any:
    return boto3.client(
        "dynamodb",
        region_name="us-east-1",
        endpoint_url=endpoint,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def _fill(db: Any, table: str) -> None:
    db.create_table(
        TableName=table,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    for i in range(ITEMS - 1):
        db.put_item(TableName=table, Item={"pk": {"S": f"{table}#{i}"}, "data": {"S": "x" * 64}})


def _transactions(db: Any, table: str, count: int) -> None:
    """Like a clip's completion: an item and a counter in one transaction; every other one
    cancelled by its condition (a lost race), which rolls the table back to moto's copy."""
    for i in range(count):
        counter = {
            "TableName": table,
            "Key": {"pk": {"S": f"{table}#counter"}},
            "UpdateExpression": "ADD n :one",
            "ExpressionAttributeValues": {":one": {"N": "1"}},
        }
        if i % 2:
            counter["ConditionExpression"] = "attribute_exists(nothing)"
        item = {
            "TableName": table,
            "Key": {"pk": {"S": f"{table}#{i % (ITEMS - 1)}"}},
            "UpdateExpression": "SET seen = :i",
            "ExpressionAttributeValues": {":i": {"N": str(i)}},
        }
        with contextlib.suppress(db.exceptions.TransactionCanceledException):
            db.transact_write_items(TransactItems=[{"Update": item}, {"Update": counter}])


def _live(model: type) -> int:
    gc.collect()
    tracked: Iterable[object] = model.instances_tracked  # type: ignore[attr-defined]
    return sum(1 for _ in tracked)


def test_moto_alone_keeps_a_table_copy_per_transaction(moto_tracking: None) -> None:
    """The cause, kept as a canary: when this fails, moto stopped keeping copies and
    devstack.moto_instances can go. With moto's own rollback: the project's servers no longer
    copy tables in a transaction (devstack.moto_transactions), but a table copied elsewhere
    (moto's backups and restores) is tracked the same way."""
    with moto_transactions.moto_copies(), mock_aws():
        db = _client()
        before = _live(Item)
        _fill(db, "alone")
        _transactions(db, "alone", TRANSACTIONS)
        assert _live(Item) - before >= TRANSACTIONS * (ITEMS - 1)


def test_transactions_keep_only_the_live_items(weak_tracking: None) -> None:
    with mock_aws():
        db = _client()
        before = _live(Item)
        _fill(db, "weak")
        _transactions(db, "weak", TRANSACTIONS)
        after_k = _live(Item) - before
        _transactions(db, "weak", TRANSACTIONS)
        after_2k = _live(Item) - before
    assert after_k == after_2k == ITEMS  # the table's items (and the counter), nothing more


def test_the_dashboard_still_lists_what_moto_holds(weak_tracking: None) -> None:
    with mock_aws():
        db = _client()
        _fill(db, "listed")
        assert [t.name for t in Table.instances_tracked].count("listed") == 1  # type: ignore[attr-defined]
        db.delete_table(TableName="listed")
        gc.collect()
        assert "listed" not in [t.name for t in Table.instances_tracked]  # type: ignore[attr-defined]


def test_uninstall_gives_moto_its_lists_back(weak_tracking: None) -> None:
    with mock_aws():
        _fill(_client(), "back")
        assert moto_instances.uninstall()
        try:
            assert isinstance(Table.instances_tracked, list)  # type: ignore[attr-defined]
            _client().put_item(TableName="back", Item={"pk": {"S": "back#new"}})  # moto's path
        finally:
            moto_instances.install()


def _tracked(endpoint: str) -> dict[str, list[dict[str, Any]]]:
    """What moto's dashboard lists for DynamoDB: its tracked instances per model."""
    with urllib.request.urlopen(f"{endpoint}/moto-api/data.json", timeout=60) as response:
        found: dict[str, list[dict[str, Any]]] = json.load(response)["dynamodb"]
    return found


def test_the_moto_server_keeps_no_copies(moto_server: MotoServer, namespace: str) -> None:
    db = _client(moto_server.endpoint)
    items_before = len(_tracked(moto_server.endpoint).get("Item", []))
    _fill(db, namespace)
    _transactions(db, namespace, TRANSACTIONS)
    tracked = _tracked(moto_server.endpoint)
    tables = [t for t in tracked["Table"] if t.get("name") == namespace]
    items = len(tracked["Item"]) - items_before
    # moto alone: a table and its M items per transaction (K + 1 tables, ~K * M items); the
    # server frees copies by reference counting, a cycle may wait for its collector: not K of them
    assert len(tables) < 3, f"{len(tables)} copies of the table tracked after {TRANSACTIONS}"
    assert items < ITEMS * 3, f"{items} items tracked for a table of {ITEMS}"
