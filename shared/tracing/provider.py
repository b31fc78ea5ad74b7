"""The OpenTelemetry SDK set up from the environment: resource, sampler, exporters.

``service.name`` is ``OTEL_SERVICE_NAME`` (or ``OTEL_RESOURCE_ATTRIBUTES``'), else
``lava-<component>``. The sampler is the SDK's from ``OTEL_TRACES_SAMPLER``/``_ARG``, wrapped so
an AWS call made outside any traced work (a listener's long poll, a sweep's query) starts no
trace of its own: those would be most of the spans and none of the story. Exporters come from
``OTEL_TRACES_EXPORTER`` through the SDK's entry points, each behind a batch processor
(``OTEL_BSP_*``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from importlib.metadata import entry_points
from typing import Any

import structlog
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
from opentelemetry.sdk.trace.sampling import Decision, Sampler, SamplingResult
from opentelemetry.trace import Link, SpanKind, TraceState

from shared.tracing.config import TracingRequest

log = structlog.get_logger(__name__)


class SkipOrphanAwsCalls(Sampler):
    """Drops AWS-call spans that have no parent; defers everything else to ``inner``."""

    def __init__(self, inner: Sampler) -> None:
        self.inner = inner

    def should_sample(
        self,
        parent_context: Context | None,
        trace_id: int,
        name: str,
        kind: SpanKind | None = None,
        attributes: Mapping[str, Any] | None = None,
        links: Sequence[Link] | None = None,
        trace_state: TraceState | None = None,
    ) -> SamplingResult:
        parent = trace.get_current_span(parent_context).get_span_context()
        if not parent.is_valid and (attributes or {}).get("rpc.system") == "aws-api":
            return SamplingResult(Decision.DROP)
        return self.inner.should_sample(
            parent_context, trace_id, name, kind, attributes, links, trace_state
        )

    def get_description(self) -> str:
        return f"SkipOrphanAwsCalls{{{self.inner.get_description()}}}"


def env_sampler() -> Sampler:
    """The SDK's sampler from OTEL_TRACES_SAMPLER (a provider reads it when given none)."""
    return TracerProvider(shutdown_on_exit=False).sampler


def _exporter(request: TracingRequest, name: str) -> SpanExporter | None:
    point = request.entry_point(name)
    found = entry_points(group="opentelemetry_traces_exporter", name=point)
    if not found:
        log.warning("unknown or uninstalled trace exporter; skipped", exporter=name, entry=point)
        return None
    exporter: SpanExporter = next(iter(found)).load()()
    return exporter


def build_provider(request: TracingRequest, component: str) -> TracerProvider:
    attributes = {"service.name": request.service(component), "lava.component": component}
    provider = TracerProvider(
        resource=Resource.create(attributes), sampler=SkipOrphanAwsCalls(env_sampler())
    )
    for name in request.exporters:
        exporter = _exporter(request, name)
        if exporter is not None:
            provider.add_span_processor(BatchSpanProcessor(exporter))
    return provider
