"""Tracing on an in-memory span exporter for one test, and questions about the spans."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_ON

from shared import tracing
from shared.tracing.otel import OtelTracing
from shared.tracing.provider import SkipOrphanAwsCalls


@contextmanager
def traced(*, aws: bool = True) -> Iterator[InMemorySpanExporter]:
    """Tracing on for the test (sampled at 100%, as production's sampler wraps it)."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider(sampler=SkipOrphanAwsCalls(ALWAYS_ON))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracing.install(OtelTracing(provider, aws=aws))
    try:
        yield exporter
    finally:
        tracing.install(None)
        provider.shutdown()


def trace_of(spans: Sequence[ReadableSpan], trace_id: int) -> list[ReadableSpan]:
    return [s for s in spans if s.context is not None and s.context.trace_id == trace_id]


def orphans(spans: Sequence[ReadableSpan]) -> list[str]:
    """Spans of one trace whose parent is not among them (the root has no parent)."""
    ids = {s.context.span_id for s in spans if s.context is not None}
    return [s.name for s in spans if s.parent is not None and s.parent.span_id not in ids]


def parent_of(spans: Sequence[ReadableSpan], span: ReadableSpan) -> ReadableSpan | None:
    if span.parent is None:
        return None
    return next((s for s in spans if s.context.span_id == span.parent.span_id), None)


def is_aws_call(span: ReadableSpan) -> bool:
    """A span of the botocore instrumentation (CLIENT, or PRODUCER for an SNS publish)."""
    return (span.attributes or {}).get("rpc.system") == "aws-api"


def console_spans(text: str) -> list[dict[str, Any]]:
    """The spans ``OTEL_TRACES_EXPORTER=console`` printed (indented JSON) amid log lines."""
    decoder = json.JSONDecoder()
    found: list[dict[str, Any]] = []
    at = text.find("{\n")
    while at != -1:
        try:
            value, end = decoder.raw_decode(text, at)
        except ValueError:
            end = at + 2
        else:
            if isinstance(value, dict) and "context" in value and "name" in value:
                found.append(value)
        at = text.find("{\n", end)
    return found
