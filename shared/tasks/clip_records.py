"""The clip records in DynamoDB: each change of ``clip_policy`` as one conditional write.

A record is the ``clip#<id>`` / ``clip`` item of the tasks table. An outcome is one UpdateItem
whose condition is the policy's "moves from" set, returning the item as it was so the clip
counters (``c_<status>``) move exactly once; when the condition does not hold nothing changes.
Acceptance is unconditional (it adds tasks); a task's creation sets a status only if none, in
the task's own commit, conditional on the clip's state it expects (``TaskStore.commit``).
Completion by post-processing writes the record and the dataset entry in one
``TransactWriteItems``, so the clip view and the dataset index cannot disagree
(docs/clipowner.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import structlog
from botocore.exceptions import ClientError

from shared.aws import error_code
from shared.dynamo import conditional, from_item, is_condition_failure, to_item, values
from shared.tasks.clip_policy import MOVES_FROM, TARGET, Change
from shared.tasks.counters import TaskCounters, clip_counter
from shared.tasks.model import (
    ClipCompletion,
    ClipFailure,
    ClipOutcome,
    ClipRecord,
    ClipStatus,
    TaskStatus,
)
from shared.tasks.moves import TaskMove, counts_of

if TYPE_CHECKING:
    from shared.aws import AwsClients

log = structlog.get_logger(__name__)

# Attempts of the completion transaction when another writer changed the record between its
# read and the transaction (rare: two writers of one clip at the same instant).
COMPLETE_ATTEMPTS = 3
FAILED_STAGE = "failed_stage"  # stored beside a failure, so a condition can name its stage
_CHANGE_OF: dict[ClipStatus, Change] = {
    ClipStatus.COMPLETED: "complete",
    ClipStatus.FAILED: "fail",
    ClipStatus.STOPPED: "stop",
}


def clip_key(clip_id: str) -> dict[str, Any]:
    return {"pk": {"S": f"clip#{clip_id}"}, "sk": {"S": "clip"}}


def _condition(change: Change, names: dict[str, str], vals: dict[str, Any]) -> str:
    """The condition "the record is in one of the states ``change`` moves from" (no record
    and ``ingesting`` are both "no ``clip_status`` stored")."""
    allowed = MOVES_FROM[change]
    stored = allowed - {None, ClipStatus.INGESTING}
    states = sorted(s.value for s in stored if s is not None)
    unset = None in allowed or ClipStatus.INGESTING in allowed
    parts = ["attribute_not_exists(#cs)"] if unset else []
    names["#cs"] = "clip_status"
    for i, state in enumerate(states):
        vals[f":from{i}"] = {"S": state}
    if states:
        parts.append("#cs IN (" + ", ".join(f":from{i}" for i in range(len(states))) + ")")
    return " OR ".join(parts)


class ClipRecords:
    def __init__(self, aws: AwsClients, table: str) -> None:
        self._aws = aws
        self.table = table
        self.counters = TaskCounters(aws, table)

    async def get(self, clip_id: str) -> ClipRecord | None:
        db = await self._aws.dynamodb()
        found = await db.get_item(TableName=self.table, Key=clip_key(clip_id), ConsistentRead=True)
        item = found.get("Item")
        return ClipRecord.model_validate(from_item(item)) if item else None

    async def failed(self, limit: int) -> list[ClipRecord]:
        """The most recently failed clips (one page of the ``by-status`` index)."""
        db = await self._aws.dynamodb()
        found = await db.query(
            TableName=self.table,
            IndexName="by-status",
            KeyConditionExpression="status_key = :s",
            ExpressionAttributeValues=values(s=f"clip#{ClipStatus.FAILED.value}"),
            ScanIndexForward=False,
            Limit=limit,
        )
        return [ClipRecord.model_validate(from_item(i)) for i in found.get("Items", [])]

    # --- changes ------------------------------------------------------------------------------
    async def accept(self, clip_id: str, task_ids: Sequence[str], now: float) -> bool:
        """A valid ClipIngested was accepted: the record exists from now on, with its tasks.
        True when there was no record before (the clip is new: nothing of it was made yet).

        A new record has no ``clip_status`` yet: it reads as ``ingesting``, and the first task
        created sets ``labeling`` (the clip link in its commit, ``TaskStore.commit``). A clip that
        failed at ingest is ingesting again (a second conditional write, only then); any other
        state is kept (a later task never rewrites an outcome)."""
        db = await self._aws.dynamodb()
        found = await db.update_item(
            TableName=self.table,
            Key=clip_key(clip_id),
            UpdateExpression="SET clip_id = :clip, kind = :kind, accepted_at = :now, "
            "updated_at = :now ADD tasks :tasks",
            ExpressionAttributeValues={
                **values(clip=clip_id, kind="clip", now=now),
                ":tasks": {"SS": list(task_ids)},
            },
            ReturnValues="ALL_OLD",
        )
        before = from_item(found.get("Attributes") or {})
        if before.get(FAILED_STAGE) != "ingest":
            return not before
        if await conditional(
            db.update_item(
                TableName=self.table,
                Key=clip_key(clip_id),
                UpdateExpression="REMOVE #cs, status_key, detail, #fs",
                ConditionExpression="#cs = :failed AND #fs = :ingest",
                ExpressionAttributeNames={"#cs": "clip_status", "#fs": FAILED_STAGE},
                ExpressionAttributeValues=values(failed=ClipStatus.FAILED.value, ingest="ingest"),
            )
        ):
            await self.counters.add({clip_counter(ClipStatus.FAILED): -1})
        return False

    async def end(self, clip_id: str, outcome: ClipOutcome, now: float) -> bool:
        """A failure, stop or completion; False when the policy keeps the record as it is."""
        sets: dict[str, Any] = {"detail": outcome.model_dump_json()}
        if isinstance(outcome, ClipFailure):
            sets[FAILED_STAGE] = outcome.stage
        moved = await self._change(
            clip_id,
            _CHANGE_OF[outcome.status],
            now,
            sets=sets,
            removes=() if FAILED_STAGE in sets else (FAILED_STAGE,),
        )
        if not moved:
            log.info("clip outcome kept", clip_id=clip_id, refused=outcome.status.value)
        return moved

    async def _change(
        self,
        clip_id: str,
        change: Change,
        now: float,
        *,
        sets: dict[str, Any],
        removes: Sequence[str] = (),
    ) -> bool:
        """One conditional UpdateItem to the change's status; False if the policy says no."""
        status = TARGET[change]
        names: dict[str, str] = {}
        vals = {
            **values(clip=clip_id, kind="clip", now=now, status=status.value),
            ":key": {"S": f"clip#{status.value}"},
        }
        condition = _condition(change, names, vals)
        assigned = ["clip_id = :clip", "kind = :kind", "#cs = :status", "status_key = :key"]
        assigned.append("updated_at = :now")
        for i, (name, value) in enumerate(sets.items()):
            names[f"#x{i}"] = name
            vals[f":x{i}"] = to_item({"v": value})["v"]
            assigned.append(f"#x{i} = :x{i}")
        expression = "SET " + ", ".join(assigned)
        if removes:
            expression += " REMOVE " + ", ".join(removes)
        db = await self._aws.dynamodb()
        try:
            found = await db.update_item(
                TableName=self.table,
                Key=clip_key(clip_id),
                UpdateExpression=expression,
                ConditionExpression=condition,
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=vals,
                ReturnValues="ALL_OLD",
            )
        except ClientError as exc:
            if is_condition_failure(exc):
                return False
            raise
        before = from_item(found.get("Attributes") or {}).get(ClipRecord.STORED_STATUS)
        await self._count(before, status)
        return True

    async def _count(self, before: Any, after: ClipStatus) -> None:
        await self.counters.add(_moves(before, after))

    # --- completion with the dataset entry ----------------------------------------------------
    async def complete_with(
        self,
        clip_id: str,
        completion: ClipCompletion,
        now: float,
        together: Sequence[dict[str, Any]],
        seen: ClipRecord | None = None,
        guess: ClipStatus | None = None,
        tasks: Sequence[TaskMove] = (),
    ) -> bool:
        """The record becomes ``completed`` in the same transaction as ``together`` (the
        dataset entry's Put): both or neither. Conditional on the status read (``seen``, or
        read here) or, without a read, on ``guess`` (the status it most likely has), so the
        counters - riding on the same transaction - move exactly once; re-read and retried
        on a race or a wrong guess.

        ``tasks`` (the merged tasks, as expected: finalized at their last level) complete in
        the same transaction; when one is not as expected (a sweep's publish not confirmed
        yet, a task completed before), the clip completes without them and the caller leaves
        them to the dispatcher. True when they moved."""
        moves = list(tasks)
        attempt = 0
        while attempt < COMPLETE_ATTEMPTS:
            if attempt == 0 and seen is None and guess is not None:
                before: ClipStatus | None = guess
            else:
                record = seen if attempt == 0 and seen is not None else await self.get(clip_id)
                before = _stored(record)
            try:
                await self._transact(clip_id, completion, now, [*together], before, moves)
            except ClientError as exc:
                if error_code(exc) != "TransactionCanceledException" or not _lost_race(exc):
                    raise
                if moves and _lost_at(exc, len(together) + 1, len(moves)):
                    log.info("clip completes without its tasks", clip_id=clip_id)
                    moves = []  # the same attempt again, without them
                    continue
                attempt += 1
                continue
            return bool(moves)
        raise RuntimeError(f"clip {clip_id}: its record kept changing while completing")

    async def _transact(
        self,
        clip_id: str,
        completion: ClipCompletion,
        now: float,
        together: list[dict[str, Any]],
        before: ClipStatus | None,
        moves: list[TaskMove],
    ) -> None:
        done = ClipStatus.COMPLETED.value
        vals = {
            **values(
                clip=clip_id, kind="clip", now=now, status=done, detail=completion.model_dump_json()
            ),
            ":key": {"S": f"clip#{done}"},
        }
        if before is None:
            condition = "attribute_not_exists(#cs)"
        else:
            condition = "#cs = :before"
            vals[":before"] = {"S": before.value}
        update: dict[str, Any] = {
            "Update": {
                "TableName": self.table,
                "Key": clip_key(clip_id),
                "UpdateExpression": "SET clip_id = :clip, kind = :kind, #cs = :status, "
                "status_key = :key, updated_at = :now, detail = :detail REMOVE failed_stage",
                "ConditionExpression": condition,
                "ExpressionAttributeNames": {"#cs": "clip_status"},
                "ExpressionAttributeValues": vals,
            }
        }
        db = await self._aws.dynamodb()
        completed = TaskStatus.COMPLETED
        tasks = [m.action(self.table, completed, now, event="clip-completed") for m in moves]
        # One counters item, one action: the clip's and its tasks' moves together.
        counts = counts_of(moves, completed)
        counts.update(_moves(before and before.value, ClipStatus.COMPLETED))
        counted = self.counters.updates(dict(counts), {}, now)
        actions: list[Any] = [*together, update, *tasks, *counted]
        await db.transact_write_items(TransactItems=actions)


def _moves(before: Any, after: ClipStatus) -> dict[str, int]:
    """The clip counters a move from ``before`` (None: uncounted) to ``after`` changes."""
    if before == after.value:
        return {}
    old = {clip_counter(str(before)): -1} if before else {}
    return {clip_counter(after): 1, **old}


def _stored(record: ClipRecord | None) -> ClipStatus | None:
    """The ``clip_status`` stored (None: no record, or ingesting - stored as no status)."""
    if record is None or record.status is ClipStatus.INGESTING:
        return None
    return record.status


def _lost_at(exc: ClientError, first: int, count: int) -> bool:
    """Whether an action at positions ``first`` to ``first + count - 1`` failed its condition."""
    reasons = exc.response.get("CancellationReasons") or []
    return any(r.get("Code") == "ConditionalCheckFailed" for r in reasons[first : first + count])


def _lost_race(exc: ClientError) -> bool:
    reasons = exc.response.get("CancellationReasons") or []
    return any(r.get("Code") in ("ConditionalCheckFailed", "TransactionConflict") for r in reasons)
