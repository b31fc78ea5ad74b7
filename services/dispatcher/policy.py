"""The dedup-key and resend policy, pure: ``decide(aggregate, event, now) -> Plan``.

The aggregate is one annotation task with its data objects (one Query over its partition) and
the view of its streaming jobs; the plan is data (``plan.py``). No I/O, no awaits: every case
below is a pure test (``tests/test_policy.py``).

| event                    | task / data object         | plan                                    |
|--------------------------|----------------------------|-----------------------------------------|
| Start (FramesReady)      | no task                    | create task + level-1 objects, send     |
|                          |                            | (hold instead: job not InProgress)      |
| Start                    | workflow or job unknown    | create the task failed; ClipFailed      |
| Start                    | task exists (a duplicate)  | send what is due; its level's again     |
| Output (LevelCompleted)  | no object / key never sent | reject (dead-letter queue, with reason) |
| Output                   | task stopped               | keep it aside as a late output          |
| Output                   | task failed / missing      | ignore                                  |
| Output                   | object waiting             | record it; level complete: next level   |
|                          |                            | (create + send) or LabelsFinalized      |
| Output                   | object done (a duplicate)  | next level's sends again (same keys) or |
|                          |                            | LabelsFinalized again (same event id)   |
| Returned (TaskExpired,   | current key, waiting       | NEW key (Ground Truth has seen the old  |
| retryable LevelFailed)   |                            | one), send now                          |
| Returned                 | more than max_expirations  | note expiry; fail the task (labeling)   |
| Returned                 | old key / not waiting      | ignore: one new key per expiry, no more |
|                          |                            | (its level sent again, its new key too) |
| Returned, LabelingFailed | task stopped               | keep it aside as a late output          |
| LabelingFailed           | task active                | fail the task (ClipFailed, labeling)    |
| Sweep                    | object due, job InProgress | re-send, SAME key (no-op or rescue)     |
| Sweep, any send          | job not InProgress         | hold (reason shown), look after recheck |
| Sweep, any send          | job re-created             | new key, then send                      |
| Sweep                    | level overdue              | re-trigger: same keys, re-send the rest |
| Sweep                    | level overdue, all held    | postpone the deadline (not workers)     |
| Sweep                    | level_max_retriggers done  | fail the task (ClipFailed, labeling)    |
| Sweep                    | finalizing / failed, due   | LabelsFinalized / ClipFailed again      |
|                          |                            | (a crash before the publish)            |
| Sweep                    | finalized, due (its clip   | LabelsFinalized again (same id); due    |
|                          | not completed)             | again at the re-send interval           |
| Sweep                    | stopped, object waiting    | the object stops                        |
| Abort (AWS error)        | any                        | fail the task, its reason (dispatch)    |

Sends are claimed in the commit (``send_count`` + 1), so only the writer whose commit won sends.

**Redelivery.** An event's handler acknowledges it only after its plan is carried out, so a
crash between the commit and the sends or publishes brings the event back. An event's commit
therefore writes each send's next same-key re-send (``due_at`` = now + re-send interval) and a
last level's task ``finalized`` at once, with nothing to confirm; the redelivered event finds
its transition made and redoes it without writing: a repeated FramesReady sends its task's
current level's waiting objects again, a repeated output the next level's (or publishes
LabelsFinalized again, same event id), a repeated return its level's (its new key among them).
Same keys: a no-op for Ground Truth when the first send went out. A finalized task stays due at
the re-send interval until its clip completes (ClipCompleted clears it), so a LabelsFinalized
whose event never came back is published again by the sweep. The sweep's own sends have no
event to come back, so they are claimed with the short send lease and confirmed after the
send; failures keep the lease too (the sweep publishes ClipFailed again).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from services.dispatcher.plan import Draft, Plan
from services.dispatcher.policy_cases import (
    abort,
    labeling_failed,
    output,
    returned,
    start,
    sweep,
)
from services.dispatcher.policy_types import (
    Abort,
    LabelingFailed,
    Output,
    PolicyEvent,
    Returned,
    Rules,
    Start,
    Sweep,
)
from shared.labeling.streaming_job import StreamingJob
from shared.tasks.model import AnnotationTask, DataObject

__all__ = [
    "Abort",
    "LabelingFailed",
    "Output",
    "PolicyEvent",
    "Returned",
    "Rules",
    "Start",
    "Sweep",
    "TaskAggregate",
    "decide",
]


@dataclass(frozen=True)
class TaskAggregate:
    """One task as read in one Query, the jobs it sends to, and the policy's durations."""

    task: AnnotationTask | None
    objects: tuple[DataObject, ...]
    rules: Rules
    jobs: Mapping[str, StreamingJob] = field(default_factory=dict)


def decide(aggregate: TaskAggregate, event: PolicyEvent, now: float) -> Plan:
    """What to do about ``event`` given the task as read: a plan, never an effect."""
    draft = Draft(aggregate.task, aggregate.objects)
    draft.lease_sends = isinstance(event, Sweep)  # no event comes back for the sweep's sends
    ctx: dict[str, Any] = {"rules": aggregate.rules, "jobs": aggregate.jobs, "now": now}
    match event:
        case Start():
            start(draft, event, **ctx)
        case Output():
            output(draft, event, **ctx)
        case Returned():
            returned(draft, event, **ctx)
        case LabelingFailed():
            labeling_failed(draft, event, **ctx)
        case Sweep():
            sweep(draft, event, **ctx)
        case Abort():
            abort(draft, event, **ctx)
    if draft.reject is not None:
        return Plan(reject=draft.reject)
    return draft.plan(now, now + aggregate.rules.resend_interval)
