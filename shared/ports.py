"""The seams between handlers and the world, in one place.

A handler is ``async def handle(event: Event[SomePayload]) -> None``; it publishes through a
:data:`Publish` and reads and writes through ports such as :class:`shared.storage.ObjectStore`.
Services are wired with typed subscriptions (``runtime.handle(FramesReady, handler)``), so mypy
proves that a handler takes the event it is subscribed to.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from shared.events import Event, EventPayload

P = TypeVar("P", bound=EventPayload)

Handler = Callable[[Event[P]], Awaitable[None]]
"""A handler of one event type: ``Handler[FramesReady]``."""

AnyHandler = Callable[[Event[Any]], Awaitable[None]]
"""What a bus consumer calls: any decoded event (the runtime routes it by type)."""

Publish = Callable[[Event[Any]], Awaitable[None]]
"""Publishes one event, confirmed by the broker when it returns."""
