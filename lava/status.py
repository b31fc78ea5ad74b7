"""A picture of a running system, read from the dispatcher's table: what `lava status` prints
and what the demo's progress bars follow.

It scans the tasks table (a few attributes per item): fine for tens of thousands of items.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from shared.dynamo import items
from shared.resources import TASKS
from shared.tasks.model import ClipFailure, ClipRecord, ClipStatus, TaskStatus

if TYPE_CHECKING:
    from shared.aws import AwsClients
    from shared.settings import Settings

AGE_BUCKETS = ((60, "< 1 min"), (600, "1-10 min"), (3600, "10-60 min"), (86400, "1-24 h"))


def age_bucket(seconds: float) -> str:
    for limit, name in AGE_BUCKETS:
        if seconds < limit:
            return name
    return "> 1 day"


@dataclass
class TaskRow:
    task_id: str
    clip_id: str
    status: TaskStatus
    level: int
    levels: int
    level_started_at: float
    failure_reason: str | None


@dataclass
class Snapshot:
    tasks: dict[str, TaskRow] = field(default_factory=dict)
    clips: dict[str, ClipRecord] = field(default_factory=dict)
    waiting_by_age: Counter[str] = field(default_factory=Counter)
    waiting: int = 0
    expirations: int = 0
    resends: int = 0
    rekeys: int = 0
    objects: int = 0
    # (job, reason) -> waiting objects held: their job takes no input (dispatcher/jobs.py)
    held: Counter[tuple[str, str]] = field(default_factory=Counter)

    def tasks_by_status_level(self) -> Counter[tuple[str, int]]:
        return Counter((t.status, t.level) for t in self.tasks.values())

    def failures(self) -> list[tuple[str, str]]:
        out = [
            (t.task_id, t.failure_reason or "")
            for t in self.tasks.values()
            if t.status is TaskStatus.FAILED
        ]
        tasks_failed = {t for t, _ in out}
        for clip_id, clip in self.clips.items():
            failure = clip.outcome
            if isinstance(failure, ClipFailure) and failure.task_id not in tasks_failed:
                out.append((clip_id, f"{failure.stage}: {failure.reason}"))
        return sorted(out)

    def clip_status(self, clip_id: str) -> ClipStatus | None:
        """The clip's status, None before its ClipIngested was accepted (no record yet)."""
        clip = self.clips.get(clip_id)
        return clip.status if clip else None


async def snapshot(aws: AwsClients, settings: Settings, now: float | None = None) -> Snapshot:
    now = now or time.time()
    db = await aws.dynamodb()
    table = settings.names.table(TASKS.name)
    snap = Snapshot()
    objects: list[dict[str, Any]] = []
    async for item in items(db, "scan", TableName=table, ConsistentRead=True):
        kind = item.get("kind")
        if kind == "task":
            snap.tasks[item["task_id"]] = TaskRow(
                task_id=item["task_id"],
                clip_id=item["clip_id"],
                status=TaskStatus(item["status"]),
                level=int(item.get("level", 1)),
                levels=len(item.get("levels", [])),
                level_started_at=float(item.get("level_started_at", now)),
                failure_reason=item.get("failure_reason"),
            )
        elif kind == "obj":
            objects.append(item)
        elif kind == "clip":
            clip = ClipRecord.model_validate(item)
            snap.clips[clip.clip_id] = clip
    for obj in objects:
        snap.objects += 1
        sends = int(obj.get("send_count", 0))
        snap.expirations += int(obj.get("expirations", 0))
        snap.rekeys += max(0, len(obj.get("keys", [])) - 1)
        snap.resends += max(0, sends - len(obj.get("keys", [])))
        if obj.get("status") == "waiting":
            snap.waiting += 1
            if obj.get("held"):
                snap.held[(str(obj["job"]), str(obj["held"]))] += 1
            task = snap.tasks.get(obj["task_id"])
            since = task.level_started_at if task else now
            snap.waiting_by_age[age_bucket(now - since)] += 1
    return snap
