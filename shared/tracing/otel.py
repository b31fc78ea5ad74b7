"""OpenTelemetry behind the tracing hooks: messaging spans, W3C context, AWS and API calls.

Messaging spans follow FastStream's RabbitMQ conventions and the OpenTelemetry messaging
semantic conventions: ``<exchange>.<routing_key> publish`` (PRODUCER) and ``... process``
(CONSUMER), ``messaging.system=rabbitmq``, the message id and the correlation id as
``messaging.message.conversation_id``. The publish span's context travels in the AMQP headers
``traceparent``/``tracestate`` (W3C Trace Context), so the consumer's process span is its child.
The bus propagates by hand: ``opentelemetry-instrumentation-aio-pika`` would name spans its own
way and cannot see the in-memory bus, which must behave like the real one.

AWS calls are spans of ``opentelemetry-instrumentation-botocore``'s aiobotocore instrumentor
(``DynamoDB.PutItem``, CLIENT, ``rpc.system=aws-api``), children of whatever span is current.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, MutableMapping
from contextlib import contextmanager
from typing import Any

from opentelemetry import propagate, trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import Span, SpanKind, Status, StatusCode

TRACE_HEADERS = ("traceparent", "tracestate")
# W3C: traceparent is 55 characters, tracestate at most 32 members of ~256: anything longer
# is forged or broken and is not parsed.
_MAX_HEADER = 1024
_MAX_STATUS = 300


def _text_headers(headers: Mapping[str, Any] | None) -> dict[str, str]:
    """The trace headers of a message, as text (AMQP may deliver them as bytes)."""
    found: dict[str, str] = {}
    for name in TRACE_HEADERS:
        value = (headers or {}).get(name)
        if isinstance(value, bytes):
            value = value.decode("ascii", "replace")
        if isinstance(value, str) and len(value) <= _MAX_HEADER:
            found[name] = value
    return found


def messaging_attributes(
    exchange: str,
    routing_key: str,
    message_id: str | None,
    correlation_id: str | None,
    operation: str,
) -> dict[str, Any]:
    attributes: dict[str, Any] = {
        "messaging.system": "rabbitmq",
        "messaging.operation.name": operation,
        "messaging.operation.type": "send" if operation == "publish" else operation,
        "messaging.destination.name": exchange,
        "messaging.rabbitmq.destination.routing_key": routing_key,
    }
    if message_id:
        attributes["messaging.message.id"] = message_id
    if correlation_id:
        attributes["messaging.message.conversation_id"] = correlation_id
    return attributes


class SpanHandle:
    """The span of a message, told how its settlement ended."""

    def __init__(self, span: Span) -> None:
        self.span = span

    def outcome(self, outcome: str, reason: str = "") -> None:
        self.span.set_attribute("lava.outcome", outcome)
        if outcome != "handled":
            self.span.set_status(Status(StatusCode.ERROR, reason[:_MAX_STATUS]))


def instrument_aiobotocore(provider: TracerProvider) -> Any:
    """Spans for every aiobotocore call (the instrumentor patches the client class)."""
    from opentelemetry.instrumentation.botocore import AiobotocoreInstrumentor

    instrumentor = AiobotocoreInstrumentor()  # type: ignore[no-untyped-call]
    instrumentor.instrument(tracer_provider=provider)
    return instrumentor


class OtelTracing:
    """One process's tracing: its provider, tracer and the AWS instrumentation."""

    def __init__(
        self, provider: TracerProvider, *, global_provider: bool = False, aws: bool = True
    ) -> None:
        self.provider = provider
        self.tracer = provider.get_tracer("lava.pipeline")
        self._global = global_provider
        self._aws = aws
        self._instrumentor: Any = None

    def attach(self) -> None:
        if self._global:  # a service process: libraries that look it up find it
            trace.set_tracer_provider(self.provider)
        if self._aws and self._instrumentor is None:
            self._instrumentor = instrument_aiobotocore(self.provider)

    def detach(self) -> None:
        if self._instrumentor is not None:
            self._instrumentor.uninstrument()
            self._instrumentor = None

    def shutdown(self) -> None:
        self.detach()
        self.provider.shutdown()  # flushes the batch processors

    @contextmanager
    def publishing(
        self,
        exchange: str,
        routing_key: str,
        message_id: str | None,
        correlation_id: str | None,
        headers: MutableMapping[str, Any],
    ) -> Iterator[SpanHandle]:
        attributes = messaging_attributes(
            exchange, routing_key, message_id, correlation_id, "publish"
        )
        with self.tracer.start_as_current_span(
            f"{exchange}.{routing_key} publish", kind=SpanKind.PRODUCER, attributes=attributes
        ) as span:
            propagate.inject(headers)
            yield SpanHandle(span)

    @contextmanager
    def processing(
        self,
        exchange: str,
        routing_key: str,
        message_id: str | None,
        correlation_id: str | None,
        headers: Mapping[str, Any],
        body_size: int,
    ) -> Iterator[SpanHandle]:
        attributes = messaging_attributes(
            exchange, routing_key, message_id, correlation_id, "process"
        )
        attributes["messaging.message.body.size"] = body_size
        with self.tracer.start_as_current_span(
            f"{exchange}.{routing_key} process",
            context=propagate.extract(_text_headers(headers)),
            kind=SpanKind.CONSUMER,
            attributes=attributes,
        ) as span:
            yield SpanHandle(span)

    @contextmanager
    def continuing(
        self,
        carrier: Mapping[str, str] | None,
        name: str,
        attributes: Mapping[str, Any],
        start_ns: int,
    ) -> Iterator[SpanHandle]:
        with self.tracer.start_as_current_span(
            name,
            context=propagate.extract(_text_headers(carrier)),
            kind=SpanKind.CONSUMER,
            attributes=dict(attributes),
            start_time=start_ns,
        ) as span:
            yield SpanHandle(span)

    @contextmanager
    def resuming(self, carrier: Mapping[str, str] | None, name: str) -> Iterator[SpanHandle]:
        with self.tracer.start_as_current_span(
            name, context=propagate.extract(_text_headers(carrier)), kind=SpanKind.INTERNAL
        ) as span:
            yield SpanHandle(span)

    def carrier(self) -> dict[str, str] | None:
        if not trace.get_current_span().get_span_context().is_valid:
            return None
        headers: dict[str, str] = {}
        propagate.inject(headers)
        return _text_headers(headers) or None

    def instrument_app(self, app: Any) -> None:
        from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

        FastAPIInstrumentor.instrument_app(app, tracer_provider=self.provider)

    def add_ids(self, event: MutableMapping[str, Any]) -> None:
        context = trace.get_current_span().get_span_context()
        if context.is_valid:
            event["trace_id"] = format(context.trace_id, "032x")
            event["span_id"] = format(context.span_id, "016x")
