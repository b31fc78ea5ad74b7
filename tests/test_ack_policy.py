"""The acknowledgement policy, row by row, on the in-memory bus and on the real RabbitMQ.

Both buses settle every delivery with ``shared.acking.settle``; these scenarios prove they end
each message in the same place. The in-memory runs take milliseconds; the RabbitMQ runs are
marked ``integration``.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any, Protocol

import aio_pika
import pytest

from devstack.testing.events import clip_failed
from devstack.testing.memory_bus import InMemoryBus
from shared.acking import Reject, deliveries_before, retry_delay
from shared.bus import DEAD_REASON_HEADER, Bus, Topology
from shared.events import Event
from shared.settings import Settings, load_settings
from tests.support.broker import get_messages, queue_depth, wait_until

TOPOLOGY = Topology(consumers={"probe": ("ClipFailed",)})


class Harness(Protocol):
    settings: Settings

    async def publish(self, event: Event[Any]) -> None: ...
    async def publish_raw(self, body: bytes) -> None: ...
    async def consume(self, handler: Any) -> None: ...
    async def settled(self, until: Any) -> None: ...
    async def dead_reasons(self, count: int) -> list[str]: ...
    async def waiting(self) -> int: ...


class MemoryHarness:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.bus = InMemoryBus(settings, TOPOLOGY)

    async def publish(self, event: Event[Any]) -> None:
        await self.bus.publish(event)

    async def publish_raw(self, body: bytes) -> None:
        self.bus.publish_raw(body, "ClipFailed")

    async def consume(self, handler: Any) -> None:
        await self.bus.consume("probe", handler)

    async def settled(self, until: Any) -> None:
        await self.bus.drain()
        assert until()

    async def dead_reasons(self, count: int) -> list[str]:
        await self.bus.drain()
        reasons = [d.reason for d in self.bus.dead_letters("probe")]
        assert len(reasons) == count, reasons
        return reasons

    async def waiting(self) -> int:
        return len(self.bus.waiting("probe"))


class RabbitHarness:
    def __init__(self, settings: Settings, bus: Bus) -> None:
        self.settings = settings
        self.bus = bus

    async def publish(self, event: Event[Any]) -> None:
        await self.bus.publish(event)

    async def publish_raw(self, body: bytes) -> None:
        connection = await aio_pika.connect(self.settings.broker.amqp_url.get_secret_value())
        try:
            channel = await connection.channel()
            exchange = await channel.get_exchange(self.settings.names.exchange)
            await exchange.publish(aio_pika.Message(body), routing_key="ClipFailed")
        finally:
            await connection.close()

    async def consume(self, handler: Any) -> None:
        await self.bus.consume("probe", handler)

    async def settled(self, until: Any) -> None:
        await wait_until(until, timeout=30)

    async def dead_reasons(self, count: int) -> list[str]:
        queue = self.settings.names.dead_letter_queue("probe")
        dead = await get_messages(self.settings, queue, count, timeout=30)
        assert len(dead) == count
        return [str(m.headers[DEAD_REASON_HEADER]) for m in dead]

    async def waiting(self) -> int:
        return await queue_depth(self.settings, self.settings.names.queue("probe"))


@pytest.fixture(params=["memory", pytest.param("rabbitmq", marks=pytest.mark.integration)])
def bus_settings(request: pytest.FixtureRequest) -> tuple[str, Settings]:
    if request.param == "memory":
        return "memory", load_settings(
            namespace="mem", broker__delivery_limit=2, broker__redelivery_backoff_seconds=0.05
        )
    return "rabbitmq", request.getfixturevalue("settings")  # the real broker and moto


@pytest.fixture
async def harness(bus_settings: tuple[str, Settings]) -> AsyncIterator[Harness]:
    kind, settings = bus_settings
    if kind == "memory":
        yield MemoryHarness(settings)
        return
    bus = Bus(settings, TOPOLOGY, client_name="lava-test-probe", declare=True)
    await bus.connect()
    try:
        yield RabbitHarness(settings, bus)
    finally:
        await bus.delete_topology()
        await bus.close()


async def test_a_handler_that_returns_acks_its_message(harness: Harness) -> None:
    received: list[Event[Any]] = []

    async def handler(event: Event[Any]) -> None:
        received.append(event)

    await harness.consume(handler)
    sent = clip_failed(reason="round trip")
    await harness.publish(sent)
    await harness.settled(lambda: len(received) == 1)
    assert received == [sent]
    assert await harness.waiting() == 0


async def test_an_invalid_message_is_dead_lettered_with_its_reason(harness: Harness) -> None:
    handled: list[Event[Any]] = []

    async def handler(event: Event[Any]) -> None:
        handled.append(event)

    await harness.consume(handler)
    body = json.loads(clip_failed().model_dump_json())
    body["payload"]["stage"] = "nowhere"
    await harness.publish_raw(json.dumps(body).encode())
    await harness.publish_raw(b"\x00garbage")
    reasons = sorted(await harness.dead_reasons(2))
    assert "payload.stage" in reasons[0]
    assert "not JSON" in reasons[1]
    assert handled == []


async def test_a_rejected_message_goes_straight_to_the_dead_letters(harness: Harness) -> None:
    calls = 0

    async def handler(event: Event[Any]) -> None:
        nonlocal calls
        calls += 1
        raise Reject("clip belongs to no known drive")

    await harness.consume(handler)
    await harness.publish(clip_failed())
    assert await harness.dead_reasons(1) == ["clip belongs to no known drive"]
    assert calls == 1


async def test_a_failing_handler_is_dead_lettered_on_the_last_delivery(harness: Harness) -> None:
    attempts = 0

    async def handler(event: Event[Any]) -> None:
        nonlocal attempts
        attempts += 1
        raise TimeoutError("S3 is slow today")

    await harness.consume(handler)
    await harness.publish(clip_failed())
    [reason] = await harness.dead_reasons(1)
    # delivery_limit=2: 3 deliveries in all, the last one dead-letters with the last error.
    assert attempts == harness.settings.broker.delivery_limit + 1
    assert "failed 3 times" in reason and "S3 is slow today" in reason


async def test_a_transient_failure_then_success_is_acked_once(harness: Harness) -> None:
    attempts = 0

    async def handler(event: Event[Any]) -> None:
        nonlocal attempts
        attempts += 1
        if attempts == 1:
            raise ConnectionResetError("blip")

    await harness.consume(handler)
    await harness.publish(clip_failed())
    await harness.settled(lambda: attempts == 2)
    assert await harness.dead_reasons(0) == []


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({}, 0),
        ({"x-delivery-count": 2}, 2),
        ({"x-delivery-count": "3"}, 3),
        ({"x-delivery-count": "abc"}, 0),
        ({"x-delivery-count": -4}, 0),
        ({"x-delivery-count": 10**12}, 0),
        ({"x-delivery-count": True}, 0),
        ({"x-delivery-count": 2.5}, 0),
        ({"x-delivery-count": ["1"]}, 0),
        (None, 0),
    ],
)
def test_a_forged_delivery_count_counts_as_a_first_delivery(
    headers: dict[str, Any] | None, expected: int
) -> None:
    assert deliveries_before(headers) == expected


def test_the_requeue_pause_doubles_and_is_capped() -> None:
    settings = load_settings(
        broker__redelivery_backoff_seconds=0.5, broker__redelivery_backoff_max_seconds=3
    )
    assert [retry_delay(settings, n) for n in range(5)] == [0.5, 1.0, 2.0, 3.0, 3.0]
    assert retry_delay(settings, 10**9) == 3.0
