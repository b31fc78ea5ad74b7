"""A retry policy for operations the service owns end to end (on top of botocore's retries).

The original pipeline retried transient AWS errors 8 times, 5 s apart and doubling; the same
defaults live in settings. Waiting goes through the clock, so tests skip the waiting.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

import structlog

from shared.aws import error_code, is_transient
from shared.clock import Clock

log = structlog.get_logger(__name__)

T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
    base_seconds: float = 5.0
    factor: float = 2.0
    attempts: int = 8

    def delay(self, attempt: int) -> float:
        """Pause after the ``attempt``-th failure (1-based)."""
        return self.base_seconds * self.factor ** (attempt - 1)

    async def call(
        self,
        operation: Callable[[], Awaitable[T]],
        *,
        clock: Clock,
        what: str,
        transient: Callable[[BaseException], bool] = is_transient,
    ) -> T:
        """Run ``operation``; transient errors are retried, the last error is raised."""
        attempt = 1
        while True:
            try:
                return await operation()
            except Exception as exc:
                if not transient(exc) or attempt >= self.attempts:
                    raise
                delay = self.delay(attempt)
                log.warning(
                    "transient error; retrying",
                    operation=what,
                    error=error_code(exc),
                    attempt=attempt,
                    retry_in=delay,
                )
                await clock.sleep(delay)
                attempt += 1
