"""Key-ordered partitions for the project's moto server: a Query reads one partition, as in AWS.

moto 5.2 answers every Query - on the table or on an index - by listing and sorting the whole
table (``Table.all_items``), keeping the asked partition and sorting it again: O(n log n) per
call, whatever the page. DynamoDB reads one partition in key order: O(log n + page). The sweep,
the status read and the task list read sparse indexes precisely so that their cost follows what
is due or shown; on moto they grew with every task ever stored (issue 15).

Here each table keeps, per key space (its own key and each secondary index), every partition's
items sorted the way moto sorts them, kept in step with every path by which moto changes items:
- ``Table.put_item``: PutItem, BatchWriteItem, transactions, PartiQL, an UpdateItem that creates;
- ``Table.delete_item``: DeleteItem, BatchWriteItem, transactions, PartiQL;
- ``DynamoDBBackend.update_item``: UpdateItem (and a transaction's Update) change the stored item
  in place, so its entries are re-read from the item afterwards, whatever happened;
- whole tables replaced: a transaction's rollback restores a deep copy of the table, which holds
  its own copy of these structures; restores and imports make new tables (built on first Query);
- a table whose secondary indexes changed (UpdateTable) is rebuilt; moto expires nothing (TTL).

A Query hands moto's own ``Table.query`` only the window of its partition that the page can
touch - from the key condition's bound or the ExclusiveStartKey, up to Limit items (or 1 MB) and
the one after them - and moto does the rest on that window: key condition, paging,
LastEvaluatedKey, FilterExpression (after Limit, as DynamoDB), projection, Count, ScannedCount.
The answer is moto's, computed on a page instead of the table (one deliberate difference: moto
may end a page near 1 MB at an item outside the key range, which DynamoDB never reads). What is
not modelled (multi-attribute keys, the legacy QueryFilter) takes moto's own path.
"""

from __future__ import annotations

import bisect
import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.models.dynamo_type import DynamoType, Item
from moto.dynamodb.models.table import RESULT_SIZE_LIMIT, GlobalSecondaryIndex, Table

# the attribute of a moto Table holding its structures (travels with a deep copy of the table)
ATTRIBUTE = "_lava_key_spaces"

HashValue = tuple[str, Any]  # (type, value): moto matches a hash key by both
SortKey = tuple[Any, ...]  # the cast values of moto's sort attributes after the hash
PrimaryKey = tuple[HashValue, HashValue | None]

_MOTO: dict[str, Callable[..., Any]] = {}
_state = {"windows": True}


@dataclass
class SortedPartition:
    """One partition's items in key order (keys and items side by side, for bisect)."""

    keys: list[SortKey] = field(default_factory=list)
    items: list[Item] = field(default_factory=list)

    def add(self, key: SortKey, item: Item) -> None:
        at = bisect.bisect_left(self.keys, key)
        self.keys.insert(at, key)
        self.items.insert(at, item)

    def remove(self, key: SortKey) -> None:
        at = bisect.bisect_left(self.keys, key)
        if at == len(self.keys) or self.keys[at] != key:
            raise LookupError(f"no entry {key!r} in the partition")
        del self.keys[at]
        del self.items[at]


@dataclass
class KeySpace:
    """The table's own key or one secondary index: its partitions and where each item is."""

    hash_attr: str
    order: tuple[str, ...]  # moto's sort attributes after the hash; order[0] takes range conditions
    required: tuple[str, ...]  # an item lacking one is not in the index (sparse indexes)
    range_attr: str | None
    partitions: dict[HashValue, SortedPartition] = field(default_factory=dict)
    where: dict[PrimaryKey, tuple[HashValue, SortKey]] = field(default_factory=dict)

    def entry(self, item: Item) -> tuple[HashValue, SortKey] | None:
        attrs = item.attrs
        if any(name not in attrs for name in self.required):
            return None
        return _hash_value(attrs[self.hash_attr]), tuple(
            attrs[name].cast_value for name in self.order
        )

    def place(self, primary: PrimaryKey, item: Item | None) -> None:
        """Move ``primary``'s entry to where ``item`` (None: deleted) belongs now."""
        old = self.where.pop(primary, None)
        if old is not None:
            hash_value, key = old
            partition = self.partitions[hash_value]
            partition.remove(key)
            if not partition.keys:
                del self.partitions[hash_value]
        if item is not None and (new := self.entry(item)) is not None:
            self.partitions.setdefault(new[0], SortedPartition()).add(new[1], item)
            self.where[primary] = new


def _hash_value(value: DynamoType) -> HashValue:
    return (value.type, value.cast_value)


