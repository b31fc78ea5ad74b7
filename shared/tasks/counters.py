"""Counters of the tasks table, kept on every transition, so status reads cost O(1).

Two kinds of counter items live in the tasks table under ``pk = counters``:
- ``sk = total``: tasks per status and level (``t_<status>_<level>``), clips per outcome
  (``c_<outcome>``), data objects waiting (``o_waiting``), objects created, sends, re-keys,
  expirations, outputs;
- ``sk = hour#<YYYYMMDDHH>``: the same event counts per hour (sends, re-keys, expirations,
  outputs per job) for the dashboard's charts over time.

Each counter moves with ``ADD`` (atomic) right after the conditional write of the transition it
counts succeeded, and only the writer that won the condition counts: a redelivered event fails
its condition and counts nothing (idempotent under redelivery). The one gap is a process dying
between the transition and its ``ADD`` (a count too few); ``recount`` rebuilds the totals from
the table (a scan: an operator's repair, never on a read path).
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from shared.dynamo import from_item, items

if TYPE_CHECKING:
    from shared.aws import AwsClients

COUNTERS_PK = "counters"
TOTAL_SK = "total"
HOURLY_EVENTS = ("sends", "rekeys", "expirations", "outputs")


def hour_sk(at: float) -> str:
    return "hour#" + datetime.fromtimestamp(at, UTC).strftime("%Y%m%d%H")


def task_counter(status: str, level: int) -> str:
    return f"t_{status}_{level}"


def clip_counter(outcome: str) -> str:
    return f"c_{outcome}"


def job_output_counter(job: str) -> str:
    return f"out_{job}"


class TaskCounters:
    def __init__(self, aws: AwsClients, table: str) -> None:
        self._aws = aws
        self.table = table

    async def add(self, changes: dict[str, int], at: float | None = None) -> None:
        """ADD each change to the totals and, with ``at``, to that hour's item."""
        changes = {name: n for name, n in changes.items() if n}
        if not changes:
            return
        await self._add(TOTAL_SK, changes)
        if at is not None:
            hourly = {
                k: v for k, v in changes.items() if k in HOURLY_EVENTS or k.startswith("out_")
            }
            if hourly:
                await self._add(hour_sk(at), hourly)

    def updates(
        self, changes: dict[str, int], hourly: dict[str, int], at: float
    ) -> list[dict[str, Any]]:
        """The same ADDs as transaction items, to ride on the writes they count."""
        out = []
        for sk, moved in ((TOTAL_SK, changes), (hour_sk(at), hourly)):
            moved = {name: n for name, n in moved.items() if n}
            if moved:
                out.append({"Update": {"TableName": self.table, **_add_request(sk, moved)}})
        return out

    async def _add(self, sk: str, changes: dict[str, int]) -> None:
        db = await self._aws.dynamodb()
        await db.update_item(TableName=self.table, **_add_request(sk, changes))

    async def totals(self) -> dict[str, int]:
        db = await self._aws.dynamodb()
        found = await db.get_item(
            TableName=self.table,
            Key={"pk": {"S": COUNTERS_PK}, "sk": {"S": TOTAL_SK}},
            ConsistentRead=True,
        )
        item = from_item(found.get("Item") or {})
        return {k: int(v) for k, v in item.items() if k not in ("pk", "sk")}

    async def hours(self, since: float) -> dict[str, dict[str, int]]:
        """Hourly counts from ``since`` on (at most a day or two of items: a bounded read)."""
        db = await self._aws.dynamodb()
        out: dict[str, dict[str, int]] = {}
        async for item in items(
            db,
            "query",
            TableName=self.table,
            KeyConditionExpression="pk = :pk AND sk >= :since",
            ExpressionAttributeValues={
                ":pk": {"S": COUNTERS_PK},
                ":since": {"S": hour_sk(since)},
            },
        ):
            hour = str(item.pop("sk")).removeprefix("hour#")
            item.pop("pk", None)
            if hour != TOTAL_SK:
                out[hour] = {k: int(v) for k, v in item.items()}
        return out

    async def recount(self) -> dict[str, int]:
        """Rebuild the totals from the table (a full scan; the operator's repair)."""
        db = await self._aws.dynamodb()
        totals: Counter[str] = Counter()
        async for item in items(db, "scan", TableName=self.table, ConsistentRead=True):
            totals.update(_contribution(item))
        await db.put_item(
            TableName=self.table,
            Item={
                "pk": {"S": COUNTERS_PK},
                "sk": {"S": TOTAL_SK},
                **{k: {"N": str(v)} for k, v in totals.items()},
            },
        )
        return dict(totals)


def _add_request(sk: str, changes: dict[str, int]) -> dict[str, Any]:
    names = {f"#c{i}": name for i, name in enumerate(changes)}
    vals = {f":c{i}": {"N": str(n)} for i, n in enumerate(changes.values())}
    return {
        "Key": {"pk": {"S": COUNTERS_PK}, "sk": {"S": sk}},
        "UpdateExpression": "ADD " + ", ".join(f"#c{i} :c{i}" for i in range(len(changes))),
        "ExpressionAttributeNames": names,
        "ExpressionAttributeValues": vals,
    }


def _contribution(item: dict[str, Any]) -> Counter[str]:
    """What one stored item adds to the totals."""
    out: Counter[str] = Counter()
    kind = item.get("kind")
    if kind == "task":
        out[task_counter(item["status"], int(item.get("level", 1)))] += 1
    elif kind == "clip" and item.get("clip_status"):  # none stored: ingesting, not counted
        out[clip_counter(str(item["clip_status"]))] += 1
    elif kind == "obj":
        keys = len(item.get("keys", []))
        out["objects"] += 1
        out["rekeys"] += max(0, keys - 1)
        out["sends"] += int(item.get("send_count", 0))
        out["expirations"] += int(item.get("expirations", 0))
        if item.get("status") == "waiting":
            out["o_waiting"] += 1
        if item.get("status") == "done":
            out["outputs"] += 1
            out[job_output_counter(str(item.get("job")))] += 1
    return out
