"""The dataset index: one entry per completed clip, in DynamoDB (``<ns>-dataset``).

The clip record (``shared.tasks.clip_records``) is the source of truth of a clip's state; an
entry is written in the same transaction as the record's completion, so an entry exists exactly
when the clip's record says ``completed``.

Each entry holds the clip's drive and clip attributes, its summary counts and where its
labels and summary are. ``weather``, ``time_of_day`` and ``scene`` have an index each, so a
query that names one of them reads only the matching entries; other attributes are filtered on
top (or over a scan when no indexed attribute is named). The same table keeps the outputs of a
clip's finalized tasks while its other workflows are still running (``sk = held``, one
attribute per task; ``sk = task#...`` items from before 2026-12-07 are still read).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError
from pydantic import BaseModel, ConfigDict, Field

from shared.aws import error_code
from shared.dynamo import from_item, items, to_item, values
from shared.resources import DATASET, TASKS
from shared.tasks.clip_records import ClipRecords
from shared.taxonomy.vocabulary import Scene, TimeOfDay, Traffic, TrafficDensity, Weather

if TYPE_CHECKING:
    from shared.aws import AwsClients
    from shared.settings import ServiceSettings

ENTRY = "clip"
# The clip's held tasks: one item, an attribute per task (HELD_TASK + task id).
HELD = "held"
HELD_TASK = "t#"
INDEXED = {"weather": "by-weather", "time_of_day": "by-time-of-day", "scene": "by-scene"}
ENUMS = {
    "weather": Weather,
    "time_of_day": TimeOfDay,
    "scene": Scene,
    "traffic": Traffic,
    "traffic_density": TrafficDensity,
}
FREE = {"drive_id", "route", "clip_id"}
ATTRIBUTES = (*ENUMS, *sorted(FREE))
# Requests one page may make when a filter matches few of the entries it reads.
PAGE_REQUESTS = 10


class HeldSetFull(RuntimeError):
    """A clip's held set has no room for another task (DynamoDB's 400 KB item)."""


def _held(item: dict[str, Any]) -> dict[str, str]:
    """The held set in the clip's held item: task id -> what is held of it."""
    return {
        name.removeprefix(HELD_TASK): str(v)
        for name, v in item.items()
        if name.startswith(HELD_TASK)
    }


class QueryError(ValueError):
    pass


class IndexEntry(BaseModel):
    model_config = ConfigDict(extra="ignore")

    clip_id: str
    drive_id: str
    weather: str
    time_of_day: str
    route: str
    scene: str
    traffic: str
    traffic_density: str
    workflows: list[str] = Field(default_factory=list)
    frames: int
    objects_per_class: dict[str, int] = Field(default_factory=dict)
    tracks_per_class: dict[str, int] = Field(default_factory=dict)
    errors: int = 0
    warnings: int = 0
    adjustment: dict[str, int] = Field(default_factory=dict)
    labels_uri: str
    summary_uri: str
    completed_at: float


def parse_where(conditions: list[str]) -> dict[str, str]:
    """``["weather=rainy", "scene=city street"]`` -> checked ``{attribute: value}``."""
    pairs: dict[str, str] = {}
    for condition in conditions:
        if "=" not in condition:
            raise QueryError(f"expected ATTRIBUTE=VALUE, got {condition!r}")
        name, value = (part.strip() for part in condition.split("=", 1))
        pairs[name] = value
    return check_where(pairs)


def check_where(pairs: dict[str, str]) -> dict[str, str]:
    """``{attribute: value}`` checked against the taxonomy: known attributes only, closed
    vocabularies' values normalised (the source spelling "contruction" is understood)."""
    where: dict[str, str] = {}
    for name, value in pairs.items():
        if name in ENUMS:
            try:
                value = ENUMS[name](value).value
            except ValueError:
                allowed = ", ".join(m.value for m in ENUMS[name])
                raise QueryError(f"{value!r} is not a {name} ({allowed})") from None
        elif name not in FREE:
            known = ", ".join(sorted([*ENUMS, *FREE]))
            raise QueryError(f"cannot query by {name!r} (attributes: {known})")
        where[name] = value
    return where


