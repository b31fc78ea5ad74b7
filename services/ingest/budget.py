"""A budget of bytes held at once, shared by a producer thread and asyncio consumers.

Ingest holds JPEGs between the encoder and S3 under one: their number then adapts to the
frame size (about 14 at 1080p, 3 at 4K in 8 MiB) and the memory stays what the setting says,
whatever the fps or resolution. An item larger than the whole budget passes alone, so nothing
can wait forever.
"""

from __future__ import annotations

import asyncio


class ByteBudget:
    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.held = 0
        self.peak = 0
        self._waiters: list[asyncio.Future[None]] = []

    def _fits(self, size: int) -> bool:
        return self.held == 0 or self.held + size <= self.limit

    async def acquire(self, size: int) -> None:
        while not self._fits(size):
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            try:
                await waiter
            finally:
                self._waiters.remove(waiter)
        self.held += size
        self.peak = max(self.peak, self.held)

    def release(self, size: int) -> None:
        """Synchronous, so a cancelled upload can give its bytes back from ``finally``."""
        self.held -= size
        for waiter in self._waiters:
            if not waiter.done():
                waiter.set_result(None)