def _signature(table: Table) -> tuple[Any, ...]:
    return (
        table.hash_key_attr,
        table.range_key_attr,
        tuple(
            (
                index.name,
                type(index).__name__,
                tuple((k["AttributeName"], k["KeyType"]) for k in index.schema),
            )
            for index in table.all_indexes()
        ),
    )


def _key_space(table: Table, index: Any | None) -> KeySpace | None:
    """The key space of ``index`` (None: the table's key), ordered exactly as moto's Query
    orders it (``Table.query`` + ``_generate_attr_to_sort_by``); None if not modelled."""
    if index is None:
        range_attrs: list[str | None] = [table.range_key_attr]
        order = table._generate_attr_to_sort_by([table.hash_key_attr], range_attrs)
        return KeySpace(
            hash_attr=table.hash_key_attr,
            order=tuple(order[1:]),
            required=tuple(table.table_key_attrs),
            range_attr=table.range_key_attr,
        )
    hashes = [k["AttributeName"] for k in index.schema if k["KeyType"] == "HASH"]
    ranges = [k["AttributeName"] for k in index.schema if k["KeyType"] == "RANGE"]
    if len(hashes) != 1 or len(ranges) > 1:
        return None  # multi-attribute keys: moto's own path
    if ranges:
        range_attrs = [ranges[0], table.range_key_attr]
    elif isinstance(index, GlobalSecondaryIndex) and table.range_key_attr:
        range_attrs = [table.range_key_attr, table.range_key_attr]
    else:
        range_attrs = [table.hash_key_attr, table.range_key_attr]
    order = table._generate_attr_to_sort_by([hashes[0], table.hash_key_attr], range_attrs)
    if order[0] != hashes[0]:
        return None
    return KeySpace(
        hash_attr=hashes[0],
        order=tuple(order[1:]),
        required=tuple(dict.fromkeys([hashes[0], *ranges, *table.table_key_attrs])),
        range_attr=ranges[0] if ranges else None,
    )


@dataclass
class TableKeySpaces:
    """All key spaces of one table, built from its items once, then kept in step."""

    signature: tuple[Any, ...]
    spaces: dict[str | None, KeySpace]

    @classmethod
    def build(cls, table: Table) -> TableKeySpaces:
        spaces: dict[str | None, KeySpace] = {}
        for index in [None, *table.all_indexes()]:
            space = _key_space(table, index)
            if space is not None:
                spaces[None if index is None else index.name] = space
        built = cls(_signature(table), spaces)
        for item in _stored_items(table):
            primary = _primary(item.hash_key, item.range_key)
            for space in spaces.values():
                found = space.entry(item)
                if found is not None:
                    partition = space.partitions.setdefault(found[0], SortedPartition())
                    partition.keys.append(found[1])
                    partition.items.append(item)
                    space.where[primary] = found
        for space in spaces.values():
            for partition in space.partitions.values():
                ordered = sorted(zip(partition.keys, partition.items, strict=True), key=_first)
                partition.keys = [key for key, _ in ordered]
                partition.items = [item for _, item in ordered]
        return built


def _first(pair: tuple[SortKey, Item]) -> SortKey:
    return pair[0]


def _stored_items(table: Table) -> Iterator[Item]:
    for stored in table.items.values():
        if table.range_key_attr:
            yield from stored.values()
        elif isinstance(stored, Item):
            yield stored


def _primary(hash_key: DynamoType, range_key: DynamoType | None) -> PrimaryKey:
    return (_hash_value(hash_key), None if range_key is None else _hash_value(range_key))


def _stored(table: Table, hash_key: DynamoType, range_key: DynamoType | None) -> Item | None:
    stored = table.items.get(hash_key)  # .get: moto's defaultdict would grow on []
    if table.range_key_attr:
        found = stored.get(range_key) if stored else None
        return found if isinstance(found, Item) else None
    return stored if isinstance(stored, Item) else None


def key_spaces(table: Table) -> TableKeySpaces:
    """The table's structures, built on first use (and again after its indexes changed)."""
    found: TableKeySpaces | None = table.__dict__.get(ATTRIBUTE)
    if found is None or found.signature != _signature(table):
        found = TableKeySpaces.build(table)
        table.__dict__[ATTRIBUTE] = found
    return found


def refresh(table: Table, hash_key: DynamoType, range_key: DynamoType | None) -> None:
    """Re-place one item (written, updated or deleted) in the table's structures, if built."""
    found: TableKeySpaces | None = table.__dict__.get(ATTRIBUTE)
    if found is None:
        return
    try:
        if found.signature != _signature(table):
            raise LookupError("the table's indexes changed")
        primary = _primary(hash_key, range_key)
        item = _stored(table, hash_key, range_key)
        for space in found.spaces.values():
            space.place(primary, item)
    except Exception:  # anything unexpected: rebuilt from the items on next Query
        table.__dict__.pop(ATTRIBUTE, None)


