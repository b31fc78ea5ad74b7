"""Gold clips mixed into a workflow's stream (docs/quality.md).

After each real clip of a workflow, a gold copy follows with probability ``rate / (1 - rate)``,
so gold is ``rate`` of what the workers get. The draw and the choice of gold clip come from a
hash of the real task's id: a redelivered FramesReady makes the same copy, and the copy's task
is created conditionally like any other (once). The copy is a new task on the gold clip's
sequence with a made-up clip id shaped like a real one and fresh dedup keys; what a worker is
sent (the sequence, a key) carries no gold mark - the mark (:class:`GoldRef`) stays in the
task record and LabelsFinalized.
"""

from __future__ import annotations

import hashlib
from typing import Protocol

from shared.clock import Clock
from shared.events import FramesReady
from shared.quality.gold_clips import GoldClip, copy_ids


class GoldSource(Protocol):
    async def of(self, workflow: str) -> list[GoldClip]: ...


def _draw(task_id: str, purpose: str) -> float:
    """A number in [0, 1) fixed by the task id."""
    digest = hashlib.sha256(f"{purpose}|{task_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


class GoldMixer:
    def __init__(
        self, source: GoldSource, rate: float, refresh_seconds: float, clock: Clock
    ) -> None:
        self.source = source
        self.rate = rate
        self.refresh_seconds = refresh_seconds
        self.clock = clock
        self._cache: dict[str, tuple[float, list[GoldClip]]] = {}

    async def _gold(self, workflow: str) -> list[GoldClip]:
        now = self.clock.now().timestamp()
        cached = self._cache.get(workflow)
        if cached is None or now - cached[0] >= self.refresh_seconds:
            cached = (now, await self.source.of(workflow))
            self._cache[workflow] = cached
        return cached[1]

    async def copy_after(self, p: FramesReady) -> FramesReady | None:
        """The gold copy to start after real task ``p``, or None."""
        if self.rate <= 0 or p.gold is not None:
            return None
        if _draw(p.task_id, "mix") >= self.rate / (1 - self.rate):
            return None
        choices = [g for g in await self._gold(p.workflow) if g.clip_id != p.clip_id]
        if not choices:
            return None
        gold = choices[int(_draw(p.task_id, "pick") * len(choices))]
        clip_id, task_id = copy_ids(gold, p.task_id)
        return FramesReady(
            task_id=task_id,
            clip_id=clip_id,
            workflow=gold.workflow,
            clip_workflows=[gold.workflow],
            drive=gold.drive,
            clip=gold.clip,
            frames=gold.frames,
            gold=gold.ref,
        )
