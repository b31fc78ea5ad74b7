"""The event bus on RabbitMQ: topology, confirmed publishing, and one acknowledgement policy.

Topology (names from the namespace): one durable topic exchange, routing key = event type; per
consumer a durable quorum queue bound to the types it consumes, with a delivery limit and a
dead-letter exchange + queue. Only provisioning declares it (``Bus(declare=True)``: `lava stack
provision`, the local all-in-one pipeline, test fixtures); services check it passively when they
connect (their broker users may not configure anything, see ``shared/broker_identities.py``).

Trust: every publish carries ``user_id`` = the connection's user, which the broker validates.
A consumer connected as one of the namespace's component identities refuses (dead-letters) an
event whose ``user_id`` is not a component allowed to publish that type. Bodies larger than
``max_event_bytes`` are refused before JSON parsing; headers are parsed defensively.

Every delivery is settled by the acknowledgement policy in :mod:`shared.acking` (ack, requeue
with backoff, or dead-letter with the reason in ``x-lava-dead-reason``); this module only carries
the settlement out on RabbitMQ.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urlsplit

import aio_pika
import aiormq
import structlog
from aio_pika.abc import (
    AbstractChannel,
    AbstractExchange,
    AbstractIncomingMessage,
    AbstractQueue,
    AbstractRobustConnection,
)
from pamqp.commands import Basic

from shared import fault_hooks, tracing
from shared.acking import OnDead, Settlement, deliveries_before, settle
from shared.broker_identities import component_of
from shared.events import Event, EventPayload, bounded_reason, encode_event, known_event_type
from shared.names import Namespace
from shared.ports import AnyHandler
from shared.settings import ServiceSettings

log = structlog.get_logger(__name__)

DEAD_REASON_HEADER = "x-lava-dead-reason"
DEAD_CONSUMER_HEADER = "x-lava-dead-consumer"
DEAD_ROUTING_KEY_HEADER = "x-lava-original-routing-key"


class UnroutableEvent(RuntimeError):
    """A mandatory publish that no queue took: the topology is missing a binding."""


class TopologyMissing(RuntimeError):
    """The namespace's exchange is not there: provisioning has not run."""


def broker_user(url: str) -> str:
    """The user name in an AMQP URL (``guest`` when none is given, as RabbitMQ assumes)."""
    return unquote(urlsplit(url).username or "guest")


class PublishFailed(RuntimeError):
    """The broker did not confirm a publish within the retry window."""


@dataclass(frozen=True)
class Topology:
    """Which consumer queue receives which event types."""

    consumers: Mapping[str, Sequence[str]]
    # Mailboxes are queues nobody in the pipeline consumes (the outside world reads them);
    # they are bounded so they cannot grow without limit.
    mailboxes: Mapping[str, Sequence[str]] = field(default_factory=dict)
    mailbox_max_length: int = 100_000


# The pipeline's consumers. The listener reads SQS, not the bus, so it has no queue.
# The dispatcher also consumes the clip outcomes, to keep each task's final state.
PIPELINE_TOPOLOGY = Topology(
    consumers={
        "ingest": ("ClipIngested",),
        "dispatcher": (
            "FramesReady",
            "LevelCompleted",
            "TaskExpired",
            "LevelFailed",
            "ClipCompleted",
            "ClipFailed",
        ),
        "postproc": ("LabelsFinalized",),
    },
    mailboxes={"outcomes": ("ClipCompleted", "ClipFailed")},
)


