"""The broker as the soak sees it: queue depths, dropped connections, outcomes and dead letters.

Only this run's namespace is touched: other runs share the machine's RabbitMQ, so a
``close_all_connections`` would break them. Reads use short-lived connections whose name does
not carry the namespace, so the soak's own connection drops never hit the soak's observer.
"""

from __future__ import annotations

import shutil
import subprocess

import aio_pika

from bench.soak_verdict import DeadLetter, Outcome
from shared.bus import DEAD_REASON_HEADER
from shared.events import ClipCompleted, ClipFailed, InvalidEvent, decode_event
from shared.settings import Settings

RABBITMQCTL_TIMEOUT_SECONDS = 60


def _rabbitmqctl(*args: str) -> str:
    found = shutil.which("rabbitmqctl")
    if found is None:
        raise RuntimeError(
            "rabbitmqctl is not on PATH: the soak reads queues and drops connections"
        )
    done = subprocess.run(
        [found, *args],
        capture_output=True,
        text=True,
        timeout=RABBITMQCTL_TIMEOUT_SECONDS,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"rabbitmqctl {args[0]} failed: {done.stderr.strip()[:300]}")
    return done.stdout


def queue_depths(prefix: str) -> dict[str, tuple[int, int]]:
    """``rabbitmqctl list_queues`` for one namespace: queue -> (ready, unacknowledged)."""
    out = _rabbitmqctl(
        "list_queues", "name", "messages_ready", "messages_unacknowledged", "-q",
        "--no-table-headers",
    )  # fmt: skip
    depths = {}
    for line in out.splitlines():
        parts = line.split("\t")
        if len(parts) == 3 and parts[0].startswith(f"{prefix}."):
            depths[parts[0]] = (int(parts[1]), int(parts[2]))
    return depths


def drop_connections(namespace: str, reason: str = "lava soak") -> int:
    """Force-close the broker connections named ``<client>@<namespace>``; how many."""
    listed = _rabbitmqctl(
        "list_connections", "pid", "client_properties", "-q", "--no-table-headers"
    )
    # Tab-separated: the pid as close_connection wants it, then the properties as an Erlang
    # term in which the name appears as {"connection_name","<client>@<namespace>"}.
    marker = f'@{namespace}"}}'
    closed = 0
    for line in listed.splitlines():
        pid, _, properties = line.partition("\t")
        if '{"connection_name",' in properties and marker in properties:
            try:  # it may have gone by itself meanwhile
                _rabbitmqctl("close_connection", pid, reason)
            except RuntimeError:
                continue
            closed += 1
    return closed


async def _take_all(settings: Settings, queue: str) -> list[aio_pika.abc.AbstractIncomingMessage]:
    """Every message now in ``queue`` (taken: the soak is the outside world that reads it)."""
    connection = await aio_pika.connect(
        settings.broker.amqp_url.get_secret_value(),
        client_properties={"connection_name": f"lava-soak-observer:{settings.namespace}"},
    )
    try:
        channel = await connection.channel()
        q = await channel.get_queue(queue, ensure=True)
        taken = []
        while (message := await q.get(no_ack=True, fail=False)) is not None:
            taken.append(message)
        return taken
    finally:
        await connection.close()


async def take_outcomes(settings: Settings) -> list[Outcome]:
    """The ClipCompleted/ClipFailed events that reached the outcomes mailbox since last time."""
    found = []
    for message in await _take_all(settings, settings.names.queue("outcomes")):
        try:
            event = decode_event(message.body)
        except InvalidEvent:
            found.append(Outcome("?", "undecodable", message.body[:60].hex()))
            continue
        payload = event.payload
        if isinstance(payload, ClipCompleted):
            found.append(Outcome(payload.clip_id, "ClipCompleted", event.event_id))
        elif isinstance(payload, ClipFailed):
            reason = f"{payload.stage}: {payload.reason}"
            found.append(Outcome(payload.clip_id, "ClipFailed", event.event_id, reason))
    return found


async def take_dead_letters(settings: Settings) -> list[DeadLetter]:
    """What the namespace's dead-letter queues hold, with the reason each message died."""
    letters = []
    for queue in sorted(queue_depths(settings.namespace)):
        if not queue.endswith(".dead"):
            continue
        for message in await _take_all(settings, queue):
            reason = str(message.headers.get(DEAD_REASON_HEADER) or "")
            body = message.body.decode(errors="replace")
            letters.append(DeadLetter(queue, reason, body))
    return letters
