"""The dispatcher's state in DynamoDB: every transition is a conditional write.

Items of the ``<ns>-tasks`` table:
- ``task#<task id>`` / ``task``: the annotation task;
- ``task#<task id>`` / ``obj#<level>#<job>#<object>``: a data object sent to a job;
- ``clip#<clip id>`` / ``clip``: the clip record (shared.tasks.clip_records), its one owner of
  state from acceptance to outcome.

Duplicated and out-of-order events cannot move anything backwards or twice: each write names
the state it expects (``status = :waiting AND #key = :key``, ``#level = :from``...), and the
loser of a race sees a failed condition, which the caller treats as "already done". Writes
that belong together are ordered so that the last one commits and every earlier one is
idempotent (no transactions: see :meth:`TaskStore.create_task`).

Two sparse indexes: ``by-due`` (due_kind, due_at) holds only what has something due - waiting
objects (next re-send), tasks with a level deadline or a pending LabelsFinalized - so the sweep
reads what is due, not everything; ``by-status`` (status_key, updated_at) lists tasks by status.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from shared.dedup import object_sk, task_pk
from shared.dynamo import (
    conditional,
    from_item,
    is_condition_failure,
    items,
    serialize,
    to_item,
    values,
)
from shared.resources import TASKS
from shared.tasks.clip_records import ClipRecords, clip_key
from shared.tasks.counters import (
    TaskCounters,
    clip_counter,
    job_output_counter,
    task_counter,
)
from shared.tasks.model import (
    AnnotationTask,
    ClipOutcome,
    ClipRecord,
    ClipStatus,
    DataObject,
    HistoryEntry,
    JobResult,
    LateOutput,
    ObjectStatus,
    TaskStatus,
)

if TYPE_CHECKING:
    from shared.aws import AwsClients
    from shared.settings import ServiceSettings

DUE_OBJECT = "object"
DUE_TASK = "task"


def _key(pk: str, sk: str) -> dict[str, Any]:
    return {"pk": {"S": pk}, "sk": {"S": sk}}


def _object_key(obj: DataObject) -> dict[str, Any]:
    return _key(task_pk(obj.task_id), object_sk(obj.level, obj.job, obj.object_id))


def _history(at: float, event: str, detail: str = "") -> dict[str, Any]:
    entry: dict[str, Any] = serialize(
        [HistoryEntry(at=at, event=event, detail=detail).model_dump()]
    )
    return entry


class TaskStore:
    def __init__(self, aws: AwsClients, settings: ServiceSettings) -> None:
        self._aws = aws
        self.table = settings.names.table(TASKS.name)
        self.counters = TaskCounters(aws, self.table)
        self.clips = ClipRecords(aws, self.table)

    # --- encoding ---------------------------------------------------------------------------
    def _task_item(self, task: AnnotationTask, due_at: float | None) -> dict[str, Any]:
        data = task.model_dump(mode="json")
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

    # --- reads ------------------------------------------------------------------------------
    async def get_task(self, task_id: str) -> AnnotationTask | None:
        db = await self._aws.dynamodb()
        found = await db.get_item(
            TableName=self.table, Key=_key(task_pk(task_id), "task"), ConsistentRead=True
        )
        item = found.get("Item")
        return AnnotationTask.model_validate(from_item(item)) if item else None

    async def _task_items(self, task_id: str, prefix: str) -> list[dict[str, Any]]:
        """The items of a task whose sort key starts with ``prefix`` (``obj#``, ``late#``)."""
        db = await self._aws.dynamodb()
        found = items(
            db,
            "query",
            TableName=self.table,
            KeyConditionExpression="pk = :pk AND begins_with(sk, :prefix)",
            ExpressionAttributeValues=values(pk=task_pk(task_id), prefix=prefix),
            ConsistentRead=True,
        )
        return [item async for item in found]

    async def objects(self, task_id: str, level: int | None = None) -> list[DataObject]:
        prefix = "obj#" if level is None else f"obj#{level:02d}#"
        return [DataObject.model_validate(i) for i in await self._task_items(task_id, prefix)]

    async def find_object(self, task_id: str, job: str, object_id: str) -> DataObject | None:
        for obj in await self.objects(task_id):
            if obj.job == job and obj.object_id == object_id:
                return obj
        return None

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

    async def tasks_by_status(self, status: str, limit: int = 1000) -> list[AnnotationTask]:
        found, _ = await self.tasks_page(status, limit)
        return found

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

    async def _update_waiting(
        self,
        obj: DataObject,
        update: str,
        *,
        key: str | None = None,
        still_due: bool = False,
        **named: Any,
    ) -> bool:
        """Update an object only while it waits under ``key`` (by default the key it was read
        with) and, with ``still_due``, is still due when it was read: the guard of every
        send-side write (claim, send, hold, re-key). ``named`` are the update's values."""
        condition = "#s = :waiting AND #k = :key"
        names = {"#s": "status", "#k": "key"}
        if still_due:
            condition += " AND due_at = :due"
            named["due"] = obj.due_at
        if "#keys" in update:
            names["#keys"] = "keys"
        return await self._update(
            Key=_object_key(obj),
            UpdateExpression=update,
            ConditionExpression=condition,
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=values(
                waiting=ObjectStatus.WAITING.value,
                key=obj.key if key is None else key,
                **named,
            ),
        )

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
    async def create_task(
        self, task: AnnotationTask, objects: Sequence[DataObject], level_due: float | None
    ) -> bool:
        """Create a task and its level-1 objects; False if the task existed already.

        No transaction (moto's rolls back by restoring a whole-table copy, which loses
        concurrent writes): the clip's task list is updated first (idempotent), then the task
        (the commit point), then its objects, each only if missing. A crash after the task
        leaves its objects to the redelivered FramesReady, which runs this again.
        """
        db = await self._aws.dynamodb()
        clip_before = await db.update_item(
            ReturnValues="ALL_OLD",
            **self._clip_task_update(task.clip_id, task.task_id, task.created_at),
        )
        if ClipRecord.STORED_STATUS not in clip_before.get("Attributes", {}):
            await self._count_move(None, clip_counter(ClipStatus.LABELING))
        created = await self._put_new(self._task_item(task, level_due))
        if created:
            await self._count_move(None, task_counter(task.status, task.level))
        await self._put_objects(objects)
        return created

    async def _put_objects(self, objects: Sequence[DataObject]) -> None:
        """New objects, each only if missing; counted as created and waiting."""
        written = 0
        for obj in objects:
            written += await self._put_new(self._object_item(obj))
        await self.counters.add({"objects": written, "o_waiting": written})

    async def _put_new(self, item: dict[str, Any]) -> bool:
        """Put an item unless one with its key exists; True if it was written."""
        db = await self._aws.dynamodb()
        return await conditional(
            db.put_item(
                TableName=self.table, Item=item, ConditionExpression="attribute_not_exists(pk)"
            )
        )

    def _clip_task_update(self, clip_id: str, task_id: str, now: float) -> dict[str, Any]:
        """The clip record's write of a task's creation (clip_policy ``task``): the record
        gains the task and, while it has no status (ingesting, or no record), ``labeling``.
        Unconditional, so it can join a transaction."""
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

    async def record_output(self, obj: DataObject, key: str, result: JobResult, now: float) -> bool:
        """Mark an object done with its output; False if it was done already (a duplicate)
        or the key is not one of its keys."""
        recorded = await self._update(
            Key=_object_key(obj),
            UpdateExpression="SET #s = :done, #o = :out, done_at = :now REMOVE due_kind, due_at",
            ConditionExpression="#s = :waiting AND contains(#keys, :key)",
            ExpressionAttributeNames={"#s": "status", "#o": "output", "#keys": "keys"},
            ExpressionAttributeValues=values(
                done=ObjectStatus.DONE.value,
                waiting=ObjectStatus.WAITING.value,
                out=result.model_dump(mode="json"),
                key=key,
                now=now,
            ),
        )
        if recorded:
            await self.counters.add(
                {"outputs": 1, job_output_counter(obj.job): 1, "o_waiting": -1}, at=now
            )
        return recorded

    async def advance(
        self,
        task: AnnotationTask,
        new_objects: Sequence[DataObject],
        now: float,
        level_due: float,
    ) -> bool:
        """Level N is done: its N+1 objects (each only if missing), then the task moves to
        N+1 (the commit point, conditional on its level); False if someone else moved it.

        Objects first: a crash between the two leaves objects that are simply sent, and the
        redelivered LevelCompleted moves the task.
        """
        await self._put_objects(new_objects)
        old = await self._transition(
            Key=_key(task_pk(task.task_id), "task"),
            UpdateExpression="SET #l = :next, level_started_at = :now, "
            "updated_at = :now, level_retriggers = :zero, due_kind = :due_kind, "
            "due_at = :due, history = list_append(history, :h)",
            ConditionExpression="#s = :active AND #l = :from",
            ExpressionAttributeNames={"#l": "level", "#s": "status"},
            ExpressionAttributeValues={
                **values(
                    next=task.level + 1,
                    now=now,
                    zero=0,
                    due_kind=DUE_TASK,
                    due=level_due,
                    active=TaskStatus.ACTIVE.value,
                ),
                ":from": serialize(task.level),
                ":h": _history(now, "level-started", f"level {task.level + 1}"),
            },
        )
        if old is None:
            return False
        active = TaskStatus.ACTIVE
        await self._count_move(
            task_counter(active, task.level), task_counter(active, task.level + 1)
        )
        return True

    async def set_task_status(
        self,
        task_id: str,
        status: TaskStatus,
        expected: Sequence[TaskStatus],
        now: float,
        *,
        due_at: float | None = None,
        reason: str | None = None,
        event: str | None = None,
        level: int | None = None,
    ) -> bool:
        """Move a task to ``status`` if it is in one of ``expected``."""
        sets = ["#s = :status", "status_key = :key", "updated_at = :now"]
        removes: list[str] = []
        attr_values: dict[str, Any] = {
            **values(status=status.value, key=f"task#{status.value}", now=now),
            ":h": _history(now, event or status.value, reason or ""),
        }
        sets.append("history = list_append(history, :h)")
        if due_at is None:
            removes += ["due_kind", "due_at"]
        else:
            sets += ["due_kind = :due_kind", "due_at = :due"]
            attr_values.update(values(due_kind=DUE_TASK, due=due_at))
        if reason is not None:
            sets.append("failure_reason = :reason")
            attr_values.update(values(reason=reason))
        conditions = []
        for i, state in enumerate(expected):
            attr_values[f":e{i}"] = serialize(state.value)
            conditions.append(f"#s = :e{i}")
        condition = "(" + " OR ".join(conditions) + ")"
        names = {"#s": "status"}
        if level is not None:
            condition += " AND #l = :level"
            names["#l"] = "level"
            attr_values[":level"] = serialize(level)
        expression = "SET " + ", ".join(sets) + (" REMOVE " + ", ".join(removes) if removes else "")
        old = await self._transition(
            Key=_key(task_pk(task_id), "task"),
            UpdateExpression=expression,
            ConditionExpression=condition,
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=attr_values,
        )
        if old is None:
            return False
        await self._count_task_move(old, status)
        return True

    async def retrigger_level(self, task: AnnotationTask, now: float, next_due: float) -> bool:
        return await self._update(
            Key=_key(task_pk(task.task_id), "task"),
            UpdateExpression="SET level_retriggers = level_retriggers + :one, "
            "due_at = :due, updated_at = :now, history = list_append(history, :h)",
            ConditionExpression="#s = :active AND #l = :level AND level_retriggers = :count",
            ExpressionAttributeNames={"#s": "status", "#l": "level"},
            ExpressionAttributeValues={
                **values(
                    one=1,
                    due=next_due,
                    now=now,
                    active=TaskStatus.ACTIVE.value,
                    count=task.level_retriggers,
                ),
                ":level": serialize(task.level),
                ":h": _history(now, "level-retriggered", f"level {task.level}"),
            },
        )

    async def claim_send(self, obj: DataObject, lease_until: float) -> bool:
        """Claim the due send of ``obj`` (this key, this due time) before sending it.

        Only the claimant sends, so two replicas never send the same thing twice; a claimant
        that dies before confirming leaves the object due again when the lease runs out.
        """
        return await self._update_waiting(
            obj, "SET due_at = :lease", still_due=True, lease=lease_until
        )

    async def sent(self, obj: DataObject, now: float, next_due: float, generation: int = 1) -> None:
        # done (or re-keyed) meanwhile: nothing left to schedule for this key
        if await self._update_waiting(
            obj,
            "SET send_count = send_count + :one, last_sent_at = :now, "
            "due_at = :next, generation = :g REMOVE held, held_since",
            one=1,
            now=now,
            next=next_due,
            g=generation,
        ):
            await self.counters.add({"sends": 1}, at=now)

    # --- job holds (job_hold.py) ------------------------------------------------------------
    async def hold(self, obj: DataObject, reason: str, now: float, recheck_at: float) -> bool:
        """Hold a due send (its job takes no input): visible with its reason, looked at again
        at ``recheck_at``. Conditional like a claim, so one replica records it."""
        return await self._update_waiting(
            obj,
            "SET held = :r, held_since = if_not_exists(held_since, :now), due_at = :recheck",
            still_due=True,
            r=reason,
            now=now,
            recheck=recheck_at,
        )

    async def new_generation_key(self, obj: DataObject, new_key: str, attempt: int) -> bool:
        """The job was re-created: the object goes to the new job under a new key."""
        return await self._update_waiting(
            obj,
            "SET #k = :new, attempt = :attempt, #keys = list_append(#keys, :newl)",
            still_due=True,
            new=new_key,
            attempt=attempt,
            newl=[new_key],
        )

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
        return await self._update_waiting(
            obj, "SET due_at = :now, due_kind = :kind", now=now, kind=DUE_OBJECT
        )

    async def postpone_level(self, task: AnnotationTask, now: float, next_due: float) -> bool:
        """Move a level deadline without counting a re-trigger (its jobs are held)."""
        return await self._update(
            Key=_key(task_pk(task.task_id), "task"),
            UpdateExpression="SET due_at = :due, updated_at = :now",
            ConditionExpression="#s = :active AND #l = :level",
            ExpressionAttributeNames={"#s": "status", "#l": "level"},
            ExpressionAttributeValues={
                **values(due=next_due, now=now, active=TaskStatus.ACTIVE.value),
                ":level": serialize(task.level),
            },
        )

    async def rekey(
        self, obj: DataObject, expired_key: str, new_key: str, attempt: int, now: float
    ) -> bool:
        """After an expiry: a new key, due now. False if this expiry was handled already."""
        rekeyed = await self._update_waiting(
            obj,
            "SET #k = :new, attempt = :attempt, due_at = :now, "
            "due_kind = :due_kind, expirations = expirations + :one, "
            "#keys = list_append(#keys, :newl), "
            "expired_keys = list_append(expired_keys, :oldl)",
            key=expired_key,
            new=new_key,
            attempt=attempt,
            now=now,
            due_kind=DUE_OBJECT,
            one=1,
            newl=[new_key],
            oldl=[expired_key],
        )
        if rekeyed:
            await self.counters.add({"rekeys": 1, "expirations": 1}, at=now)
        return rekeyed

    async def note_expiry(self, obj: DataObject, expired_key: str, now: float) -> None:
        """Record an expiry that does not lead to a re-send (the task is failing)."""
        if await self._update(
            Key=_object_key(obj),
            UpdateExpression="SET expirations = expirations + :one, "
            "expired_keys = list_append(expired_keys, :oldl)",
            ConditionExpression="#k = :old AND NOT contains(expired_keys, :old)",
            ExpressionAttributeNames={"#k": "key"},
            ExpressionAttributeValues={
                **values(one=1, old=expired_key),
                ":oldl": serialize([expired_key]),
            },
        ):
            await self.counters.add({"expirations": 1}, at=now)

    async def stop_objects(self, task_id: str, status: ObjectStatus = ObjectStatus.FAILED) -> int:
        """Nothing of a failed (or stopped) task is due any more; how many objects changed."""
        changed = 0
        for obj in await self.objects(task_id):
            if obj.status is ObjectStatus.WAITING:
                changed += await self.stop_object(obj, status)
        return changed

    async def stop_object(self, obj: DataObject, status: ObjectStatus) -> bool:
        # An object that stopped waiting since the read (its output came) is left be.
        stopped = await self._update(
            Key=_object_key(obj),
            UpdateExpression="SET #s = :stopped REMOVE due_kind, due_at",
            ConditionExpression="#s = :waiting",
            ExpressionAttributeNames={"#s": "status"},
            ExpressionAttributeValues=values(
                stopped=status.value, waiting=ObjectStatus.WAITING.value
            ),
        )
        if stopped:
            await self.counters.add({"o_waiting": -1})
        return stopped

    async def stop_task(
        self, task_id: str, expected: Sequence[TaskStatus], now: float, by: str, reason: str
    ) -> bool:
        """An operator's stop: the task becomes ``stopped`` (final) if it is in ``expected``."""
        attr_values: dict[str, Any] = {
            **values(
                status=TaskStatus.STOPPED.value,
                key=f"task#{TaskStatus.STOPPED.value}",
                now=now,
                by=by,
            ),
            ":h": _history(now, "stopped", f"by {by}" + (f": {reason}" if reason else "")),
        }
        conditions = []
        for i, state in enumerate(expected):
            attr_values[f":e{i}"] = serialize(state.value)
            conditions.append(f"#s = :e{i}")
        old = await self._transition(
            Key=_key(task_pk(task_id), "task"),
            UpdateExpression="SET #s = :status, status_key = :key, updated_at = :now, "
            "stopped_by = :by, history = list_append(history, :h) REMOVE due_kind, due_at",
            ConditionExpression="(" + " OR ".join(conditions) + ")",
            ExpressionAttributeNames={"#s": "status"},
            ExpressionAttributeValues=attr_values,
        )
        if old is None:
            return False
        await self._count_task_move(old, TaskStatus.STOPPED)
        return True

    async def record_late(self, late: LateOutput) -> None:
        """Keep an output that arrived for a stopped task (one item per key: idempotent)."""
        db = await self._aws.dynamodb()
        data = late.model_dump(mode="json")
        data.update(
            pk=task_pk(late.task_id),
            sk=f"late#{late.job}#{late.object_id}#{late.what}#{late.key}",
            kind="late",
        )
        await db.put_item(TableName=self.table, Item=to_item(data))

    async def late_outputs(self, task_id: str) -> list[LateOutput]:
        return [LateOutput.model_validate(i) for i in await self._task_items(task_id, "late#")]

    async def restart_objects(self, objects: Sequence[DataObject]) -> None:
        """For a retried task: its unfinished objects wait again, due now."""
        db = await self._aws.dynamodb()
        for obj in objects:
            found = await db.put_item(
                TableName=self.table, Item=self._object_item(obj), ReturnValues="ALL_OLD"
            )
            old = from_item(found.get("Attributes") or {})
            waiting_before = old.get("status") == ObjectStatus.WAITING.value
            new_keys = len(obj.keys) - len(old.get("keys", obj.keys))
            await self.counters.add({"o_waiting": 0 if waiting_before else 1, "rekeys": new_keys})

    async def reset_retriggers(self, task_id: str) -> None:
        db = await self._aws.dynamodb()
        await db.update_item(
            TableName=self.table,
            Key=_key(task_pk(task_id), "task"),
            UpdateExpression="SET level_retriggers = :zero REMOVE failure_reason",
            ExpressionAttributeValues=values(zero=0),
        )

    async def set_clip_outcome(self, clip_id: str, outcome: ClipOutcome, now: float) -> bool:
        """Record how a clip ended, as ``shared.tasks.clip_policy`` allows: a completion always
        (a retried clip may complete), a failure or stop unless the clip completed already (a
        later task never rewrites a completed clip's outcome). False: the record was kept."""
        return await self.clips.end(clip_id, outcome, now)
