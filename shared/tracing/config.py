"""What the standard ``OTEL_*`` variables ask of tracing (read without importing OpenTelemetry).

Off unless asked: ``OTEL_TRACES_EXPORTER`` names an exporter (``console``, ``otlp``; ``none`` is
off), or an OTLP endpoint is set (``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` /
``OTEL_EXPORTER_OTLP_ENDPOINT``, which then means ``otlp``). ``OTEL_SDK_DISABLED=true`` wins over
both. The SDK's own defaults (``otlp`` when nothing is set) would trace every process by
default; this pipeline does not. Sampler, batch and exporter details are the SDK's
``OTEL_TRACES_SAMPLER``, ``OTEL_BSP_*``, ``OTEL_EXPORTER_OTLP_*``, read by the SDK itself.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

# The spec's default OTLP transport; `grpc` needs opentelemetry-exporter-otlp-proto-grpc.
DEFAULT_OTLP_PROTOCOL = "http/protobuf"


def _names(value: str) -> tuple[str, ...]:
    return tuple(n.strip().lower() for n in value.split(",") if n.strip())


def _resource_service_name(value: str) -> str | None:
    for pair in value.split(","):
        key, _, name = pair.partition("=")
        if key.strip() == "service.name" and name.strip():
            return name.strip()
    return None


@dataclass(frozen=True)
class TracingRequest:
    """The exporters asked for (empty: off), the OTLP protocol, a service name if one is set."""

    exporters: tuple[str, ...] = ()
    otlp_protocol: str = DEFAULT_OTLP_PROTOCOL
    service_name: str | None = None

    @property
    def enabled(self) -> bool:
        return bool(self.exporters)

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> TracingRequest:
        if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
            return cls()
        names = _names(environ.get("OTEL_TRACES_EXPORTER", ""))
        endpoint = environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or environ.get(
            "OTEL_EXPORTER_OTLP_ENDPOINT"
        )
        if not names and endpoint:
            names = ("otlp",)
        protocol = (
            environ.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
            or environ.get("OTEL_EXPORTER_OTLP_PROTOCOL")
            or DEFAULT_OTLP_PROTOCOL
        ).strip()
        service = environ.get("OTEL_SERVICE_NAME", "").strip() or _resource_service_name(
            environ.get("OTEL_RESOURCE_ATTRIBUTES", "")
        )
        return cls(tuple(n for n in names if n != "none"), protocol, service)

    def service(self, component: str) -> str:
        """``service.name``: OTEL_SERVICE_NAME (or the resource attributes'), else
        ``lava-<component>``."""
        return self.service_name or f"lava-{component}"

    def entry_point(self, exporter: str) -> str:
        """The SDK's ``opentelemetry_traces_exporter`` entry point for an exporter name."""
        if exporter == "otlp":
            return "otlp_proto_grpc" if self.otlp_protocol == "grpc" else "otlp_proto_http"
        return exporter
