"""Carries out a plan at the edge: commit, send, publish, confirm - in that order.

Commit order and what a crash after each step leaves behind (each crash point is tested in
``tests/test_dispatch_crashes.py``: a failure injected there, then the redelivery converges).
An event's handler acknowledges it only after ``apply`` returns, so a crash brings it back:

- before the commit: nothing written; the redelivered event decides again.
- after the commit: an event's sends are written with their next same-key re-send, a last
  level's task ``finalized``; nothing sent or published. The redelivered event finds its
  transition made and redoes it without writing (policy.py, "Redelivery"): the same keys
  again, LabelsFinalized again under its derived id. The sweep's sends were claimed with the
  short ``send_lease`` instead (no event comes back for them): it re-sends them when the
  claim runs out. A failed task stays due in ``send_lease``: the sweep publishes ClipFailed.
- after the sends: the redelivery sends the same keys once more - a no-op for Ground Truth.
- after the events: the redelivery publishes them again (duplicates by id).
- after the confirmation (the sweep's sends, a failure): done.

When every delivery of an event fails after its commit (dead-lettered, ``shared/acking.py``;
a FramesReady also fails its clip visibly), what the commit wrote stands: its sends go out at
the objects' next periodic re-send (same keys), and a finalized task, due at the re-send
interval until its clip completes, has LabelsFinalized published again by the sweep.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

import structlog
from botocore.exceptions import ClientError

from services.dispatcher.plan import Plan
from services.dispatcher.sender import InputSender, SendFailed, SendInterrupted
from shared.aws import describe_error, is_transient
from shared.clock import Clock
from shared.events import new_event
from shared.ports import Publish
from shared.retry import RetryPolicy
from shared.tasks.plan import Changes
from shared.tasks.store import TaskStore

log = structlog.get_logger(__name__)

T = TypeVar("T")

Step = Callable[[str], Awaitable[None]]
"""Called after each step with its name (``commit``, ``sends``, ``events``): tests crash here."""


class TaskFailure(Exception):
    """Something the task cannot get past; it fails with this reason."""


def _transient(exc: BaseException) -> bool:
    return is_transient(exc) or isinstance(exc, SendInterrupted)


class PlanApplier:
    def __init__(
        self,
        store: TaskStore,
        sender: InputSender,
        publish: Publish,
        clock: Clock,
        retry: RetryPolicy,
        count: Callable[[str], None],
    ) -> None:
        self.store = store
        self.sender = sender
        self.publish = publish
        self.clock = clock
        self.retry = retry
        self.count = count
        self.after_step: Step | None = None

    async def aws(self, what: str, operation: Callable[[], Awaitable[T]]) -> T:
        """An AWS operation under the retry policy; a lasting failure fails the task."""
        try:
            return await self.retry.call(
                operation, clock=self.clock, what=what, transient=_transient
            )
        except (ClientError, SendFailed, SendInterrupted) as exc:
            kind = "transient error persisted" if _transient(exc) else "failed"
            raise TaskFailure(f"{what} {kind} ({describe_error(exc)})") from exc
        except OSError as exc:
            raise TaskFailure(f"{what} failed ({exc!r})") from exc

    async def apply(self, plan: Plan, task_id: str) -> bool:
        """Carry out ``plan``; False when its commit lost a race (nothing else was done)."""
        if plan.commit and not await self.aws(
            "writing the task", lambda: self.store.commit(plan.commit)
        ):
            return False
        for note in plan.notes:
            log.info(note.message, **note.fields)
            if note.counter is not None:
                self.count(note.counter)
        await self._step("commit")
        if plan.sends:
            batch = [(d.obj, d.job, d.carry) for d in plan.sends]
            await self.aws("SNS PublishBatch", lambda: self.sender.send(batch))
            await self._step("sends")
        for out in plan.events:
            event = new_event(out.payload, task_id, event_id=out.event_id, now=self.clock.now)
            await self.publish(event)
        if plan.events:
            await self._step("events")
        await self._confirm(plan.confirm)
        return True

    async def _confirm(self, confirm: Changes) -> None:
        """Each item on its own condition: one that moved meanwhile (its output came) is left."""
        if not confirm or await self.store.commit(confirm):
            return
        if len(confirm.writes) > 1:
            for write in confirm.writes:
                await self.store.commit(Changes(writes=(write,), at=confirm.at))

    async def _step(self, name: str) -> None:
        if self.after_step is not None:
            await self.after_step(name)