class DatasetIndex:
    def __init__(self, aws: AwsClients, settings: ServiceSettings) -> None:
        self._aws = aws
        self._table = settings.names.table(DATASET.name)
        # the clips' records, whose completion an entry is written with
        self.clips = ClipRecords(aws, settings.names.table(TASKS.name))

    # --- finalized tasks waiting for their clip -----------------------------------------------
    async def hold(self, clip_id: str, task_id: str, value: str) -> dict[str, str]:
        """Hold a finalized task (``value``: what post-processing keeps of it, JSON) beside
        the clip's others, in ONE UpdateItem that returns them all, this one included: the
        clip's held set, task id -> value. Holding again writes the same value.
        :class:`HeldSetFull` when the item would pass DynamoDB's 400 KB."""
        db = await self._aws.dynamodb()
        try:
            answer = await db.update_item(
                TableName=self._table,
                Key={"clip_id": {"S": clip_id}, "sk": {"S": HELD}},
                UpdateExpression="SET #t = :v",
                ExpressionAttributeNames={"#t": f"{HELD_TASK}{task_id}"},
                ExpressionAttributeValues={":v": {"S": value}},
                ReturnValues="ALL_NEW",
            )
        except ClientError as exc:
            message = str(exc.response.get("Error", {}).get("Message", ""))
            if error_code(exc) == "ValidationException" and "maximum allowed size" in message:
                raise HeldSetFull(f"clip {clip_id}: its held set is full ({message})") from None
            raise
        return _held(from_item(answer.get("Attributes", {})))

    async def held_set(self, clip_id: str) -> dict[str, str]:
        """The clip's held set as it is (one GetItem)."""
        db = await self._aws.dynamodb()
        found = await db.get_item(
            TableName=self._table,
            Key={"clip_id": {"S": clip_id}, "sk": {"S": HELD}},
            ConsistentRead=True,
        )
        return _held(from_item(found.get("Item") or {}))

    async def hold_alone(self, clip_id: str, task_id: str, event_json: str) -> None:
        """Hold a task in an item of its own (``task#<id>``: the form before 2026-12-07), for
        a task the held set has no room for; :meth:`held_one_by_one` reads it."""
        db = await self._aws.dynamodb()
        await db.put_item(
            TableName=self._table,
            Item=to_item({"clip_id": clip_id, "sk": f"task#{task_id}", "event": event_json}),
        )

    async def held_one_by_one(self, clip_id: str) -> dict[str, str]:
        """Tasks held one item each (``task#<id>``, before 2026-12-07), task id -> the event's
        JSON: read when a clip's held set looks incomplete, so a clip whose first workflow
        finalized before an upgrade still completes after it (one Query)."""
        db = await self._aws.dynamodb()
        found = await db.query(
            TableName=self._table,
            KeyConditionExpression="clip_id = :c AND begins_with(sk, :p)",
            ExpressionAttributeValues=values(c=clip_id, p="task#"),
            ConsistentRead=True,
        )
        held = {}
        for item in found.get("Items", []):
            data = from_item(item)
            held[data["sk"].removeprefix("task#")] = str(data["event"])
        return held

    # --- entries ------------------------------------------------------------------------------
    async def put(self, entry: IndexEntry) -> None:
        """The entry alone (seeding, benches). Post-processing writes it with the clip record's
        completion instead (:meth:`put_action`, ``ClipRecords.complete_with``)."""
        db = await self._aws.dynamodb()
        await db.put_item(**self.put_action(entry)["Put"])

    def put_action(self, entry: IndexEntry) -> dict[str, Any]:
        """The entry's Put as one action of a ``TransactWriteItems``."""
        item = to_item({**entry.model_dump(mode="json"), "sk": ENTRY})
        return {"Put": {"TableName": self._table, "Item": item}}

    async def get(self, clip_id: str) -> IndexEntry | None:
        db = await self._aws.dynamodb()
        found = await db.get_item(
            TableName=self._table, Key={"clip_id": {"S": clip_id}, "sk": {"S": ENTRY}}
        )
        item = found.get("Item")
        return IndexEntry.model_validate(from_item(item)) if item else None

    def _request(self, where: dict[str, str]) -> tuple[str, dict[str, Any]]:
        """The Query (an indexed attribute named) or Scan that reads the entries matching
        ``where``: its operation and arguments."""
        indexed = next((name for name in INDEXED if name in where), None)
        filters = {k: v for k, v in where.items() if k != indexed}
        names = {f"#f{i}": k for i, k in enumerate(filters)}
        vals = {f":f{i}": {"S": v} for i, v in enumerate(filters.values())}
        expression = " AND ".join(f"#f{i} = :f{i}" for i in range(len(filters)))
        kwargs: dict[str, Any] = {"TableName": self._table}
        if indexed is not None:
            kwargs.update(
                IndexName=INDEXED[indexed],
                KeyConditionExpression="#k = :k",
            )
            names["#k"] = indexed
            vals[":k"] = {"S": where[indexed]}
            operation = "query"
        else:
            # no indexed attribute named: every entry is read (and filtered) - still one
            # paginated request per MB, seconds for tens of thousands of clips
            names["#sk"] = "sk"
            vals[":entry"] = {"S": ENTRY}
            expression = " AND ".join(x for x in ("#sk = :entry", expression) if x)
            operation = "scan"
        if expression:
            kwargs["FilterExpression"] = expression
        kwargs["ExpressionAttributeNames"] = names
        kwargs["ExpressionAttributeValues"] = vals
        return operation, kwargs

    async def query(self, where: dict[str, str]) -> list[IndexEntry]:
        """Every matching entry, by clip id."""
        db = await self._aws.dynamodb()
        operation, kwargs = self._request(where)
        found = items(db, operation, **kwargs)
        entries = [IndexEntry.model_validate(data) async for data in found]
        return sorted(entries, key=lambda e: e.clip_id)

    async def page(
        self,
        where: dict[str, str],
        limit: int,
        after: dict[str, Any] | None = None,
        max_requests: int = PAGE_REQUESTS,
    ) -> tuple[list[IndexEntry], dict[str, Any] | None]:
        """Up to ``limit`` matching entries from ``after`` on (by clip id through an index;
        in table order over a scan), and where the next page starts (None: the end).

        DynamoDB's ``Limit`` counts the items it reads before the filter, so each request asks
        for what the page still lacks (a page never overshoots and the next one starts exactly
        after its last entry); a selective filter may need several requests, at most
        ``max_requests`` - then the page is short and a cursor still follows."""
        db = await self._aws.dynamodb()
        operation, request = self._request(where)
        found: list[IndexEntry] = []
        start = after
        for _ in range(max_requests):
            if start is not None:
                request["ExclusiveStartKey"] = to_item(start)
            request["Limit"] = limit - len(found)
            answer = await getattr(db, operation)(**request)
            found += [IndexEntry.model_validate(from_item(i)) for i in answer.get("Items", [])]
            last = answer.get("LastEvaluatedKey")
            start = from_item(last) if last else None
            if start is None or len(found) >= limit:
                break
        return found, start

    @staticmethod
    def page_key_fields(where: dict[str, str]) -> dict[str, str]:
        """The attributes a page's position (``LastEvaluatedKey``) holds for this query, with
        the value each must have (empty: any): the table's key, plus the index's."""
        indexed = next((name for name in INDEXED if name in where), None)
        # (a scan may stop on a held task's item, so sk is not always ENTRY)
        fields = {"clip_id": "", "sk": ""}
        if indexed is not None:
            fields[indexed] = where[indexed]
        return fields
