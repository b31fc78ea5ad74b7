"""An in-memory bus with the RabbitMQ bus's routing and the same acknowledgement policy.

For fast tests of handlers and policies: ``publish`` routes by the same :class:`Topology`
(an event no queue takes raises :class:`UnroutableEvent`, like a ``mandatory`` publish), and
every delivery is settled by :func:`shared.acking.settle` - the code the real consumer runs - so
a rejected, failing or invalid message ends exactly where it would on the broker: acked,
requeued with its delivery count raised (the pause is recorded, not slept), or in the consumer's
dead-letter list with its reason. :meth:`drain` delivers until every queue is empty, one message
at a time in publish order, so a scenario is deterministic.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any

from shared import tracing
from shared.acking import settle
from shared.bus import PIPELINE_TOPOLOGY, Topology, UnroutableEvent
from shared.events import Event, decode_event, encode_event
from shared.ports import AnyHandler
from shared.settings import ServiceSettings


@dataclass
class Delivery:
    body: bytes
    routing_key: str
    earlier_deliveries: int = 0
    headers: dict[str, Any] = field(default_factory=dict)
    message_id: str | None = None
    correlation_id: str | None = None


@dataclass
class DeadLetter:
    body: bytes
    routing_key: str
    reason: str


@dataclass
class _Queue:
    messages: deque[Delivery] = field(default_factory=deque)
    handler: AnyHandler | None = None
    dead: list[DeadLetter] = field(default_factory=list)


class InMemoryBus:
    """``publish``/``consume`` like :class:`shared.bus.Bus`, in one process, no broker."""

    def __init__(self, settings: ServiceSettings, topology: Topology = PIPELINE_TOPOLOGY) -> None:
        self.settings = settings
        self.topology = topology
        self._queues: dict[str, _Queue] = {
            name: _Queue() for name in (*topology.consumers, *topology.mailboxes)
        }
        self.requeue_pauses: list[float] = []
        """The backoff the real consumer would have slept before each requeue."""

    # --- the Bus interface handlers and the runtime use -------------------------------------
    async def publish(self, event: Event[Any]) -> None:
        headers: dict[str, Any] = {"x-lava-version": event.version}
        with tracing.publishing(
            self.settings.names.exchange, event.type, event.event_id, event.correlation_id, headers
        ):  # the same span and W3C headers as on the broker
            self.publish_raw(
                encode_event(event), event.type, headers, event.event_id, event.correlation_id
            )

    async def consume(self, consumer: str, handler: AnyHandler) -> None:
        if consumer not in self.topology.consumers:
            raise ValueError(f"{consumer!r} is not a consumer in the topology")
        self._queues[consumer].handler = handler

    # --- test controls ----------------------------------------------------------------------
    def publish_raw(
        self,
        body: bytes,
        routing_key: str,
        headers: dict[str, Any] | None = None,
        message_id: str | None = None,
        correlation_id: str | None = None,
    ) -> None:
        """Publish any bytes (e.g. a malformed message) under a routing key."""
        bound = [
            name
            for name, types in (*self.topology.consumers.items(), *self.topology.mailboxes.items())
            if routing_key in types
        ]
        if not bound:
            raise UnroutableEvent(f"no queue is bound to {routing_key!r}")
        for name in bound:
            self._queues[name].messages.append(
                Delivery(body, routing_key, 0, dict(headers or {}), message_id, correlation_id)
            )
        mailbox_limit = self.topology.mailbox_max_length
        for name in self.topology.mailboxes:
            while len(self._queues[name].messages) > mailbox_limit:  # x-overflow: drop-head
                self._queues[name].messages.popleft()

    async def drain(self, max_deliveries: int = 100_000) -> int:
        """Deliver until every consumed queue is empty; returns how many deliveries ran."""
        delivered = 0
        while delivered < max_deliveries:
            ready = [
                (name, q)
                for name, q in self._queues.items()
                if q.handler is not None and q.messages
            ]
            if not ready:
                return delivered
            for _, queue in ready:
                await self._deliver_one(queue)
                delivered += 1
        raise AssertionError(f"the bus did not go idle within {max_deliveries} deliveries")

    def waiting(self, queue: str) -> list[Event[Any]]:
        """The events waiting in a queue (e.g. the outcomes mailbox), oldest first."""

        return [decode_event(d.body) for d in self._queues[queue].messages]

    def dead_letters(self, consumer: str) -> list[DeadLetter]:
        return list(self._queues[consumer].dead)

    # --- delivery under the shared policy ---------------------------------------------------
    async def _deliver_one(self, queue: _Queue) -> None:
        assert queue.handler is not None
        delivery = queue.messages.popleft()
        with tracing.processing(
            self.settings.names.exchange,
            delivery.routing_key,
            delivery.message_id,
            delivery.correlation_id,
            delivery.headers,
            len(delivery.body),
        ) as span:
            settlement = await settle(
                delivery.body,
                queue.handler,
                settings=self.settings,
                earlier_deliveries=delivery.earlier_deliveries,
                fallback_type=delivery.routing_key,
            )
            span.outcome(settlement.outcome, settlement.reason)
        if settlement.outcome == "dead_lettered":
            queue.dead.append(DeadLetter(delivery.body, delivery.routing_key, settlement.reason))
        elif settlement.outcome == "requeued":
            self.requeue_pauses.append(settlement.delay)
            delivery.earlier_deliveries += 1  # what x-delivery-count says next time
            queue.messages.append(delivery)