class Bus:
    """One robust connection, a confirming publish channel and any number of consumers."""

    def __init__(
        self,
        settings: ServiceSettings,
        topology: Topology = PIPELINE_TOPOLOGY,
        *,
        client_name: str = "lava",
        declare: bool = False,
    ) -> None:
        self.settings = settings
        self.declare = declare
        self.user = broker_user(settings.broker.amqp_url.get_secret_value())
        self.topology = topology
        self.names: Namespace = settings.names
        self._client_name = client_name
        self._connection: AbstractRobustConnection | None = None
        self._publish_channel: AbstractChannel | None = None
        self._exchange: AbstractExchange | None = None
        self._consumers: list[_Consumer] = []
        self._declaring: AbstractChannel | Any = None
        self.reconnects = 0
        """Times the connection came back after the broker dropped it."""

    # --- connection -------------------------------------------------------------------------
    async def connect(self, timeout: float = 15.0, *, verify: bool = True) -> None:
        """Connect; provision the topology if this bus declares, else check it exists
        (``verify=False``: only to delete it)."""
        self._connection = await aio_pika.connect_robust(
            self.settings.broker.amqp_url.get_secret_value(),
            timeout=timeout,
            # The namespace in the name tells operators (and tests) whose connection it is.
            client_properties={"connection_name": f"{self._client_name}@{self.names.prefix}"},
            reconnect_interval=1.0,
        )
        self._connection.reconnect_callbacks.add(self._on_reconnect)
        if self.declare:
            await self.declare_topology(await self._connection.channel())
        if not verify:
            return
        channel = await self._connection.channel(publisher_confirms=True, on_return_raises=True)
        self._publish_channel = channel
        try:
            self._exchange = await channel.get_exchange(self.names.exchange)  # passive
        except aiormq.exceptions.ChannelNotFoundEntity:
            await self.close()
            raise TopologyMissing(
                f"exchange {self.names.exchange!r} does not exist: provision the namespace "
                "first (`lava stack provision`)"
            ) from None

    @property
    def checks_origin(self) -> bool:
        """Whether consumers check who published: when this process runs as a component
        identity of the namespace (a shared admin user, as in local runs, proves nothing)."""
        return component_of(self.settings.namespace, self.user) is not None

    def _on_reconnect(self, *_: Any) -> None:
        self.reconnects += 1
        log.info("reconnected to the broker", reconnects=self.reconnects)

    @property
    def connected(self) -> bool:
        conn = self._connection
        return conn is not None and not conn.is_closed and conn.connected.is_set()

    async def close(self) -> None:
        for consumer in self._consumers:
            await consumer.stop(grace=0)
        self._consumers.clear()
        if self._connection is not None:
            await self._connection.close()
            self._connection = None

    async def __aenter__(self) -> Bus:
        await self.connect()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    def _require_connection(self) -> AbstractRobustConnection:
        if self._connection is None:
            raise RuntimeError("Bus.connect() has not been called")
        return self._connection

    # --- topology ---------------------------------------------------------------------------
    async def declare_topology(self, channel: AbstractChannel) -> None:
        names = self.names
        self._declaring = channel
        exchange = await channel.declare_exchange(
            names.exchange, aio_pika.ExchangeType.TOPIC, durable=True
        )
        for consumer, event_types in self.topology.consumers.items():
            dlx = await self._declaring.declare_exchange(
                names.dead_letter_exchange(consumer), aio_pika.ExchangeType.FANOUT, durable=True
            )
            dlq = await self._declare_queue(
                names.dead_letter_queue(consumer), {"x-queue-type": "quorum"}
            )
            await dlq.bind(dlx, routing_key="#")
            queue = await self._declare_queue(
                names.queue(consumer),
                {
                    "x-queue-type": "quorum",
                    # N gives N+1 deliveries, then the broker dead-letters (reason delivery_limit)
                    "x-delivery-limit": self.settings.broker.delivery_limit,
                    "x-dead-letter-exchange": names.dead_letter_exchange(consumer),
                },
            )
            for event_type in event_types:
                await queue.bind(exchange, routing_key=event_type)
        for mailbox, event_types in self.topology.mailboxes.items():
            queue = await self._declare_queue(
                names.queue(mailbox),
                {
                    "x-queue-type": "quorum",
                    "x-max-length": self.topology.mailbox_max_length,
                    "x-overflow": "drop-head",
                },
            )
            for event_type in event_types:
                await queue.bind(exchange, routing_key=event_type)

    async def _declare_queue(self, name: str, arguments: dict[str, Any]) -> AbstractQueue:
        """Declare a queue; one that exists with other arguments is used as it is.

        A queue's arguments (delivery limit, ...) cannot change once declared: the broker
        refuses, and closes the channel. A process started with other settings (a CLI run,
        an older release) keeps working with the queue as it is, and says so.
        """
        try:
            return await self._declaring.declare_queue(name, durable=True, arguments=arguments)
        except aiormq.exceptions.ChannelPreconditionFailed as exc:
            log.warning(
                "queue exists with other arguments; using it as it is (delete it to change them)",
                queue=name,
                wanted=arguments,
                broker=str(exc)[:300],
            )
            self._declaring = await self._require_connection().channel()
            return await self._declaring.declare_queue(name, passive=True)

    async def delete_topology(self) -> None:
        """Remove every queue and exchange of this namespace (test clean-up, `lava stack`)."""
        channel = await self._require_connection().channel()
        names = self.names
        for consumer in self.topology.consumers:
            for queue in (names.queue(consumer), names.dead_letter_queue(consumer)):
                await channel.queue_delete(queue)
            await channel.exchange_delete(names.dead_letter_exchange(consumer))
        for mailbox in self.topology.mailboxes:
            await channel.queue_delete(names.queue(mailbox))
        await channel.exchange_delete(names.exchange)
        await channel.close()

    # --- publishing -------------------------------------------------------------------------
    async def publish(self, event: Event[Any]) -> None:
        """Publish persistently and wait for the broker's confirm.

        A connection drop is waited out (up to ``publish_retry_seconds``) and the publish
        retried, which can duplicate a message whose confirm was lost: consumers are idempotent.
        """
        headers: dict[str, Any] = {"x-lava-version": event.version}
        with tracing.publishing(
            self.names.exchange, event.type, event.event_id, event.correlation_id, headers
        ):  # the span's W3C context goes into the headers
            message = aio_pika.Message(
                body=encode_event(event),
                content_type="application/json",
                delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                message_id=event.event_id,
                correlation_id=event.correlation_id,
                type=event.type,
                user_id=self.user,  # validated by the broker: consumers may trust it
                headers=headers,
            )
            await self._publish(message, routing_key=event.type)
            if fault_hooks.duplicate_delivery():
                await self._publish(message, routing_key=event.type)  # the drill: twice

    async def _publish(
        self,
        message: aio_pika.Message,
        routing_key: str,
        exchange_name: str | None = None,
    ) -> None:
        channel = self._publish_channel
        if channel is None or self._exchange is None:
            raise RuntimeError("Bus.connect() has not been called")
        deadline = time.monotonic() + self.settings.broker.publish_retry_seconds
        while True:
            try:
                exchange = (
                    self._exchange
                    if exchange_name is None
                    else await channel.get_exchange(exchange_name, ensure=False)
                )
                result = await exchange.publish(message, routing_key=routing_key, mandatory=True)
            except aio_pika.exceptions.PublishError as exc:
                raise UnroutableEvent(
                    f"no queue is bound to {routing_key!r} on "
                    f"{exchange_name or self.names.exchange!r}: {exc}"
                ) from None
            except aio_pika.exceptions.DeliveryError as exc:
                raise PublishFailed(f"broker refused {routing_key!r}: {exc}") from exc
            except (
                aiormq.exceptions.ChannelAccessRefused,
                aiormq.exceptions.ChannelPreconditionFailed,
            ) as exc:
                # Not this identity's to publish (topic permission, forged user_id): waiting
                # cannot help. The broker closed the channel; the robust channel reopens it.
                raise PublishFailed(f"broker refused {routing_key!r}: {exc}") from None
            except (
                TimeoutError,
                aiormq.exceptions.AMQPError,
                aiormq.exceptions.ChannelInvalidStateError,
                ConnectionError,
            ) as exc:
                if time.monotonic() >= deadline:
                    raise PublishFailed(
                        f"could not publish {routing_key!r} within "
                        f"{self.settings.broker.publish_retry_seconds}s: {exc!r}"
                    ) from exc
                log.warning("publish interrupted; waiting for the broker", error=repr(exc))
                await asyncio.sleep(0.5)
                continue
            # Without on_return_raises a returned message comes back as a value, not an error;
            # check anyway so an unroutable publish can never pass silently.
            if not isinstance(result, Basic.Ack):
                raise UnroutableEvent(f"no queue is bound to {routing_key!r}")
            return

    # --- consuming --------------------------------------------------------------------------
    async def consume(
        self,
        consumer: str,
        handler: AnyHandler,
        *,
        on_outcome: Callable[[str, str, float], None] | None = None,
        on_dead: OnDead | None = None,
    ) -> _Consumer:
        """Start delivering ``consumer``'s queue to ``handler`` under the acknowledgement policy.

        ``on_outcome(event_type, outcome, seconds)`` is told of every message (for metrics);
        outcome is one of ``handled``, ``requeued``, ``dead_lettered``.
        """
        if consumer not in self.topology.consumers:
            raise ValueError(f"{consumer!r} is not a consumer in the topology")
        connection = self._require_connection()
        channel = await connection.channel()
        await channel.set_qos(prefetch_count=self.settings.broker.prefetch)
        queue = await channel.get_queue(self.names.queue(consumer), ensure=True)
        state = _Consumer(self, consumer, channel, queue, handler, on_outcome, on_dead)
        await state.start()
        self._consumers.append(state)
        return state

    async def dead_letter(
        self, consumer: str, message: AbstractIncomingMessage, reason: str
    ) -> None:
        """Put a message in ``consumer``'s dead-letter queue with its reason (confirmed)."""
        headers: dict[str, Any] = dict(message.headers or {})
        headers[DEAD_REASON_HEADER] = bounded_reason(reason)
        headers[DEAD_CONSUMER_HEADER] = consumer
        headers[DEAD_ROUTING_KEY_HEADER] = message.routing_key or ""
        copy = aio_pika.Message(
            body=message.body,
            content_type=message.content_type,
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            message_id=message.message_id,
            correlation_id=message.correlation_id,
            type=message.type,
            headers=headers,
        )
        await self._publish(
            copy,
            routing_key=message.routing_key or "",
            exchange_name=self.names.dead_letter_exchange(consumer),
        )


