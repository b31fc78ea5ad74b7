"""Background loops: a step every so often until the service stops.

Every service has some (the dispatcher's sweep, the listener's job refresh, the emulator's
simulation); they share one shape so that a failing round is logged and retried, never the end
of the loop, and a stop request is answered at once rather than after the next sleep.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any

import structlog

log = structlog.get_logger(__name__)


async def pause(stop: asyncio.Event, seconds: float) -> None:
    """Wait ``seconds``, or less if ``stop`` is set meanwhile."""
    with contextlib.suppress(asyncio.TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=seconds)


async def every(
    stop: asyncio.Event,
    seconds: float | Callable[[], float],
    step: Callable[[], Awaitable[None]],
    failure: str,
    **log_fields: Any,
) -> None:
    """Run ``step``, then pause ``seconds`` (or what ``seconds()`` says after this round),
    until ``stop``; a failed step logs ``failure``."""
    while not stop.is_set():
        try:
            await step()
        except Exception:
            log.exception(failure, **log_fields)
        await pause(stop, seconds() if callable(seconds) else seconds)
