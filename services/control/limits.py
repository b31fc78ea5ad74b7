"""Bounded request bodies and a per-caller budget of mutating calls."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.control.problems import MEDIA_TYPE, TITLES, TYPE_BASE


class BodyLimit:
    """ASGI middleware: a body larger than ``max_bytes`` is refused with 413 before the app
    reads it (Content-Length), or as soon as a chunked body passes the limit."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                try:
                    too_big = int(value) > self.max_bytes
                except ValueError:
                    too_big = True
                if too_big:
                    await _refuse(send, scope.get("path", ""))
                    return
        seen = 0

        async def bounded() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise _TooLarge
            return message

        try:
            await self.app(scope, bounded, send)
        except _TooLarge:
            await _refuse(send, scope.get("path", ""))


class _TooLarge(Exception):
    pass


async def _refuse(send: Send, path: str) -> None:
    body = json.dumps(
        {
            "type": TYPE_BASE + "request-body-too-large",
            "title": TITLES[413],
            "status": 413,
            "instance": path,
        }
    ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", MEDIA_TYPE.encode()),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


@dataclass
class _Bucket:
    tokens: float
    at: float


class MutationBudget:
    """A token bucket per caller: ``per_minute`` mutating calls, refilled continuously, with
    a burst of the same size. One replica's view (each replica keeps its own budget)."""

    def __init__(self, per_minute: int, now: Callable[[], float] = time.monotonic) -> None:
        self.capacity = float(per_minute)
        self.rate = per_minute / 60.0
        self._now = now
        self._buckets: dict[str, _Bucket] = {}

    def take(self, caller: str) -> float:
        """0 when the call may proceed, else the seconds until it may."""
        now = self._now()
        bucket = self._buckets.setdefault(caller, _Bucket(self.capacity, now))
        bucket.tokens = min(self.capacity, bucket.tokens + (now - bucket.at) * self.rate)
        bucket.at = now
        if bucket.tokens >= 1:
            bucket.tokens -= 1
            return 0.0
        return (1 - bucket.tokens) / self.rate