class _Consumer:
    """One consuming channel; tracks in-flight handlers so shutdown can drain them."""

    def __init__(
        self,
        bus: Bus,
        consumer: str,
        channel: AbstractChannel,
        queue: AbstractQueue,
        handler: AnyHandler,
        on_outcome: Callable[[str, str, float], None] | None,
        on_dead: OnDead | None = None,
    ) -> None:
        self.on_dead = on_dead
        self.bus = bus
        self.consumer = consumer
        self.channel = channel
        self.queue = queue
        self.handler = handler
        self.on_outcome = on_outcome
        self._tag: str | None = None
        self._in_flight: set[asyncio.Task[None]] = set()
        self._idle = asyncio.Event()
        self._idle.set()
        # Prefetched messages wait here for a handler slot. Once the gate closes (stop
        # requested), a message that has not started never starts: it goes back to the queue
        # for another replica, so a SIGTERM cannot strand or half-run it.
        self._slots = asyncio.Semaphore(bus.settings.broker.handler_concurrency)
        self._gate_closed = asyncio.Event()

    @property
    def in_flight(self) -> int:
        return len(self._in_flight)

    async def start(self) -> None:
        self._tag = await self.queue.consume(self._on_message)

    def close_gate(self) -> None:
        """Start no more handlers; messages not yet started are requeued. Synchronous, so a
        signal handler can call it before anything else runs on the loop."""
        self._gate_closed.set()

    async def stop(self, grace: float) -> None:
        """Stop taking messages, let in-flight handlers finish (up to ``grace``), close."""
        self.close_gate()
        if self._tag is not None:
            with contextlib.suppress(Exception):
                await self.queue.cancel(self._tag)
            self._tag = None
        if self._in_flight and grace > 0:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._idle.wait(), timeout=grace)
        for task in list(self._in_flight):
            task.cancel()
        with contextlib.suppress(Exception):
            await self.channel.close()

    async def _on_message(self, message: AbstractIncomingMessage) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._in_flight.add(task)
        self._idle.clear()
        try:
            if not await self._take_slot():
                log.info("not started: service stopping; requeueing", message_id=message.message_id)
                await self._settle(message.nack(requeue=True))
                return
            try:
                await self._deliver(message)
            finally:
                self._slots.release()
        finally:
            self._in_flight.discard(task)
            if not self._in_flight:
                self._idle.set()

    async def _take_slot(self) -> bool:
        """Wait for a handler slot; False if the gate closed first (the slot is not held)."""
        if self._gate_closed.is_set():
            return False
        acquire = asyncio.ensure_future(self._slots.acquire())
        closed = asyncio.ensure_future(self._gate_closed.wait())
        try:
            await asyncio.wait({acquire, closed}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            closed.cancel()
            if not acquire.done():
                acquire.cancel()
        if acquire.done() and not acquire.cancelled():
            if not self._gate_closed.is_set():
                return True
            self._slots.release()
        return False

    async def _deliver(self, message: AbstractIncomingMessage) -> None:
        started = time.monotonic()
        # A first delivery has had no earlier one, whatever a publisher wrote in the header.
        earlier = deliveries_before(message.headers) if message.redelivered else 0
        with tracing.processing(
            message.exchange or self.bus.names.exchange,
            message.routing_key or "",
            message.message_id,
            message.correlation_id,
            message.headers,
            len(message.body),
        ) as span:
            settlement: Settlement = await settle(
                message.body,
                self.handler,
                settings=self.bus.settings,
                earlier_deliveries=earlier,
                # Metric labels only from the known event types (a forged type adds no series).
                fallback_type=known_event_type(message.routing_key) or "unknown",
                publisher=message.user_id if self.bus.checks_origin else None,
                check_origin=self.bus.checks_origin,
                on_dead=self.on_dead,
            )
            span.outcome(settlement.outcome, settlement.reason)
        if settlement.outcome == "dead_lettered":
            await self._settle_dead(message, settlement.event_type, settlement.reason, started)
        elif settlement.outcome == "requeued":
            await asyncio.sleep(settlement.delay)
            await self._settle(message.nack(requeue=True))
            self._outcome(settlement.event_type, "requeued", started)
        else:
            await self._settle(message.ack())
            self._outcome(settlement.event_type, "handled", started)

    async def _settle_dead(
        self, message: AbstractIncomingMessage, event_type: str, reason: str, started: float
    ) -> None:
        log.error("dead-lettering message", reason=reason, message_id=message.message_id)
        try:
            await self.bus.dead_letter(self.consumer, message, reason)
        except Exception as exc:  # leave it to the broker: it is redelivered, never lost
            log.error("could not dead-letter; requeueing", error=repr(exc))
            await self._settle(message.nack(requeue=True))
            self._outcome(event_type, "requeued", started)
            return
        await self._settle(message.ack())
        self._outcome(event_type, "dead_lettered", started)

    async def _settle(self, action: Awaitable[None]) -> None:
        # After a connection drop the delivery tag is gone; the broker redelivers the message.
        try:
            await action
        except Exception as exc:
            log.warning("could not settle a message (it will be redelivered)", error=repr(exc))

    def _outcome(self, event_type: str, outcome: str, started: float) -> None:
        if self.on_outcome is not None:
            self.on_outcome(event_type, outcome, time.monotonic() - started)


async def publish_events(bus: Bus, events: Sequence[Event[EventPayload]]) -> None:
    """Publish several events with their confirms pipelined (much faster than one by one)."""
    await asyncio.gather(*(bus.publish(e) for e in events))
