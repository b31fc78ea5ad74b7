"""The acknowledgement policy: what becomes of a delivered message, decided in one place.

| what happened | settlement |
|---|---|
| the handler returned | ack (its effects are durable by then) |
| not a valid event, or the handler raised :class:`Reject` | dead-letter with the reason, then ack |
| the handler raised anything else, deliveries left | pause (backoff), then requeue |
| the same on the last delivery the broker allows | dead-letter with the last error |
| published by a broker user the identity table does not allow (origin checked) | dead-letter |

A valid event the handler gives up on (Reject, last delivery) is first reported through
``on_dead`` (the runtime turns a clip's event into a visible ClipFailed); if that fails, the
message is requeued instead of dead-lettered, so the failure is never silent.

:func:`settle` runs a handler on one message body and returns the :class:`Settlement`; a bus only
carries it out. The RabbitMQ bus (``shared.bus``) and the in-memory bus (``shared.memory_bus``)
both call it, so a policy scenario proven on one holds on the other.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import structlog

from shared.broker_identities import allowed_users
from shared.events import Event, InvalidEvent, decode_event
from shared.ports import AnyHandler
from shared.settings import ServiceSettings

log = structlog.get_logger(__name__)

Outcome = Literal["handled", "requeued", "dead_lettered"]
# Told of a valid event its handler gave up on, before it is dead-lettered.
OnDead = Callable[[Event[Any], str], Awaitable[None]]


class Reject(Exception):
    """Raised by a handler for a message that can never succeed: dead-letter it with a reason."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Settlement:
    """What to do with a message: ``handled`` = ack, ``requeued`` after ``delay`` seconds,
    ``dead_lettered`` with ``reason`` (then ack)."""

    outcome: Outcome
    event_type: str
    reason: str = ""
    delay: float = 0.0


def deliveries_before(headers: Mapping[str, Any] | None) -> int:
    """Earlier failed deliveries, from a quorum queue's ``x-delivery-count``.

    Read defensively: a publisher can forge headers, and a value that cannot be read must
    neither crash the consumer (the message would stay unacknowledged) nor dead-letter the
    message at once. Anything but a small non-negative integer counts as a first delivery.
    """
    value = (headers or {}).get("x-delivery-count", 0)
    count = 0
    if isinstance(value, int) and not isinstance(value, bool):
        count = value
    elif isinstance(value, str | bytes) and 0 < len(value) < 10 and value.strip().isdigit():
        count = int(value)
    return count if 0 <= count < 1_000_000 else 0


def retry_delay(settings: ServiceSettings, earlier_deliveries: int) -> float:
    """The pause before a failed message is requeued: doubles per delivery, capped."""
    exponent = min(earlier_deliveries, 30)
    return float(
        min(
            settings.broker.redelivery_backoff_max_seconds,
            settings.broker.redelivery_backoff_seconds * (2**exponent),
        )
    )


async def settle(
    body: bytes,
    handler: AnyHandler,
    *,
    settings: ServiceSettings,
    earlier_deliveries: int,
    fallback_type: str,
    publisher: str | None = None,
    check_origin: bool = False,
    on_dead: OnDead | None = None,
) -> Settlement:
    """Decode ``body`` (bounded: size before parsing, see :func:`shared.events.decode_event`),
    check who published it when ``check_origin`` (``publisher`` = the broker-validated
    ``user_id``), run ``handler`` on it and decide the message's fate under the policy."""
    try:
        event = decode_event(body, max_bytes=settings.broker.max_event_bytes)
    except InvalidEvent as exc:
        return Settlement("dead_lettered", fallback_type, f"invalid event: {exc}")
    if check_origin:
        allowed = allowed_users(settings.namespace, event.type)
        if publisher not in allowed:
            return Settlement(
                "dead_lettered",
                event.type,
                f"{event.type} published by broker user {publisher!r}; only "
                f"{', '.join(sorted(allowed)) or 'nobody'} may publish it",
            )
    settlement = await _run(event, handler, settings, earlier_deliveries)
    if settlement.outcome == "dead_lettered" and on_dead is not None:
        try:
            await on_dead(event, settlement.reason)
        except Exception as exc:
            log.error("could not report a failed event; requeueing", error=repr(exc))
            return Settlement(
                "requeued", event.type, repr(exc), retry_delay(settings, earlier_deliveries)
            )
    return settlement


async def _run(
    event: Event[Any], handler: AnyHandler, settings: ServiceSettings, earlier_deliveries: int
) -> Settlement:
    with structlog.contextvars.bound_contextvars(
        event_id=event.event_id, task_id=event.correlation_id, event_type=event.type
    ):
        try:
            await handler(event)
        except Reject as exc:
            return Settlement("dead_lettered", event.type, exc.reason)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            reason = f"{type(exc).__name__}: {exc}"
            deliveries = earlier_deliveries + 1
            if earlier_deliveries >= settings.broker.delivery_limit:
                log.error(
                    "handler failed on the last delivery; dead-lettering",
                    error=reason,
                    deliveries=deliveries,
                    exc_info=True,
                )
                return Settlement(
                    "dead_lettered",
                    event.type,
                    f"handler failed {deliveries} times; last error: {reason}",
                )
            delay = retry_delay(settings, earlier_deliveries)
            log.warning(
                "handler failed; requeueing", error=reason, deliveries=deliveries, retry_in=delay
            )
            return Settlement("requeued", event.type, reason, delay)
    return Settlement("handled", event.type)
