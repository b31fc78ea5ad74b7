"""Wiring of the ingest service: adapters and handlers on the shared runtime."""

from __future__ import annotations

from shared.runtime import ServiceRuntime, run_service


async def build(runtime: ServiceRuntime) -> None:
    """Register handlers and loops (added by the ingest issue)."""


def main() -> None:
    run_service("ingest", build)
