"""A dispatcher plan: what one decision does, as data - commit, sends, events, confirmation.

:func:`services.dispatcher.policy.decide` returns a :class:`Plan`; the applier
(``services/dispatcher/applier.py``) carries it out in this order:

1. ``commit``  - one request (conditional PutItem or TransactWriteItems, counters riding along);
2. ``sends``   - the input messages to the labeling backend (SNS PublishBatch per input topic);
3. ``events``  - the events to publish (ClipFailed, LabelsFinalized), with derived event ids;
4. ``confirm`` - the writes that record that 2 and 3 happened, each item on its own condition:
   the sweep's sends (claimed with the short lease: their next due time) and a task finalized
   or failed by the sweep or a failure. An event's own sends and LabelsFinalized need none:
   the commit writes their outcome, and the event's redelivery redoes what a crash cut short.

:class:`Draft` is the decision's scratch pad: it starts from the aggregate as read and collects
item changes (each guarded by the revision read), counters, sends and events. It does no I/O.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from shared.dedup import object_sk
from shared.events import EventPayload
from shared.labeling.streaming_job import StreamingJob
from shared.tasks.model import AnnotationTask, DataObject, LateOutput
from shared.tasks.plan import NEW, Changes, LinkClip, PutLate, PutObject, PutTask, Write


@dataclass(frozen=True)
class Dispatch:
    """One input message: ``obj`` (under its current key) to ``job``, carrying ``carry``."""

    obj: DataObject
    job: StreamingJob
    carry: dict[str, Any] | None = None
    retrigger: bool = False  # sent because its level was overdue (not because it was due)


@dataclass(frozen=True)
class Outbound:
    """An event to publish, with the id that makes a re-publish a duplicate."""

    payload: EventPayload
    event_id: str


@dataclass(frozen=True)
class Note:
    """What happened, for the logs and the dispatcher's action counters."""

    message: str
    counter: str | None = None
    fields: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Plan:
    commit: Changes = field(default_factory=Changes)
    sends: tuple[Dispatch, ...] = ()
    events: tuple[Outbound, ...] = ()
    confirm: Changes = field(default_factory=Changes)
    reject: str | None = None  # a malformed event: to the dead-letter queue with this reason
    notes: tuple[Note, ...] = ()
    outcome: str | None = None  # the sweep's word for what happened to the task

    @property
    def empty(self) -> bool:
        return not (self.commit or self.sends or self.events or self.confirm)


def object_key(obj: DataObject) -> str:
    """The data object's sort key: its identity within the task."""
    return object_sk(obj.level, obj.job, obj.object_id)


