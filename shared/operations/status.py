"""The pipeline's status: what `lava status`, `GET /v1/status` and the dashboard show.

Every number comes from the counter items (``shared.tasks.counters``) or a bounded index read:
the totals are one GetItem, the hours one Query of at most ``hours`` items, waiting objects by
age one COUNT query per age band on the sparse due index (it holds only waiting objects), and
the failures one page of the ``by-status`` index for failed tasks and one for failed clips (those
that failed at ingest have no task: their clip record is where they show). None of it scans,
so a status read costs the same whether the table holds a thousand tasks or a million.
"""

from __future__ import annotations

from pydantic import BaseModel, Field

from shared.tasks.model import ClipFailure
from shared.tasks.store import DUE_OBJECT, TaskStore

# A waiting object's due time is its last send + the re-send interval, so its age since the
# last send is now - (due_at - interval). Bands as (upper bound in seconds, label).
AGE_BANDS = ((60, "< 1 min"), (600, "1-10 min"), (3600, "10-60 min"), (86400, "1-24 h"))
OLDEST = "> 1 day"
# A held object's due time is its next job check, not its last send + the interval, so the
# formula above would place it at about one re-send interval old ("> 1 day" for a 5-day
# interval, though it was held seconds ago). Held objects get a band of their own instead.
HELD = "held"
FAILURES_SHOWN = 20


class StageCount(BaseModel):
    stage: str = Field(
        description="ingested, level N, post-processing, completed, failed, stopped",
        pattern=r"^(ingested|level [1-9][0-9]*|post-processing|completed|failed|stopped)$",
    )
    tasks: int


class Failure(BaseModel):
    task_id: str | None = Field(
        description="The failed task; null when the clip failed before any task existed."
    )
    clip_id: str
    stage: str = Field(
        "task", description="'ingest' (no task: the clip's record), or 'task' (the task's own)."
    )
    reason: str
    updated_at: float


class HourCounts(BaseModel):
    hour: str = Field(description="UTC hour, YYYYMMDDHH")
    sends: int = 0
    rekeys: int = 0
    expirations: int = 0
    outputs: int = 0
    outputs_per_job: dict[str, int] = Field(default_factory=dict)


class PipelineStatus(BaseModel):
    tasks: int = Field(description="Tasks created (every status).")
    tasks_by_status: dict[str, dict[str, int]] = Field(
        description="status -> level -> tasks in it now."
    )
    funnel: list[StageCount]
    clips_by_outcome: dict[str, int]
    data_objects: int
    waiting: int
    waiting_by_age: dict[str, int] = Field(
        description="Waiting data objects by time since their last send; objects held "
        "because their job takes no input are counted under 'held' instead."
    )
    held: dict[str, int] = Field(
        default_factory=dict,
        description="Waiting objects held because their job takes no input ('job: reason').",
    )
    sends: int
    resends: int = Field(description="Same-key re-sends (the 14-day retention rescue).")
    rekeys: int = Field(description="New keys after an expiry or a retry.")
    expirations: int
    outputs: int
    failures: list[Failure]
    hours: list[HourCounts]


def _by_status(totals: dict[str, int]) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {}
    for name, count in totals.items():
        status, _, level = name[2:].rpartition("_")
        # levels tasks have passed through stay listed (at 0) so the funnel keeps its shape
        if name.startswith("t_") and (count or status == "active"):
            out.setdefault(status, {})[level] = count
    return out


def _funnel(by_status: dict[str, dict[str, int]]) -> list[StageCount]:
    created = sum(sum(levels.values()) for levels in by_status.values())
    stages = [StageCount(stage="ingested", tasks=created)]
    stages += [
        StageCount(stage=f"level {level}", tasks=count)
        for level, count in sorted(by_status.get("active", {}).items(), key=lambda i: int(i[0]))
    ]
    post = sum(by_status.get("finalizing", {}).values()) + sum(
        by_status.get("finalized", {}).values()
    )
    stages.append(StageCount(stage="post-processing", tasks=post))
    for name in ("completed", "failed", "stopped"):
        stages.append(StageCount(stage=name, tasks=sum(by_status.get(name, {}).values())))
    return stages


