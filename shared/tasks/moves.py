"""A task's status move as one transaction action, with the counters it moves.

Two writers move tasks when their clip's outcome is known: the dispatcher (``TaskStore.
move_tasks``, on ClipFailed and on a ClipCompleted whose tasks were not moved) and
post-processing, whose completion transaction completes the merged tasks together with the
clip record and the dataset entry (``ClipRecords.complete_with``) - so a clip and its tasks
complete in one write, and the dispatcher has nothing left to write. Both write this Update.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

from shared.dedup import task_pk
from shared.dynamo import serialize, values
from shared.tasks.counters import task_counter
from shared.tasks.model import HistoryEntry, TaskStatus


def _history_entry(at: float, event: str, detail: str = "") -> dict[str, Any]:
    """One entry of a task's history, as a list to append."""
    entry: dict[str, Any] = serialize(
        [HistoryEntry(at=at, event=event, detail=detail).model_dump()]
    )
    return entry


@dataclass(frozen=True)
class TaskMove:
    """Move the task ``task_id`` from ``seen`` at ``level`` (the state read or expected)."""

    task_id: str
    seen: TaskStatus
    level: int

    def counts(self, status: TaskStatus) -> dict[str, int]:
        """The task counters the move changes."""
        if status is self.seen:
            return {}
        return {task_counter(self.seen, self.level): -1, task_counter(status, self.level): 1}

    def action(
        self,
        table: str,
        status: TaskStatus,
        now: float,
        reason: str | None = None,
        event: str | None = None,
    ) -> dict[str, Any]:
        """The Update moving the task to ``status``, on the condition that its status and
        level are still the ones seen (so the counters it moves are exact)."""
        sets = [
            "#s = :status",
            "status_key = :key",
            "updated_at = :now",
            "history = list_append(history, :h)",
        ]
        attr_values: dict[str, Any] = {
            **values(
                status=status.value,
                key=f"task#{status.value}",
                now=now,
                seen=self.seen.value,
                level=self.level,
                one=1,
            ),
            ":h": _history_entry(now, event or status.value, reason or ""),
        }
        if reason is not None:
            sets.append("failure_reason = :reason")
            attr_values.update(values(reason=reason))
        # An ended task has nothing due; a revision: decisions read before lose their commit.
        expression = "SET " + ", ".join(sets) + " REMOVE due_kind, due_at ADD #r :one"
        return {
            "Update": {
                "TableName": table,
                "Key": {"pk": {"S": task_pk(self.task_id)}, "sk": {"S": "task"}},
                "UpdateExpression": expression,
                "ConditionExpression": "#s = :seen AND #l = :level",
                "ExpressionAttributeNames": {"#s": "status", "#r": "rev", "#l": "level"},
                "ExpressionAttributeValues": attr_values,
            }
        }


def counts_of(moves: list[TaskMove], status: TaskStatus) -> Counter[str]:
    """The counters every move of ``moves`` to ``status`` changes, summed (``update`` keeps
    the -1s that ``+`` would drop)."""
    total: Counter[str] = Counter()
    for move in moves:
        total.update(move.counts(status))
    return total
