"""The dispatcher's state in DynamoDB: every transition is a conditional write.

Items of the ``<ns>-tasks`` table:
- ``task#<task id>`` / ``task``: the annotation task;
- ``task#<task id>`` / ``obj#<level>#<job>#<object>``: a data object sent to a job;
- ``clip#<clip id>`` / ``clip``: the clip record (shared.tasks.clip_records), its one owner of
  state from acceptance to outcome.

A decision of the dispatcher (``services/dispatcher/policy.py``) is written by :meth:`commit`
in ONE request: whole items, each put on the condition that its revision (``rev``) is the one
read, in one ``TransactWriteItems`` when several change together, the counters riding along as
an ``ADD`` (``shared/tasks/plan.py``). Every other writer here bumps ``rev`` too, so a decision
made on an older read loses its commit, writes nothing, and is made again on a fresh read.
Duplicated and out-of-order events cannot move anything backwards or twice.

Two sparse indexes: ``by-due`` (due_kind, due_at) holds only what has something due - waiting
objects (next re-send), tasks with a level deadline or a pending LabelsFinalized - so the sweep
reads what is due, not everything; ``by-status`` (status_key, updated_at) lists tasks by status.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from shared.aws import error_code
from shared.dedup import object_sk, task_pk
from shared.dynamo import (
    conditional,
    from_item,
    is_condition_failure,
    items,
    to_item,
    values,
)
from shared.resources import TASKS
from shared.tasks.clip_records import ClipRecords, clip_key
from shared.tasks.counters import (
    TaskCounters,
    clip_counter,
    task_counter,
)
from shared.tasks.model import (
    AnnotationTask,
    ClipOutcome,
    ClipRecord,
    ClipStatus,
    DataObject,
    LateOutput,
    ObjectStatus,
    TaskStatus,
)
from shared.tasks.moves import TaskMove, counts_of
from shared.tasks.plan import NEW, Changes, LinkClip, PutLate, PutTask, Write

if TYPE_CHECKING:
    from shared.aws import AwsClients
    from shared.settings import ServiceSettings

DUE_OBJECT = "object"
DUE_TASK = "task"
# Reads and transactions in a row that may lose to another writer when moving a clip's tasks.
MOVE_ATTEMPTS = 5
# Commits of a new task in a row whose clip record was not in the state expected: its status
# can appear (a sibling task) or, rarely, go (a clip failed at ingest accepted again) meanwhile.
LINK_ATTEMPTS = 3


def _key(pk: str, sk: str) -> dict[str, Any]:
    return {"pk": {"S": pk}, "sk": {"S": sk}}


def _object_key(obj: DataObject) -> dict[str, Any]:
    return _key(task_pk(obj.task_id), object_sk(obj.level, obj.job, obj.object_id))


class TaskStore:
    def __init__(self, aws: AwsClients, settings: ServiceSettings) -> None:
        self._aws = aws
        self.table = settings.names.table(TASKS.name)
        self.counters = TaskCounters(aws, self.table)
        self.clips = ClipRecords(aws, self.table)

    # --- encoding ---------------------------------------------------------------------------
    def _task_item(self, task: AnnotationTask, due_at: float | None = None) -> dict[str, Any]:
        data = task.model_dump(mode="json")
        due_at = task.due_at if due_at is None else due_at
        data.update(
            pk=task_pk(task.task_id),
            sk="task",
            kind="task",
            status_key=f"task#{task.status.value}",
        )
        if due_at is not None:
            data.update(due_kind=DUE_TASK, due_at=due_at)
        return to_item(data)

    def _object_item(self, obj: DataObject) -> dict[str, Any]:
        data = obj.model_dump(mode="json")
        data.update(
            pk=task_pk(obj.task_id), sk=object_sk(obj.level, obj.job, obj.object_id), kind="obj"
        )
        if obj.status is ObjectStatus.WAITING and obj.due_at is not None:
            data.update(due_kind=DUE_OBJECT)
        return to_item(data)

    # --- the aggregate ----------------------------------------------------------------------
    async def load(
        self, task_id: str
    ) -> tuple[AnnotationTask | None, list[DataObject], list[LateOutput]]:
        """A task with its data objects and late outputs: ONE Query over its partition."""
        task: AnnotationTask | None = None
        objects: list[DataObject] = []
        late: list[LateOutput] = []
        for item in await self._task_items(task_id):
            kind = item.get("kind")
            if kind == "task":
                task = AnnotationTask.model_validate(item)
            elif kind == "obj":
                objects.append(DataObject.model_validate(item))
            elif kind == "late":
                late.append(LateOutput.model_validate(item))
        return task, objects, late

    async def commit(self, changes: Changes) -> bool:
        """Carry out one decision's writes in ONE request (``shared/tasks/plan.py``); False
        when a condition failed (someone changed the aggregate since it was read).

        The clip record's write (``link``: the task joins it; a clip without a status becomes
        ``labeling``) rides in the same transaction, so a task never exists without its clip
        knowing it. A clip's first task also counts the clip as labeling; a transaction cannot
        read, so the link names the state it expects (no status yet, when the event says the
        task is the clip's first, else a status) and, when the record says otherwise, is tried
        with the other expectation: one more request, only when the guess was wrong.
        """
        if changes.link is None:
            return await self._write(changes)
        new_clip = changes.link.first
        for _ in range(LINK_ATTEMPTS):
            requests = self._requests(changes, new_clip)
            requests.append(self._link_request(changes.link, new_clip))
            lost = await self._transact_reasons(requests)
            if lost is None:
                return True
            link = len(requests) - 1
            if set(lost) != {link}:  # the task or its objects moved: decide again
                return False
            if lost[link] == "ConditionalCheckFailed":  # the clip is not as expected
                new_clip = not new_clip
        return False

    def _requests(self, changes: Changes, new_clip: bool = False) -> list[dict[str, Any]]:
        counts = dict(changes.counts)
        if new_clip:
            counter = clip_counter(ClipStatus.LABELING)
            counts[counter] = counts.get(counter, 0) + 1
        requests = [self._write_request(w) for w in changes.writes]
        return requests + self.counters.updates(counts, changes.hourly, changes.at)

    async def _write(self, changes: Changes) -> bool:
        requests = self._requests(changes)
        if not requests:
            return True
        if len(requests) == 1:
            (request,) = requests
            db = await self._aws.dynamodb()
            return await conditional(db.put_item(**request["Put"]))
        return await self._transact(requests)

    async def _transact(self, requests: list[dict[str, Any]]) -> bool:
        """One TransactWriteItems; False when it was cancelled (a condition, a conflict)."""
        return await self._transact_reasons(requests) is None

    async def _transact_reasons(self, requests: list[dict[str, Any]]) -> dict[int, str] | None:
        """One TransactWriteItems; None when it committed, else why it was cancelled: the
        position of each item that stopped it and the reason's code (``ConditionalCheckFailed``,
        ``TransactionConflict``; empty when DynamoDB did not say)."""
        db = await self._aws.dynamodb()
        try:
            await db.transact_write_items(TransactItems=requests)  # type: ignore[arg-type]
        except ClientError as exc:
            if error_code(exc) != "TransactionCanceledException":
                raise
            reasons = exc.response.get("CancellationReasons") or []
            codes = {i: str(r.get("Code")) for i, r in enumerate(reasons)}
            return {i: code for i, code in codes.items() if code not in ("None", "")}
        return None

    def _write_request(self, write: Write) -> dict[str, Any]:
        if isinstance(write, PutLate):
            data = write.late.model_dump(mode="json")
            late = write.late
            sk = f"late#{late.job}#{late.object_id}#{late.what}#{late.key}"
            data.update(pk=task_pk(late.task_id), sk=sk, kind="late")
            return {"Put": {"TableName": self.table, "Item": to_item(data)}}
        if isinstance(write, PutTask):
            item = self._task_item(write.task)
        else:
            item = self._object_item(write.obj)
        put: dict[str, Any] = {"TableName": self.table, "Item": item}
        if write.expected == NEW:
            put["ConditionExpression"] = "attribute_not_exists(pk)"
        elif write.expected == 0:  # items written before revisions have none
            put["ConditionExpression"] = (
                "attribute_exists(pk) AND (attribute_not_exists(#r) OR #r = :r)"
            )
        else:
            put["ConditionExpression"] = "#r = :r"
        if write.expected != NEW:
            put["ExpressionAttributeNames"] = {"#r": "rev"}
            put["ExpressionAttributeValues"] = values(r=write.expected)
        return {"Put": put}

    def _link_request(self, link: LinkClip, new_clip: bool) -> dict[str, Any]:
        """The clip record's Update in a commit: conditional on the clip's state expected
        (``new_clip``: no status yet - the commit counts it - else a status)."""
        update = self._clip_task_update(link.clip_id, link.task_id, link.at)
        condition = "attribute_not_exists(#cs)" if new_clip else "attribute_exists(#cs)"
        update.update(
            ConditionExpression=condition, ExpressionAttributeNames={"#cs": "clip_status"}
        )
        return {"Update": update}

    # --- reads ------------------------------------------------------------------------------
    async def get_task(self, task_id: str) -> AnnotationTask | None:
        db = await self._aws.dynamodb()
        found = await db.get_item(
            TableName=self.table, Key=_key(task_pk(task_id), "task"), ConsistentRead=True
        )
        item = found.get("Item")
        return AnnotationTask.model_validate(from_item(item)) if item else None

    async def _task_items(self, task_id: str, prefix: str = "") -> list[dict[str, Any]]:
        """The items of a task whose sort key starts with ``prefix`` (``obj#``, ``late#``;
        empty: all of them - the task, its objects and its late outputs)."""
        db = await self._aws.dynamodb()
        condition = "pk = :pk" + (" AND begins_with(sk, :prefix)" if prefix else "")
        named = {"pk": task_pk(task_id), **({"prefix": prefix} if prefix else {})}
        found = items(
            db,
            "query",
            TableName=self.table,
            KeyConditionExpression=condition,
            ExpressionAttributeValues=values(**named),
            ConsistentRead=True,
        )
        return [item async for item in found]

    async def objects(self, task_id: str, level: int | None = None) -> list[DataObject]:
        prefix = "obj#" if level is None else f"obj#{level:02d}#"
        return [DataObject.model_validate(i) for i in await self._task_items(task_id, prefix)]

    async def due(self, kind: str, now: float, limit: int = 100) -> list[dict[str, Any]]:
        """Raw items whose ``due_at`` has passed (oldest first), from the sparse index."""
        db = await self._aws.dynamodb()
        found = await db.query(
            TableName=self.table,
            IndexName="by-due",
            KeyConditionExpression="due_kind = :kind AND due_at <= :now",
            ExpressionAttributeValues=values(kind=kind, now=now),
            Limit=limit,
        )
        return [from_item(i) for i in found.get("Items", [])]

    async def tasks_page(
        self, status: str, limit: int, after: dict[str, Any] | None = None
    ) -> tuple[list[AnnotationTask], dict[str, Any] | None]:
        """One page of tasks in ``status``, most recently updated first, through the
        ``by-status`` index (its cost is the page, whatever the table holds); and where the
        next page starts (None: this was the last)."""
        db = await self._aws.dynamodb()
        request: dict[str, Any] = {
            "TableName": self.table,
            "IndexName": "by-status",
            "KeyConditionExpression": "status_key = :s",
            "ExpressionAttributeValues": values(s=f"task#{status}"),
            "ScanIndexForward": False,
            "Limit": limit,
        }
        if after is not None:
            request["ExclusiveStartKey"] = to_item(after)
        found = await db.query(**request)
        tasks = [AnnotationTask.model_validate(from_item(i)) for i in found.get("Items", [])]
        last = found.get("LastEvaluatedKey")
        return tasks, (from_item(last) if last else None)

    async def held_objects(self) -> dict[str, int]:
        """Waiting objects held because their job takes no input, as ``"job: reason" -> n``.

        Reads the object entries of the sparse ``by-due`` index (what is waiting), never the
        table: its cost follows the waiting objects, not the tasks ever made."""
        db = await self._aws.dynamodb()
        held: dict[str, int] = {}
        request: dict[str, Any] = {
            "TableName": self.table,
            "IndexName": "by-due",
            "KeyConditionExpression": "due_kind = :kind",
            "FilterExpression": "attribute_exists(held)",
            "ExpressionAttributeValues": values(kind=DUE_OBJECT),
        }
        while True:
            found = await db.query(**request)
            for item in found.get("Items", []):
                obj = from_item(item)
                name = f"{obj.get('job')}: {obj.get('held')}"
                held[name] = held.get(name, 0) + 1
            last = found.get("LastEvaluatedKey")
            if not last:
                return held
            request["ExclusiveStartKey"] = last

    async def count_due(self, kind: str, low: float, high: float) -> int:
        """How many ``kind`` items fall due in [low, high) (reads only those index entries)."""
        db = await self._aws.dynamodb()
        total = 0
        request: dict[str, Any] = {
            "TableName": self.table,
            "IndexName": "by-due",
            "KeyConditionExpression": "due_kind = :kind AND due_at BETWEEN :low AND :high",
            "ExpressionAttributeValues": values(kind=kind, low=low, high=high),
            "Select": "COUNT",
        }
        while True:
            found = await db.query(**request)
            total += int(found.get("Count", 0))
            last = found.get("LastEvaluatedKey")
            if not last:
                return total
            request["ExclusiveStartKey"] = last

    async def clip(self, clip_id: str) -> ClipRecord | None:
        return await self.clips.get(clip_id)

    # --- conditional writes ------------------------------------------------------------------
    async def _update(self, **request: Any) -> bool:
        """One conditional UpdateItem; False when its condition did not hold."""
        db = await self._aws.dynamodb()
        request.setdefault("TableName", self.table)
        return await conditional(db.update_item(**request))

    async def _transition(self, **request: Any) -> dict[str, Any] | None:
        """A conditional UpdateItem that counts: the item as it was, or None when the
        condition did not hold (someone else made this transition)."""
        db = await self._aws.dynamodb()
        request.setdefault("TableName", self.table)
        try:
            found = await db.update_item(ReturnValues="ALL_OLD", **request)
        except ClientError as exc:
            if is_condition_failure(exc):
                return None
            raise
        return from_item(found.get("Attributes") or {})

    async def _count_move(self, before: str | None, after: str) -> None:
        """One item moved from the counter ``before`` (None: it is new) to ``after``."""
        if before != after:
            await self.counters.add({after: 1, **({before: -1} if before else {})})

    async def _count_task_move(self, old: dict[str, Any], status: TaskStatus) -> None:
        level = int(old.get("level", 1))
        await self._count_move(task_counter(str(old["status"]), level), task_counter(status, level))

    # --- transitions ------------------------------------------------------------------------
    def _clip_task_update(self, clip_id: str, task_id: str, now: float) -> dict[str, Any]:
        """The clip record's write of a task's creation (clip_policy ``task``): the record
        gains the task and, while it has no status (ingesting, or no record), ``labeling``.
        An Update for a transaction (:meth:`_link_request` adds its condition)."""
        return {
            "TableName": self.table,
            "Key": clip_key(clip_id),
            "UpdateExpression": (
                "SET clip_id = :clip, kind = :kind, updated_at = :now, "
                "clip_status = if_not_exists(clip_status, :labeling), "
                "status_key = if_not_exists(status_key, :key) ADD tasks :task"
            ),
            "ExpressionAttributeValues": {
                **values(
                    clip=clip_id,
                    kind="clip",
                    now=now,
                    labeling=ClipStatus.LABELING.value,
                    key=f"clip#{ClipStatus.LABELING.value}",
                ),
                ":task": {"SS": [task_id]},
            },
        }

    async def move_tasks(
        self,
        task_ids: Sequence[str],
        status: TaskStatus,
        expected: Sequence[TaskStatus],
        now: float,
        *,
        reason: str | None = None,
        event: str | None = None,
    ) -> int:
        """Move those of the tasks that are in one of ``expected`` to ``status`` (a clip's
        outcome reaching its tasks): ONE BatchGetItem, then ONE write - a TransactWriteItems of
        every move and the counters they move - each on the condition that the task is as
        read. A race (the task changed in between) reads again. How many moved."""
        for _ in range(MOVE_ATTEMPTS):
            tasks = [t for t in await self._tasks(task_ids) if t.status in expected]
            if not tasks:
                return 0
            moves = [TaskMove(t.task_id, t.status, t.level) for t in tasks]
            requests = [m.action(self.table, status, now, reason, event) for m in moves]
            counted = self.counters.updates(dict(counts_of(moves, status)), {}, now)
            if await self._transact(requests + counted):
                return len(tasks)
        raise RuntimeError(f"tasks {list(task_ids)} kept changing while moving to {status.value}")

    async def _tasks(self, task_ids: Sequence[str]) -> list[AnnotationTask]:
        """The task items of ``task_ids`` in one BatchGetItem (a clip has a handful)."""
        db = await self._aws.dynamodb()
        wanted: dict[str, Any] = {
            self.table: {
                "Keys": [_key(task_pk(t), "task") for t in dict.fromkeys(task_ids)],
                "ConsistentRead": True,
            }
        }
        found: list[AnnotationTask] = []
        while wanted:
            answer = await db.batch_get_item(RequestItems=wanted)
            rows = answer.get("Responses", {}).get(self.table, [])
            found += [AnnotationTask.model_validate(from_item(item)) for item in rows]
            wanted = answer.get("UnprocessedKeys") or {}
        return found

    # --- job holds (services/dispatcher/jobs.py) ---------------------------------------------
    async def waiting_for_job(self, job: str) -> list[DataObject]:
        """Every waiting data object of a job (a scan: only when a job stops, which is rare)."""
        db = await self._aws.dynamodb()
        found = items(
            db,
            "scan",
            TableName=self.table,
            FilterExpression="#kind = :obj AND #job = :job AND #s = :waiting",
            ExpressionAttributeNames={"#s": "status", "#kind": "kind", "#job": "job"},
            ExpressionAttributeValues=values(
                obj="obj", job=job, waiting=ObjectStatus.WAITING.value
            ),
            ConsistentRead=True,
        )
        return [DataObject.model_validate(data) async for data in found]

    async def due_now(self, obj: DataObject, now: float) -> bool:
        """Make a waiting object due at once (its job stopped: the sweep holds it visibly)."""
        return await self._update(
            Key=_object_key(obj),
            UpdateExpression="SET due_at = :now, due_kind = :kind ADD #r :one",
            ConditionExpression="#s = :waiting AND #k = :key",
            ExpressionAttributeNames={"#s": "status", "#k": "key", "#r": "rev"},
            ExpressionAttributeValues=values(
                now=now, kind=DUE_OBJECT, one=1, waiting=ObjectStatus.WAITING.value, key=obj.key
            ),
        )

    async def set_clip_outcome(self, clip_id: str, outcome: ClipOutcome, now: float) -> bool:
        """Record how a clip ended, as ``shared.tasks.clip_policy`` allows: a completion always
        (a retried clip may complete), a failure or stop unless the clip completed already (a
        later task never rewrites a completed clip's outcome). False: the record was kept."""
        return await self.clips.end(clip_id, outcome, now)
