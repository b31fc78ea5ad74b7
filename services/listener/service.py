"""Wiring of the listener service: adapters and handlers on the shared runtime."""

from __future__ import annotations

from shared.runtime import ServiceRuntime, run_service


async def build(runtime: ServiceRuntime) -> None:
    """Register handlers and loops (added by the listener issue)."""


def main() -> None:
    run_service("listener", build)