# --- the window a Query reads ----------------------------------------------------------------
def _bounds(keys: list[SortKey], op: str | None, values: list[Any]) -> tuple[int, int] | None:
    """[low, high) of the partition whose first sort value satisfies the range condition."""
    n = len(keys)

    def left(value: Any) -> int:
        return bisect.bisect_left(keys, value, key=_head)

    def right(value: Any) -> int:
        return bisect.bisect_right(keys, value, key=_head)

    if op is None:
        return 0, n
    if op == "=":
        return left(values[0]), right(values[0])
    if op == "<":
        return 0, left(values[0])
    if op == "<=":
        return 0, right(values[0])
    if op == ">":
        return right(values[0]), n
    if op == ">=":
        return left(values[0]), n
    if op == "BETWEEN":
        low = left(values[0])
        return low, max(low, right(values[1]))
    if op == "BEGINS_WITH" and isinstance(values[0], str | bytes):
        prefix = values[0]
        low = left(prefix)
        # past the prefix's block, values stop starting with it, and never start again
        high = bisect.bisect_left(
            keys, True, lo=low, key=lambda key: not _starts_with(key[0], prefix)
        )
        return low, high
    return None


def _head(key: SortKey) -> Any:
    return key[0]


def _starts_with(value: Any, prefix: str | bytes) -> bool:
    return isinstance(value, type(prefix)) and value.startswith(prefix)  # type: ignore[arg-type]


def _wanted_partition(
    space: KeySpace,
    hash_key: DynamoType | None,
    range_comparison: str | None,
    index_name: str | None,
    hash_key_conditions: list[tuple[str, DynamoType]] | None,
    range_key_conditions: list[tuple[str, str, list[DynamoType]]] | None,
) -> DynamoType | None:
    """The hash key value a Query names, or None when its form is not one the window serves."""
    if index_name is None:
        wanted = hash_key
    elif hash_key_conditions and len(hash_key_conditions) == 1:
        name, wanted = hash_key_conditions[0]
        if name != space.hash_attr:
            return None
    else:
        return None
    if wanted is None:
        return None
    if range_comparison is not None:
        conditions = range_key_conditions or []
        if space.range_attr is None or len(conditions) > 1:
            return None
        if conditions and (conditions[0][0], conditions[0][1]) != (
            space.range_attr,
            range_comparison,
        ):
            return None
    return wanted


def _take(partition: SortedPartition, steps: range, beyond: int, limit: int | None) -> list[Item]:
    """The items moto's Query would look at: up to Limit or 1 MB, then the next one."""
    window: list[Item] = []
    size = 0
    for at in steps:
        item = partition.items[at]
        window.append(item)
        item_size = item.size()
        if (limit is not None and len(window) > limit) or size + item_size > RESULT_SIZE_LIMIT:
            return window  # moto stops at this item and names the one before as the last key
        size += item_size
    if 0 <= beyond < len(partition.items):
        window.append(partition.items[beyond])  # moto returns a last key only if one follows
    return window


def query_window(
    table: Table,
    hash_key: DynamoType | None,
    range_comparison: str | None,
    range_objs: list[DynamoType],
    limit: int | None,
    exclusive_start_key: dict[str, Any] | None,
    scan_index_forward: bool,
    index_name: str | None,
    hash_key_conditions: list[tuple[str, DynamoType]] | None,
    range_key_conditions: list[tuple[str, str, list[DynamoType]]] | None,
) -> list[Item] | None:
    """The items of the partition a Query can touch, or None to let moto walk the table."""
    space = key_spaces(table).spaces.get(index_name)
    if space is None or (limit is not None and limit < 1):
        return None
    wanted = _wanted_partition(
        space, hash_key, range_comparison, index_name, hash_key_conditions, range_key_conditions
    )
    if wanted is None:
        return None
    partition = space.partitions.get(_hash_value(wanted))
    if partition is None:
        return []
    bounds = _bounds(partition.keys, range_comparison, [v.cast_value for v in range_objs])
    if bounds is None:
        return None
    low, high = bounds
    after: SortKey | None = None
    if exclusive_start_key is not None:
        start_hash = exclusive_start_key.get(space.hash_attr)
        if start_hash is None or any(name not in exclusive_start_key for name in space.order):
            return None
        if _hash_value(DynamoType(start_hash)) != _hash_value(wanted):
            return None  # a key from another partition: moto decides what that means
        after = tuple(DynamoType(exclusive_start_key[name]).cast_value for name in space.order)
    if scan_index_forward:
        if after is not None:
            low = max(low, bisect.bisect_right(partition.keys, after))
        return _take(partition, range(low, max(low, high)), max(low, high), limit)
    if after is not None:
        high = min(high, bisect.bisect_left(partition.keys, after))
    return _take(partition, range(high - 1, low - 1, -1), low - 1, limit)