class Draft:
    """The plan under construction, over the aggregate as read (pure; local to one decision)."""

    def __init__(self, task: AnnotationTask | None, objects: tuple[DataObject, ...]) -> None:
        self.read_task = task
        self.task = task
        self.read = {object_key(o): o for o in objects}
        self.objects = dict(self.read)
        self._task_changed = False
        self._changed: list[str] = []
        # Sends claimed with the short lease and confirmed after they went out: the sweep's
        # (no event comes back for them). An event's sends are committed with their next
        # re-send instead; its redelivery re-sends them (policy.py, "Redelivery").
        self.lease_sends = False
        self.late: list[PutLate] = []
        self.link: LinkClip | None = None
        self.counts: Counter[str] = Counter()
        self.hourly: Counter[str] = Counter()
        self._sends: dict[str, tuple[StreamingJob, dict[str, Any] | None, bool]] = {}
        self.events: list[Outbound] = []
        self.confirm_task: AnnotationTask | None = None
        self.confirm_counts: Counter[str] = Counter()
        self.notes: list[Note] = []
        self.outcome: str | None = None
        self.reject: str | None = None

    # --- changes -----------------------------------------------------------------------------
    def set_task(self, task: AnnotationTask) -> None:
        self.task = task
        self._task_changed = True

    def set_object(self, obj: DataObject) -> None:
        key = object_key(obj)
        self.objects[key] = obj
        if key not in self._changed:
            self._changed.append(key)

    def send(
        self,
        obj: DataObject,
        job: StreamingJob,
        carry: dict[str, Any] | None,
        retrigger: bool = False,
    ) -> None:
        """Send ``obj`` (as it finally is in this plan) to ``job`` after the commit."""
        self._sends[object_key(obj)] = (job, carry, retrigger)

    def sending(self, obj: DataObject) -> bool:
        return object_key(obj) in self._sends

    def unsend(self, obj: DataObject) -> None:
        self._sends.pop(object_key(obj), None)

    def put_late(self, late: LateOutput) -> None:
        self.late.append(PutLate(late))

    def count(self, hourly: bool = False, **changes: int) -> None:
        self.counts.update(changes)
        if hourly:
            self.hourly.update(changes)

    def move(self, before: str | None, after: str, *, on_confirm: bool = False) -> None:
        """One item moves from counter ``before`` (None: it is new) to ``after``, counted by
        the commit or, ``on_confirm``, by the confirmation."""
        if before == after:
            return
        counts = self.confirm_counts if on_confirm else self.counts
        counts[after] += 1
        if before is not None:
            counts[before] -= 1

    def note(self, message: str, counter: str | None = None, **fields: Any) -> None:
        self.notes.append(Note(message, counter, fields))

    # --- queries -----------------------------------------------------------------------------
    def find(self, job: str, object_id: str) -> DataObject | None:
        return next(
            (o for o in self.objects.values() if o.job == job and o.object_id == object_id), None
        )

    def of_level(self, level: int) -> list[DataObject]:
        return sorted((o for o in self.objects.values() if o.level == level), key=object_key)

    # --- the plan ----------------------------------------------------------------------------
    def _writes(self) -> tuple[Write, ...]:
        writes: list[Write] = []
        if self._changed and self.read_task is not None and self.task is not None:
            # Every decision over the aggregate bumps the task's revision, even one that only
            # changes an object: two outputs of one level decided at once cannot both commit
            # (the loser decides again, sees the level complete, and moves it).
            self._task_changed = True
        if self._task_changed and self.task is not None:
            expected = NEW if self.read_task is None else self.read_task.rev
            writes.append(PutTask(_bumped(self.task, expected), expected))
        for key in self._changed:
            before = self.read.get(key)
            expected = NEW if before is None else before.rev
            writes.append(PutObject(_bumped(self.objects[key], expected), expected))
        return (*writes, *self.late)

    def committed(self, obj: DataObject) -> DataObject:
        """``obj`` as the commit writes it (its revision bumped)."""
        before = self.read.get(object_key(obj))
        bumped: DataObject = _bumped(obj, NEW if before is None else before.rev)
        return bumped

    def _confirm(self, next_due: float) -> tuple[Write, ...]:
        """After the sends: each leased send's next (same-key) re-send; a finalized task."""
        writes: list[Write] = []
        for key in self._sends if self.lease_sends else ():
            sent = self.committed(self.objects[key])
            after = sent.model_copy(update={"due_at": next_due, "rev": sent.rev + 1})
            writes.append(PutObject(after, sent.rev))
        if self.confirm_task is not None and self.task is not None:
            rev = self._committed_task_rev() if self._task_changed else self.task.rev
            writes.append(PutTask(self.confirm_task.model_copy(update={"rev": rev + 1}), rev))
        return tuple(writes)

    def _committed_task_rev(self) -> int:
        return 1 if self.read_task is None else self.read_task.rev + 1

    def plan(self, at: float, next_due: float) -> Plan:
        """The plan; ``next_due`` is when a sent object is due for its same-key re-send."""
        commit = Changes(
            writes=self._writes(),
            counts={k: v for k, v in self.counts.items() if v},
            hourly={k: v for k, v in self.hourly.items() if v},
            at=at,
            link=self.link,
        )
        confirm = Changes(
            writes=self._confirm(next_due),
            counts={k: v for k, v in self.confirm_counts.items() if v},
            at=at,
        )
        sends = tuple(
            Dispatch(self.committed(self.objects[key]), job, carry, retrigger)
            for key, (job, carry, retrigger) in self._sends.items()
        )
        return Plan(
            commit=commit,
            sends=sends,
            events=tuple(self.events),
            confirm=confirm,
            notes=tuple(self.notes),
            outcome=self.outcome,
        )


def _bumped(item: Any, expected: int) -> Any:
    return item.model_copy(update={"rev": 1 if expected == NEW else expected + 1})
