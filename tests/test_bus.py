"""The bus against the real RabbitMQ: publishing, the acknowledgement policy, recovery."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aio_pika
import pytest

from shared.acking import Reject
from shared.aws import AwsClients
from shared.bus import DEAD_REASON_HEADER, Bus, Topology, UnroutableEvent
from shared.events import Event
from shared.idempotency import IdempotencyGuard
from shared.settings import Settings
from tests.support.broker import drop_connections, get_messages, queue_depth, wait_until
from tests.support.events import clip_failed

pytestmark = pytest.mark.integration

TOPOLOGY = Topology(consumers={"probe": ("ClipFailed",)})


@pytest.fixture
async def probe_bus(settings: Settings) -> Any:
    bus = Bus(settings, TOPOLOGY, client_name="lava-test-probe")
    await bus.connect()
    yield bus
    await bus.delete_topology()
    await bus.close()


async def test_publish_consume_round_trip(probe_bus: Bus) -> None:
    received: list[Event[Any]] = []

    async def handler(event: Event[Any]) -> None:
        received.append(event)

    await probe_bus.consume("probe", handler)
    sent = clip_failed(reason="round trip")
    await probe_bus.publish(sent)
    await wait_until(lambda: len(received) == 1)
    assert received[0] == sent


async def test_publish_returns_after_the_broker_confirmed(
    probe_bus: Bus, settings: Settings
) -> None:
    # No consumer: once publish() returns, the broker holds the message durably.
    await probe_bus.publish(clip_failed())
    assert await queue_depth(settings, settings.names.queue("probe")) == 1


async def test_unroutable_publish_raises(probe_bus: Bus) -> None:
    from shared.events import new_event
    from tests.support.events import clip_ingested

    # Nothing in this topology is bound to ClipIngested.
    with pytest.raises(UnroutableEvent, match="ClipIngested"):
        await probe_bus.publish(new_event(clip_ingested(), "clip-1"))


async def test_invalid_message_is_dead_lettered_with_its_reason(
    probe_bus: Bus, settings: Settings
) -> None:
    handled: list[Event[Any]] = []

    async def handler(event: Event[Any]) -> None:
        handled.append(event)

    await probe_bus.consume("probe", handler)
    connection = await aio_pika.connect(settings.amqp_url)
    channel = await connection.channel()
    exchange = await channel.get_exchange(settings.names.exchange)
    body = json.loads(clip_failed().model_dump_json())
    body["payload"]["stage"] = "nowhere"
    await exchange.publish(aio_pika.Message(json.dumps(body).encode()), routing_key="ClipFailed")
    await exchange.publish(aio_pika.Message(b"\x00garbage"), routing_key="ClipFailed")
    await connection.close()

    dead = await get_messages(settings, settings.names.dead_letter_queue("probe"), 2)
    reasons = sorted(str(m.headers[DEAD_REASON_HEADER]) for m in dead)
    assert "payload.stage" in reasons[0]
    assert "not JSON" in reasons[1]
    assert handled == []
    assert await queue_depth(settings, settings.names.queue("probe")) == 0


async def test_rejected_message_goes_straight_to_the_dead_letter_queue(
    probe_bus: Bus, settings: Settings
) -> None:
    calls = 0

    async def handler(event: Event[Any]) -> None:
        nonlocal calls
        calls += 1
        raise Reject("clip belongs to no known drive")

    await probe_bus.consume("probe", handler)
    await probe_bus.publish(clip_failed())
    dead = await get_messages(settings, settings.names.dead_letter_queue("probe"), 1)
    assert dead[0].headers[DEAD_REASON_HEADER] == "clip belongs to no known drive"
    assert calls == 1


async def test_failing_handler_is_dead_lettered_after_the_delivery_limit(
    probe_bus: Bus, settings: Settings
) -> None:
    attempts = 0

    async def handler(event: Event[Any]) -> None:
        nonlocal attempts
        attempts += 1
        raise TimeoutError("S3 is slow today")

    await probe_bus.consume("probe", handler)
    await probe_bus.publish(clip_failed())
    dead = await get_messages(settings, settings.names.dead_letter_queue("probe"), 1)
    assert len(dead) == 1
    reason = str(dead[0].headers[DEAD_REASON_HEADER])
    # delivery_limit=2 in the test settings: 3 deliveries in all.
    assert attempts == settings.delivery_limit + 1
    assert "failed 3 times" in reason and "S3 is slow today" in reason


async def test_transient_failure_then_success_is_acked_once(
    probe_bus: Bus, settings: Settings
) -> None:
    attempts = 0

    async def handler(event: Event[Any]) -> None:
        nonlocal attempts
        attempts += 1
        if attempts == 1:
            raise ConnectionResetError("blip")

    await probe_bus.consume("probe", handler)
    await probe_bus.publish(clip_failed())
    await wait_until(lambda: attempts == 2)
    await asyncio.sleep(0.3)
    assert attempts == 2
    assert await queue_depth(settings, settings.names.dead_letter_queue("probe")) == 0


async def test_redelivered_event_is_handled_once(
    probe_bus: Bus, aws: AwsClients, settings: Settings
) -> None:
    guard = IdempotencyGuard(aws, settings, consumer="probe")
    effects: list[str] = []
    seen: list[str] = []

    async def handler(event: Event[Any]) -> None:
        seen.append(event.event_id)

        async def work() -> None:
            effects.append(event.event_id)

        await guard.run_once(event.event_id, work)

    await probe_bus.consume("probe", handler)
    event = clip_failed()
    await probe_bus.publish(event)
    await probe_bus.publish(event)  # the broker delivering it again
    await wait_until(lambda: len(seen) == 2)
    assert effects == [event.event_id]


async def test_guard_releases_a_failed_claim(aws: AwsClients, settings: Settings) -> None:
    guard = IdempotencyGuard(aws, settings, consumer="probe")

    async def fail() -> None:
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        await guard.run_once("e-1", fail)
    ran: list[int] = []

    async def ok() -> None:
        ran.append(1)

    assert await guard.run_once("e-1", ok) is True
    assert await guard.run_once("e-1", ok) is False
    assert ran == [1]


async def test_consumer_and_publisher_recover_after_the_broker_drops_connections(
    probe_bus: Bus,
) -> None:
    received: list[str] = []

    async def handler(event: Event[Any]) -> None:
        received.append(event.payload.reason)

    await probe_bus.consume("probe", handler)
    await probe_bus.publish(clip_failed(reason="before"))
    await wait_until(lambda: received == ["before"])

    before = probe_bus.reconnects
    dropped = await asyncio.to_thread(drop_connections, probe_bus.names.prefix)
    assert dropped >= 1
    # aio-pika 10 reconnects at once, so "disconnected" may last microseconds: wait for the
    # reconnect itself, not for a state a poll could miss.
    await wait_until(lambda: probe_bus.reconnects > before, timeout=30)
    await probe_bus.publish(clip_failed(reason="after"))
    await wait_until(lambda: "after" in received, timeout=30)
    assert probe_bus.connected


async def test_a_process_with_other_queue_settings_still_connects(
    probe_bus: Bus, settings: Settings
) -> None:
    other = Bus(settings.model_copy(update={"delivery_limit": 9}), TOPOLOGY)
    await other.connect()  # the queue keeps its delivery limit; this process says so and goes on
    try:
        await other.publish(clip_failed(reason="from another release"))
        assert await queue_depth(settings, settings.names.queue("probe")) == 1
    finally:
        await other.close()