class _Window:
    """The table as moto's ``Table.query`` sees it: ``all_items`` is the window."""

    def __init__(self, table: Table, window: list[Item]) -> None:
        self._table = table
        self._window = window

    def __getattr__(self, name: str) -> Any:
        return getattr(self._table, name)

    def all_items(self) -> list[Item]:
        return self._window


# --- the hooks ------------------------------------------------------------------------------
def _query(self: Table, *args: Any, **kwargs: Any) -> Any:
    window = _window_of(self, *args, **kwargs) if _state["windows"] else None
    return _MOTO["query"](self if window is None else _Window(self, window), *args, **kwargs)


def _window_of(
    table: Table,
    hash_key: DynamoType | None,
    range_comparison: str | None,
    range_objs: list[DynamoType],
    limit: int | None,
    exclusive_start_key: dict[str, Any] | None,
    scan_index_forward: bool,
    projection_expressions: Any,
    index_name: str | None = None,
    consistent_read: bool = False,
    filter_expression: Any = None,
    hash_key_conditions: list[tuple[str, DynamoType]] | None = None,
    range_key_conditions: list[tuple[str, str, list[DynamoType]]] | None = None,
    **filter_kwargs: Any,
) -> list[Item] | None:
    if filter_kwargs:
        return None  # the legacy QueryFilter: moto's own path
    try:
        return query_window(
            table,
            hash_key,
            range_comparison,
            range_objs,
            limit,
            exclusive_start_key,
            scan_index_forward,
            index_name,
            hash_key_conditions,
            range_key_conditions,
        )
    except Exception:  # e.g. keys of mixed types: moto's path, and its answer
        table.__dict__.pop(ATTRIBUTE, None)
        return None


def _put_item(self: Table, *args: Any, **kwargs: Any) -> Item:
    item: Item = _MOTO["put_item"](self, *args, **kwargs)
    refresh(self, item.hash_key, item.range_key)
    return item


def _delete_item(
    self: Table, hash_key: DynamoType, range_key: DynamoType | None, *args: Any, **kwargs: Any
) -> Item | None:
    try:
        deleted: Item | None = _MOTO["delete_item"](self, hash_key, range_key, *args, **kwargs)
    finally:
        refresh(self, hash_key, range_key)
    return deleted


def _update_item(
    self: DynamoDBBackend, table_name: str, key: Any, *args: Any, **kwargs: Any
) -> Item:
    try:
        return _MOTO["update_item"](self, table_name, key, *args, **kwargs)  # type: ignore[no-any-return]
    finally:
        # in place, and possibly half-done when it raised: re-read the item either way
        with contextlib.suppress(Exception):
            table = self.get_table(table_name)
            if isinstance(key, dict) and table.hash_key_attr in key:
                range_raw = key.get(table.range_key_attr) if table.range_key_attr else None
                refresh(
                    table,
                    DynamoType(key[table.hash_key_attr]),
                    None if range_raw is None else DynamoType(range_raw),
                )


def install() -> bool:
    """Patch moto (this process): Queries read windows, every item write keeps them in step.
    False if it was patched already."""
    if _MOTO:
        return False
    _MOTO.update(
        query=Table.query,
        put_item=Table.put_item,
        delete_item=Table.delete_item,
        update_item=DynamoDBBackend.update_item,
    )
    Table.query = _query  # type: ignore[method-assign]
    Table.put_item = _put_item  # type: ignore[method-assign]
    Table.delete_item = _delete_item  # type: ignore[method-assign]
    DynamoDBBackend.update_item = _update_item  # type: ignore[method-assign]
    return True


def uninstall() -> None:
    """Restore moto's own methods (tests)."""
    if not _MOTO:
        return
    Table.query = _MOTO.pop("query")  # type: ignore[method-assign]
    Table.put_item = _MOTO.pop("put_item")  # type: ignore[method-assign]
    Table.delete_item = _MOTO.pop("delete_item")  # type: ignore[method-assign]
    DynamoDBBackend.update_item = _MOTO.pop("update_item")  # type: ignore[method-assign]


@contextlib.contextmanager
def moto_walks() -> Iterator[None]:
    """Within: every Query takes moto's own path (the writes still keep the windows in step) -
    what the differential test compares the windows with."""
    before = _state["windows"]
    _state["windows"] = False
    try:
        yield
    finally:
        _state["windows"] = before
