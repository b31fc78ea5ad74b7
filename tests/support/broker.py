"""Reading queues directly, for assertions about what the broker holds."""

from __future__ import annotations

import asyncio
import time

import aio_pika
from aio_pika.abc import AbstractIncomingMessage

from shared.settings import Settings


async def get_messages(
    settings: Settings, queue: str, count: int, timeout: float = 10.0
) -> list[AbstractIncomingMessage]:
    """Take ``count`` messages from ``queue`` (acknowledged), waiting up to ``timeout``."""
    connection = await aio_pika.connect(settings.amqp_url)
    try:
        channel = await connection.channel()
        q = await channel.get_queue(queue, ensure=True)
        found: list[AbstractIncomingMessage] = []
        deadline = time.monotonic() + timeout
        while len(found) < count and time.monotonic() < deadline:
            message = await q.get(no_ack=True, fail=False)
            if message is None:
                await asyncio.sleep(0.05)
                continue
            found.append(message)
        return found
    finally:
        await connection.close()


async def queue_depth(settings: Settings, queue: str) -> int:
    connection = await aio_pika.connect(settings.amqp_url)
    try:
        channel = await connection.channel()
        q = await channel.declare_queue(queue, passive=True)
        return int(q.declaration_result.message_count or 0)
    finally:
        await connection.close()


async def wait_until(predicate: object, timeout: float = 10.0, interval: float = 0.05) -> None:
    """Wait for a sync or async predicate to become true; fail the test otherwise."""
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()  # type: ignore[operator]
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return
        if time.monotonic() >= deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        await asyncio.sleep(interval)
