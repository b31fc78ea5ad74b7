"""Tracing hooks the bus, runtime, listener and logging call: no-ops unless OTEL_* turned it on.

Nothing of OpenTelemetry is imported until :func:`configure` finds that the standard ``OTEL_*``
variables ask for traces (see :mod:`shared.tracing.config`); until then every hook returns a
shared null context, so a process without tracing pays one global read per message. The
OpenTelemetry side lives in :mod:`shared.tracing.otel` (spans, W3C context) and
:mod:`shared.tracing.provider` (SDK set-up from the environment): the ``[tracing]`` extra.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, MutableMapping
from contextlib import AbstractContextManager, nullcontext
from typing import TYPE_CHECKING, Any

import structlog

from shared.tracing.config import TracingRequest

if TYPE_CHECKING:
    from shared.tracing.otel import OtelTracing

log = structlog.get_logger(__name__)


class _NoSpan:
    """What a hook yields while tracing is off: accepts an outcome and does nothing."""

    def outcome(self, outcome: str, reason: str = "") -> None:
        return None


NO_SPAN = _NoSpan()
_NULL: AbstractContextManager[Any] = nullcontext(NO_SPAN)
_active: OtelTracing | None = None


def active() -> OtelTracing | None:
    """The tracing of this process, None while off."""
    return _active


def install(tracing: OtelTracing | None) -> None:
    """Make ``tracing`` this process's (tests install one on an in-memory exporter); None
    turns it off again."""
    global _active
    previous, _active = _active, tracing
    if previous is not None and previous is not tracing:
        previous.detach()
    if tracing is not None:
        tracing.attach()


def configure(component: str, environ: Mapping[str, str] | None = None) -> bool:
    """Turn tracing on for ``component`` if the ``OTEL_*`` variables ask for it; True if on.

    Asked for without the ``[tracing]`` extra installed, it says so in one line and stays off:
    a service never fails to start for want of its tracer.
    """
    request = TracingRequest.from_env(os.environ if environ is None else environ)
    if not request.enabled:
        return False
    try:
        from shared.tracing.otel import OtelTracing
        from shared.tracing.provider import build_provider
    except ImportError as exc:
        log.warning(
            "OTEL_* asks for traces but the tracing packages are missing "
            "(pip install 'lava-pipeline[tracing]'); tracing stays off",
            missing=exc.name,
        )
        return False
    install(OtelTracing(build_provider(request, component), global_provider=True))
    log.info("tracing on", exporters=list(request.exporters), service=request.service(component))
    return True


def shutdown() -> None:
    """Flush and stop the exporters (at process exit)."""
    tracing = _active
    install(None)
    if tracing is not None:
        tracing.shutdown()


# --- the hooks ---------------------------------------------------------------------------------
def publishing(
    exchange: str,
    routing_key: str,
    message_id: str | None,
    correlation_id: str | None,
    headers: MutableMapping[str, Any],
) -> AbstractContextManager[Any]:
    """A ``<exchange>.<routing_key> publish`` span; writes its W3C context into ``headers``."""
    tracing = _active
    if tracing is None:
        return _NULL
    return tracing.publishing(exchange, routing_key, message_id, correlation_id, headers)


def processing(
    exchange: str,
    routing_key: str,
    message_id: str | None,
    correlation_id: str | None,
    headers: Mapping[str, Any] | None,
    body_size: int,
) -> AbstractContextManager[Any]:
    """A ``<exchange>.<routing_key> process`` span, child of the publisher's (from
    ``headers``); yields a handle whose ``outcome(...)`` records the settlement."""
    tracing = _active
    if tracing is None:
        return _NULL
    return tracing.processing(
        exchange, routing_key, message_id, correlation_id, headers or {}, body_size
    )


def continuing(
    carrier: Mapping[str, str] | None, name: str, attributes: Mapping[str, Any], start_ns: int
) -> AbstractContextManager[Any]:
    """A consumer span continuing a stored trace context (the Ground Truth round trip: the data
    object's ``trace_context``), started at ``start_ns`` (``time.time_ns()``)."""
    tracing = _active
    if tracing is None:
        return _NULL
    return tracing.continuing(carrier, name, attributes, start_ns)


def resuming(carrier: Mapping[str, str] | None, name: str) -> AbstractContextManager[Any]:
    """An internal span of later work on something traced earlier (a dispatcher sweep on a
    task), in that thing's trace: re-sends and advances stay in their clip's trace."""
    tracing = _active
    if tracing is None:
        return _NULL
    return tracing.resuming(carrier, name)


def carrier() -> dict[str, str] | None:
    """The current trace context as W3C ``traceparent``/``tracestate`` (None while off or
    outside any span): what a data object stores to continue its clip's trace."""
    tracing = _active
    return None if tracing is None else tracing.carrier()


def instrument_app(app: Any) -> None:
    """Trace an ASGI (FastAPI) app's requests."""
    tracing = _active
    if tracing is not None:
        tracing.instrument_app(app)


def add_trace_ids(
    logger: Any, method: str, event: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """structlog processor: ``trace_id``/``span_id`` of the current span on every line."""
    tracing = _active
    if tracing is not None:
        tracing.add_ids(event)
    return event
