"""Reading queues directly, for assertions about what the broker holds."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import time

import aio_pika
from aio_pika.abc import AbstractIncomingMessage

from shared.bus import PIPELINE_TOPOLOGY, Bus, Topology
from shared.settings import ServiceSettings


async def provision_topology(
    settings: ServiceSettings, topology: Topology = PIPELINE_TOPOLOGY
) -> None:
    """Declare a namespace's topology as provisioning does (services only check it)."""
    async with Bus(settings, topology, client_name="lava-test-provision", declare=True):
        pass


async def get_messages(
    settings: ServiceSettings, queue: str, count: int, timeout: float = 10.0
) -> list[AbstractIncomingMessage]:
    """Take ``count`` messages from ``queue`` (acknowledged), waiting up to ``timeout``."""
    connection = await aio_pika.connect(settings.broker.amqp_url.get_secret_value())
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


async def queue_depth(settings: ServiceSettings, queue: str) -> int:
    connection = await aio_pika.connect(settings.broker.amqp_url.get_secret_value())
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


def drop_connections(namespace: str, reason: str = "lava test") -> int:
    """Force-close the broker connections of one namespace (``<client>@<namespace>``).

    Only this test's connections: other test runs on the same broker are left alone (a
    ``close_all_connections`` would drop theirs too). Returns how many were closed.
    """
    rabbitmqctl = shutil.which("rabbitmqctl")
    if rabbitmqctl is None:
        raise AssertionError("rabbitmqctl is needed to drop broker connections")
    listed = subprocess.run(
        [rabbitmqctl, "list_connections", "pid", "client_properties", "-q", "--no-table-headers"],
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    )
    # Tab-separated: the pid as close_connection wants it, then the properties as an Erlang
    # term in which our name appears as {"connection_name","<client>@<namespace>"}.
    marker = f'@{namespace}"}}'
    closed = 0
    for line in listed.stdout.splitlines():
        pid, _, properties = line.partition("\t")
        if '{"connection_name",' in properties and marker in properties:
            subprocess.run(
                [rabbitmqctl, "close_connection", pid, reason],
                check=False,  # it may have gone by itself meanwhile
                capture_output=True,
                timeout=60,
            )
            closed += 1
    return closed
