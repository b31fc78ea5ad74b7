"""The bus against the real RabbitMQ: confirmed publishing, idempotency, recovery.

The acknowledgement policy's scenarios run on this bus and the in-memory one in
``test_ack_policy.py``.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from devstack.testing.events import clip_failed
from shared.aws import AwsClients
from shared.bus import Bus, Topology, UnroutableEvent
from shared.events import Event
from shared.idempotency import IdempotencyGuard
from shared.settings import Settings
from tests.support.broker import drop_connections, queue_depth, wait_until

pytestmark = pytest.mark.integration

TOPOLOGY = Topology(consumers={"probe": ("ClipFailed",)})


@pytest.fixture
async def probe_bus(settings: Settings) -> Any:
    bus = Bus(settings, TOPOLOGY, client_name="lava-test-probe", declare=True)
    await bus.connect()
    yield bus
    await bus.delete_topology()
    await bus.close()


async def test_publish_returns_after_the_broker_confirmed(
    probe_bus: Bus, settings: Settings
) -> None:
    # No consumer: once publish() returns, the broker holds the message durably.
    await probe_bus.publish(clip_failed())
    assert await queue_depth(settings, settings.names.queue("probe")) == 1


async def test_unroutable_publish_raises(probe_bus: Bus) -> None:
    from devstack.testing.events import clip_ingested
    from shared.events import new_event

    # Nothing in this topology is bound to ClipIngested.
    with pytest.raises(UnroutableEvent, match="ClipIngested"):
        await probe_bus.publish(new_event(clip_ingested(), "clip-1"))


async def test_redelivered_event_is_handled_once(
    probe_bus: Bus, aws: AwsClients, settings: Settings
) -> None:
    guard = IdempotencyGuard(aws, settings, consumer="probe")
    effects: list[str] = []
    settled: list[bool] = []

    async def handler(event: Event[Any]) -> None:
        async def work() -> None:
            effects.append(event.event_id)

        settled.append(await guard.run_once(event.event_id, work))

    await probe_bus.consume("probe", handler)
    event = clip_failed()
    await probe_bus.publish(event)
    await probe_bus.publish(event)  # the broker delivering it again
    # both deliveries finished (not merely started): one did the work, the other skipped it
    await wait_until(lambda: len(settled) == 2, timeout=30)
    assert sorted(settled) == [False, True]
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
    other = Bus(settings.replace(broker__delivery_limit=9), TOPOLOGY, declare=True)
    await other.connect()  # the queue keeps its delivery limit; this process says so and goes on
    try:
        await other.publish(clip_failed(reason="from another release"))
        assert await queue_depth(settings, settings.names.queue("probe")) == 1
    finally:
        await other.close()
