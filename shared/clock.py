"""Time as a port: services ask a Clock, tests move a FakeClock instead of sleeping."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime:
        """The current time, timezone-aware UTC."""
        ...

    async def sleep(self, seconds: float) -> None: ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


class FakeClock:
    """A clock that only moves when told to; ``sleep`` waits until ``advance`` passes its time."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime(2026, 1, 1, tzinfo=UTC)
        self._changed = asyncio.Condition()

    def now(self) -> datetime:
        return self._now

    async def advance(self, seconds: float) -> None:
        self._now += timedelta(seconds=seconds)
        async with self._changed:
            self._changed.notify_all()

    async def sleep(self, seconds: float) -> None:
        until = self._now + timedelta(seconds=seconds)
        async with self._changed:
            await self._changed.wait_for(lambda: self._now >= until)
