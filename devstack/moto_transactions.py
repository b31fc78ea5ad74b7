"""TransactWriteItems on the project's moto server: O(items named), not O(tables named).

moto 5.2 backs up every table a transaction names with ``copy.deepcopy`` before it applies the
transaction, and puts the copies back when it cancels. A transaction therefore costs time (and,
until :mod:`devstack.moto_instances`, memory) in proportion to everything the table holds: on a
quiet machine the dispatcher's LevelCompleted -> next publish took a median 51 ms after 5 tasks
and 390 ms after 200 (``bench/dispatch_bench.py``), all of it moto copying the tasks table.
DynamoDB's cost follows the items a transaction names (at most 100).

Here moto's own algorithm runs unchanged (conditions, the order of writes, the cancellation
reasons) with one difference: its backup of a table is the table itself (no copy), and what it
would have restored is restored item by item - each item the transaction names is copied
before, and on any error put back as it was (or removed, if it did not exist) through
``Table.put_item`` / ``Table.delete_item``, the paths :mod:`devstack.moto_indexes` keeps its
partitions in step with.

Correct because the server runs one DynamoDB request at a time (``AtomicDynamoDB`` in
:mod:`devstack.moto_server`): nothing else writes between the copies and the restore. One
difference from moto's rollback, none from DynamoDB's for this project: a table with a stream
would see a cancelled transaction's writes and their undoing; no table the project provisions
has a stream.
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

_state = threading.local()
_INSTALLED: dict[str, Any] = {}


@dataclass(frozen=True)
class _Saved:
    table: str
    key: dict[str, Any]
    attrs: dict[str, Any] | None  # the item's DynamoDB JSON before, None if absent


class _TablesUncopied:
    """Stands in for the ``copy`` module inside moto's DynamoDB models: ``deepcopy`` of a table
    is the table itself while this thread runs a transaction; anything else is copied."""

    def __init__(self, real: Any) -> None:
        self._real = real

    def deepcopy(self, value: Any, memo: dict[int, Any] | None = None) -> Any:
        from moto.dynamodb.models.table import Table

        if getattr(_state, "in_transaction", False) and isinstance(value, Table):
            return value
        return self._real.deepcopy(value, memo)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)


@contextmanager
def _transaction() -> Iterator[None]:
    _state.in_transaction = True
    try:
        yield
    finally:
        _state.in_transaction = False


def _key_of(backend: Any, op_type: str, op: dict[str, Any]) -> tuple[str, dict[str, Any]] | None:
    table_name = str(op.get("TableName") or "")
    table = backend.tables.get(table_name)
    if table is None:
        return None  # moto reports the missing table itself
    if op_type != "Put":
        key = op.get("Key")
        return (table_name, key) if isinstance(key, dict) else None
    attrs = op.get("Item") or {}
    names = [table.hash_key_attr] + ([table.range_key_attr] if table.range_key_attr else [])
    if any(name not in attrs for name in names):
        return None  # moto raises its validation error before writing anything
    return table_name, {name: attrs[name] for name in names}


def _save(backend: Any, transact_items: list[dict[str, Any]]) -> list[_Saved]:
    saved: list[_Saved] = []
    for item in transact_items:
        if len(item) != 1:
            continue  # moto refuses it before writing
        op_type, op = next(iter(item.items()))
        if op_type == "ConditionCheck":
            continue  # writes nothing
        found = _key_of(backend, op_type, op)
        if found is None:
            continue
        table_name, key = found
        try:
            current = backend.get_item(table_name, key)
        except Exception:  # a malformed key: moto reports it, nothing to keep
            continue
        attrs = None if current is None else copy.deepcopy(current.to_json()["Attributes"])
        saved.append(_Saved(table_name, key, attrs))
    return saved


def _restore(backend: Any, saved: list[_Saved]) -> None:
    from moto.dynamodb.models.dynamo_type import DynamoType

    for entry in reversed(saved):
        table = backend.tables.get(entry.table)
        if table is None:
            continue
        if entry.attrs is not None:
            table.put_item(entry.attrs)
            continue
        hash_value = DynamoType(entry.key[table.hash_key_attr])
        range_value = DynamoType(entry.key[table.range_key_attr]) if table.range_key_attr else None
        table.delete_item(hash_value, range_value)


def install() -> bool:
    """Patch moto's DynamoDB backend; False when this process has it patched already."""
    if _INSTALLED:
        return False
    import moto.dynamodb.models as models

    original: Callable[[Any, list[dict[str, Any]]], None] = (
        models.DynamoDBBackend.transact_write_items
    )

    def transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> None:
        saved = _save(self, transact_items)
        try:
            with _transaction():
                original(self, transact_items)
        except BaseException:
            _restore(self, saved)
            raise

    models.copy = _TablesUncopied(copy)  # type: ignore[assignment,attr-defined]
    models.DynamoDBBackend.transact_write_items = transact_write_items  # type: ignore[method-assign]
    _INSTALLED["original"] = original
    return True


def uninstall() -> None:
    """moto's own transactions again (the tests compare the two)."""
    import moto.dynamodb.models as models

    original = _INSTALLED.pop("original", None)
    if original is not None:
        models.DynamoDBBackend.transact_write_items = original  # type: ignore[method-assign]
        models.copy = copy  # type: ignore[attr-defined]


@contextmanager
def moto_copies() -> Iterator[None]:
    """Within: moto's own transactions (its table copies), whatever is installed."""
    original = _INSTALLED.get("original")
    if original is None:
        yield
        return
    uninstall()
    try:
        yield
    finally:
        _INSTALLED.clear()
        install()
