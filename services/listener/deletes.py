"""Handled outputs' SQS deletes, gathered into shared DeleteMessageBatch requests.

Outputs arrive one receive at a time unless many finish at once, so deleting each receive's
messages at once costs one request per output. While the listener runs, a handled output's
delete waits up to ``LAVA_LISTENER__DELETE_BATCH_SECONDS`` for others (10 per request, SQS's
limit) and goes at the latest then, or when ten are waiting, or when the listener stops.
Nothing is lost by waiting: an output not yet deleted when the process dies is offered again
after its visibility timeout, and its event is a duplicate the dispatcher tolerates - the same
as a crash between the publish and the delete. The wait is kept well under the visibility
timeout (settings), so a waiting output is not offered again meanwhile.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import structlog

from shared.loops import pause

log = structlog.get_logger(__name__)

Entry = dict[str, str]
"""One DeleteMessageBatch entry: ``Id`` and ``ReceiptHandle``."""

BATCH = 10  # SQS DeleteMessageBatch takes at most 10 entries


class PendingDeletes:
    """Deletes gathered while :meth:`run` runs; at once when it does not (or ``seconds`` is 0)."""

    def __init__(self, delete: Callable[[list[Entry]], Awaitable[None]], seconds: float) -> None:
        self._delete = delete
        self.seconds = seconds
        self._pending: list[Entry] = []
        self._running = False

    async def add(self, entries: list[Entry]) -> None:
        """Delete ``entries`` now, or with others within ``seconds`` while the loop runs."""
        if not self._running or self.seconds <= 0:
            await self._send(entries)
            return
        self._pending.extend(entries)
        if len(self._pending) >= BATCH:
            await self.flush()

    async def flush(self) -> None:
        """Delete everything waiting, ten to a request."""
        waiting, self._pending = self._pending, []
        await self._send(waiting)

    async def run(self, stop: asyncio.Event) -> None:
        """The loop: gather deletes until ``stop``, flushing every ``seconds``; then the rest."""
        self._running = True
        try:
            while not stop.is_set():
                await pause(stop, self.seconds)
                await self.flush()
        finally:
            self._running = False
            await self.flush()

    @property
    def running(self) -> bool:
        """Whether deletes wait for others now (the loop runs)."""
        return self._running

    @property
    def waiting(self) -> int:
        """How many handled outputs wait for their delete."""
        return len(self._pending)

    async def _send(self, entries: list[Entry]) -> None:
        for start in range(0, len(entries), BATCH):
            # Ids by position: two receives may both hold a copy of one message (a standard
            # queue delivers at least once), and a batch with an Id twice is refused whole.
            chunk = [
                {"Id": str(i), "ReceiptHandle": e["ReceiptHandle"]}
                for i, e in enumerate(entries[start : start + BATCH])
            ]
            try:
                await self._delete(chunk)
            except Exception as exc:  # they are offered again: their events are duplicates
                log.warning(
                    "could not delete handled outputs (they will come again)", error=repr(exc)
                )
