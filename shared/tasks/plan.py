"""What a decision writes to the tasks table: whole items, each guarded by the revision read.

The policy (``services/dispatcher/policy.py``) returns these as data; :meth:`TaskStore.commit`
carries one :class:`Changes` out in ONE request - a conditional PutItem when a single item
changes and nothing is counted, a ``TransactWriteItems`` otherwise (the counters ride along as
an ``ADD`` on the counters items). Every put names the revision it expects (``rev``, bumped by
every writer of the item): a writer that read an older state loses, writes nothing, and reads
again. That is the optimistic lock of the task aggregate (task item + its data objects).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from shared.tasks.model import AnnotationTask, DataObject, LateOutput

NEW = -1  # expected revision of an item that must not exist yet


@dataclass(frozen=True)
class PutTask:
    """The task item as it is to be; ``expected`` is the revision read (NEW: create)."""

    task: AnnotationTask
    expected: int


@dataclass(frozen=True)
class PutObject:
    """A data object as it is to be; ``expected`` is the revision read (NEW: create)."""

    obj: DataObject
    expected: int


@dataclass(frozen=True)
class PutLate:
    """An output for a stopped task, kept aside (one item per key and kind: idempotent)."""

    late: LateOutput


@dataclass(frozen=True)
class LinkClip:
    """The task joins its clip's record, in the commit's transaction (task and record change
    together). ``first``: the event says this is the clip's first task (its workflow is the
    clip's first), so the commit first expects a clip without a status yet - one it counts as
    labeling; the store tries the other expectation when the record says otherwise."""

    clip_id: str
    task_id: str
    at: float
    first: bool = True


Write = PutTask | PutObject | PutLate


@dataclass(frozen=True)
class Changes:
    """One commit: item writes that succeed or fail together, and the counters they move."""

    writes: tuple[Write, ...] = ()
    counts: dict[str, int] = field(default_factory=dict)
    hourly: dict[str, int] = field(default_factory=dict)  # counted in the hour of ``at``
    at: float = 0.0
    link: LinkClip | None = None

    def __bool__(self) -> bool:
        return bool(self.writes or self.link)