async def pipeline_status(
    store: TaskStore, now: float, resend_interval: float, hours: int = 24
) -> PipelineStatus:
    totals = await store.counters.totals()
    by_status = _by_status(totals)
    waiting_by_age: dict[str, int] = {}
    low_age = 0.0
    for high_age, label in AGE_BANDS:
        waiting_by_age[label] = await _waiting_aged(store, now, resend_interval, low_age, high_age)
        low_age = high_age
    waiting_by_age[OLDEST] = await _waiting_aged(store, now, resend_interval, low_age, 1e12)
    held = await store.held_objects()
    _move_held(waiting_by_age, sum(held.values()), resend_interval)
    failures = await _failures(store)
    hour_items = await store.counters.hours(now - hours * 3600)
    sends, rekeys = totals.get("sends", 0), totals.get("rekeys", 0)
    objects = totals.get("objects", 0)
    return PipelineStatus(
        tasks=sum(n for k, n in totals.items() if k.startswith("t_")),
        tasks_by_status=by_status,
        funnel=_funnel(by_status),
        clips_by_outcome={k[2:]: n for k, n in totals.items() if k.startswith("c_") and n},
        data_objects=objects,
        waiting=totals.get("o_waiting", 0),
        waiting_by_age=waiting_by_age,
        held=held,
        sends=sends,
        resends=max(0, sends - objects - rekeys),
        rekeys=rekeys,
        expirations=totals.get("expirations", 0),
        outputs=totals.get("outputs", 0),
        failures=failures,
        hours=[_hour(hour, counts) for hour, counts in sorted(hour_items.items())],
    )


async def _failures(store: TaskStore) -> list[Failure]:
    """The latest failed tasks and clips that failed at ingest, most recent first."""
    failed, _ = await store.tasks_page("failed", FAILURES_SHOWN)
    found = [
        Failure(
            task_id=t.task_id,
            clip_id=t.clip_id,
            reason=t.failure_reason or "",
            updated_at=t.updated_at,
        )
        for t in failed
    ]
    for clip in await store.clips.failed(FAILURES_SHOWN):
        failure = clip.outcome
        if isinstance(failure, ClipFailure) and failure.stage == "ingest":
            found.append(
                Failure(
                    task_id=None,
                    clip_id=clip.clip_id,
                    stage="ingest",
                    reason=failure.reason,
                    updated_at=clip.updated_at or 0.0,
                )
            )
    found.sort(key=lambda f: f.updated_at, reverse=True)
    return found[:FAILURES_SHOWN]


def _band_of(age: float) -> str:
    return next((label for high, label in AGE_BANDS if age < high), OLDEST)


def _move_held(bands: dict[str, int], held: int, interval: float) -> None:
    """Count held objects in their own band, out of the band their due time put them in (an
    age of about one re-send interval: due_at = now + job check)."""
    looks_like = _band_of(interval)
    bands[looks_like] = max(0, bands[looks_like] - held)
    bands[HELD] = held


async def _waiting_aged(
    store: TaskStore, now: float, interval: float, low_age: float, high_age: float
) -> int:
    # age in [low, high)  <=>  due_at in (now - high + interval, now - low + interval]
    return await store.count_due(
        DUE_OBJECT, now - high_age + interval + 1e-6, now - low_age + interval
    )


def _hour(hour: str, counts: dict[str, int]) -> HourCounts:
    return HourCounts(
        hour=hour,
        sends=counts.get("sends", 0),
        rekeys=counts.get("rekeys", 0),
        expirations=counts.get("expirations", 0),
        outputs=counts.get("outputs", 0),
        outputs_per_job={k[4:]: v for k, v in counts.items() if k.startswith("out_")},
    )
